import pytest

from .conftest import as_dict, ev, hand_world

PERIODS = {
    "before_start": "2011-03-07",
    "before_end": "2011-03-13",
    "after_start": "2011-03-14",
    "after_end": "2011-03-20",
}

WORLD = hand_world(
    [
        # 1 moves from A (area 1) to C (area 2).
        *(ev(1, d, 22, "A") for d in range(4)),
        *(ev(1, d, 22, "C") for d in range(7, 11)),
        # 2 stays at B, which is split: a stayer, never a migrant.
        *(ev(2, d, 22, "B") for d in (*range(4), *range(7, 11))),
        # 3 is seen only before: left out.
        *(ev(3, d, 22, "A") for d in range(4)),
        # 4 moves from B to D: its origin is split.
        *(ev(4, d, 22, "B") for d in range(4)),
        *(ev(4, d, 22, "D") for d in range(7, 11)),
    ]
)


def test_movers_off_the_diagonal_stayers_on_it(release):
    matrix = as_dict(release("internal_migration", WORLD, **PERIODS), "origin", "destination")
    assert matrix == pytest.approx(
        {("1", "2"): 1.0, ("1", "1"): 0.5, ("2", "2"): 0.5, ("1", "3"): 0.5, ("2", "3"): 0.5}
    )


def test_periods_must_not_overlap():
    from cellcensus.errors import CellcensusError
    from cellcensus.holder.algorithms import get_algorithm

    with pytest.raises(CellcensusError, match="earlier period must end"):
        get_algorithm("internal_migration").manifest.parse({**PERIODS, "after_start": "2011-03-13"})


STAYERS = hand_world(
    [
        # 5 sleeps at A, then at B, a cell of the same site: ping-pong, not a move.
        *(ev(5, d, 22, "A") for d in range(4)),
        *(ev(5, d, 22, "B") for d in range(7, 11)),
        # 6 sleeps mostly at C, two nights at D, then only at D: D was a night place before.
        *(ev(6, d, 22, "C") for d in range(4)),
        *(ev(6, d, 22, "D") for d in (4, 5, *range(7, 11))),
    ]
)


def test_a_home_that_was_a_night_place_in_the_other_period_is_no_move(release):
    matrix = as_dict(release("internal_migration", STAYERS, **PERIODS), "origin", "destination")
    assert matrix == pytest.approx({("1", "1"): 1.0, ("2", "2"): 1.0})
    allowed = release("internal_migration", STAYERS, **PERIODS, max_visit_nights=2)
    assert as_dict(allowed, "origin", "destination") == pytest.approx(
        {("1", "1"): 1.0, ("2", "3"): 1.0}
    )
