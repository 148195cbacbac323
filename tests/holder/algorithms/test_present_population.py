import dataclasses
import datetime as dt

import ibis
import pandas as pd
import pytest

from cellcensus.errors import CellcensusError
from cellcensus.holder.algorithms import get_algorithm
from cellcensus.holder.algorithms.base import cell_key, cell_keys, engine_of
from cellcensus.holder.algorithms.conformance import (
    HOME_MCC,
    PHONE_TAC,
    Runner,
    World,
    events_frame,
    normalised,
)
from cellcensus.holder.algorithms.present_population import (
    by_key,
    cell_ranks,
    position_observations,
    position_ranks,
)

from .conftest import ALLOCATION, CELLS, D, as_dict, ev, hand_world

NEXT = D + dt.timedelta(days=1)

WORLD = hand_world(
    [
        # 1: seen at A at 08:05, at C at 10:30, then silent.
        ev(1, 0, 8, "A", 5),
        ev(1, 0, 10, "C", 30),
        # 2: seen at B (areas 1 and 2) at 23:30, then silent until the next evening.
        ev(2, 0, 23, "B", 30),
        ev(2, 1, 20, "D"),
        # 3: two events in slot 12: the last one (C) is its position.
        ev(3, 0, 12, "A", 10),
        ev(3, 0, 12, "C", 50),
    ]
)


@pytest.fixture
def release(duckdb_runner):
    """The release read from the events, checked against the one read from the device-day
    summaries' hourly positions (what a store's jobs read for hourly and daily slots)."""

    def _release(name, world, **values):
        algorithm = get_algorithm(name)
        events = duckdb_runner.run(algorithm, world, values)
        summarised = dataclasses.replace(world, summarised=True)
        positions = duckdb_runner.run(algorithm, summarised, values)
        pd.testing.assert_frame_equal(
            normalised(positions, algorithm), normalised(events, algorithm), check_exact=False
        )
        return events

    return _release


def hourly(release, world=WORLD, **values):
    frame = release("present_population", world, slot_minutes=60, **values)
    return as_dict(frame, "local_date", "slot", "area_code")


def test_last_known_position_is_carried_forward_up_to_the_limit(release):
    counts = hourly(release, max_carry_minutes=60, max_backfill_minutes=0)
    assert counts == pytest.approx(
        {
            (D, 8, "1"): 1.0, (D, 9, "1"): 1.0,  # carried one slot
            (D, 10, "2"): 1.0, (D, 11, "2"): 1.0,
            (D, 12, "2"): 1.0, (D, 13, "2"): 1.0,
            (D, 23, "1"): 0.5, (D, 23, "2"): 0.5,  # B is split
            (NEXT, 0, "1"): 0.5, (NEXT, 0, "2"): 0.5,  # across midnight
            (NEXT, 20, "3"): 1.0, (NEXT, 21, "3"): 1.0,
        }
    )  # fmt: skip


def test_no_carry_counts_only_observed_slots(release):
    counts = hourly(release, max_carry_minutes=0, max_backfill_minutes=0)
    assert set(counts) == {
        (D, 8, "1"), (D, 10, "2"), (D, 12, "2"), (D, 23, "1"), (D, 23, "2"), (NEXT, 20, "3")
    }  # fmt: skip


def test_carry_stops_at_the_next_observation_and_at_the_end_of_the_data(release):
    day_2 = D + dt.timedelta(days=2)
    world = hand_world([ev(2, 0, 23, "B", 30), ev(2, 1, 20, "D"), ev(9, 2, 12, "A")])
    frame = release("present_population", world, max_carry_minutes=1440, max_backfill_minutes=0)
    by_area = frame.groupby("area_code").device_count.sum().to_dict()
    # B: 23:00 on day 0 and 00:00-19:00 on day 1 (seen at D at 20:00) = 21 slots, half each.
    assert by_area["2"] == pytest.approx(10.5)
    # D: 20:00-23:00 on day 1 and 00:00-20:00 on day 2 (24 slots carried) = 25 slots.
    assert by_area["3"] == pytest.approx(25.0)
    # Device 9 (A): 12:00-23:00 on day 2; nothing is invented on day 3, which has no data.
    assert by_area["1"] == pytest.approx(10.5 + 12.0)
    assert frame.local_date.max() == day_2


@pytest.mark.parametrize(("carry", "back"), [(1440, 0), (720, 720), (60, 1380)])
def test_each_device_counts_at_most_once_per_slot(release, carry, back):
    counts = hourly(release, max_carry_minutes=carry, max_backfill_minutes=back)
    per_slot = {}
    for (day, slot, _area), value in counts.items():
        per_slot[day, slot] = per_slot.get((day, slot), 0.0) + value
    assert max(per_slot.values()) <= 3.0 + 1e-9


def test_quarter_hour_and_daily_slots(release):
    quarter = release(
        "present_population", WORLD, slot_minutes=15, max_carry_minutes=0, max_backfill_minutes=0
    )
    slots = as_dict(quarter, "local_date", "slot", "area_code")
    assert slots[D, 8 * 4 + 0, "1"] == 1.0  # 08:05
    assert slots[D, 10 * 4 + 2, "2"] == 1.0  # 10:30
    assert slots[D, 12 * 4 + 3, "2"] == 1.0  # 12:50, C
    assert slots[D, 12 * 4 + 0, "1"] == 1.0  # 12:10, A
    days = release(
        "present_population", WORLD, slot_minutes=1440, max_carry_minutes=0, max_backfill_minutes=0
    )
    # The last position of each day: 1 at C, 2 at B, 3 at C on day 0; 2 at D on day 1.
    assert as_dict(days, "local_date", "area_code") == pytest.approx(
        {(D, "1"): 0.5, (D, "2"): 2.5, (NEXT, "3"): 1.0}
    )


def test_roamers_can_be_counted_apart(release):
    world = hand_world([ev(1, 0, 9, "A"), ev(2, 0, 9, "C", mcc=208)])
    only_seen = {"max_carry_minutes": 0, "max_backfill_minutes": 0}
    inbound = release("present_population", world, subscribers="inbound", **only_seen)
    assert as_dict(inbound, "local_date", "slot", "area_code") == {(D, 9, "2"): 1.0}
    everyone = release("present_population", world, **only_seen)
    assert everyone.device_count.sum() == 2.0


def test_the_last_event_of_a_slot_wins_even_a_fraction_of_a_second_later(release):
    # 14:59:58.6 at D, then 14:59:59.4 at A: rounding both to 59 s would tie and let the
    # cell order pick D; whole seconds by truncation (as on Spark) keep A, the later one.
    late = dt.datetime.combine(D, dt.time(14, 59, 58, 600_000))
    world = hand_world(
        [
            (4, late, "D", "call_out", HOME_MCC, PHONE_TAC),
            (4, late + dt.timedelta(milliseconds=800), "A", "call_out", HOME_MCC, PHONE_TAC),
        ]
    )
    frame = release(
        "present_population", world, slot_minutes=60, max_carry_minutes=0, max_backfill_minutes=0
    )
    assert as_dict(frame, "local_date", "slot", "area_code") == {(D, 14, "1"): 1.0}


def test_a_silent_slot_takes_the_nearer_observation(release):
    # Seen at A (area 1) at 08:00 and at C (area 2) at 14:00, on the only day with data.
    world = hand_world([ev(1, 0, 8, "A"), ev(1, 0, 14, "C")])
    counts = hourly(release, world, max_carry_minutes=720, max_backfill_minutes=720)
    # 00-07 back from 08:00; 09-11 nearer 08:00 (11:00 is as near to both: the earlier
    # wins); 12-13 nearer 14:00; 15-23 carried forward.
    assert counts == {(D, slot, "1" if slot < 12 else "2"): 1.0 for slot in range(24)}
    short = hourly(release, world, max_carry_minutes=60, max_backfill_minutes=120)
    # One slot forward and two back from each; 10:00 and 11:00 are out of reach of both.
    assert short == {
        **{(D, slot, "1"): 1.0 for slot in (6, 7, 8, 9)},
        **{(D, slot, "2"): 1.0 for slot in (12, 13, 14, 15)},
    }


def test_a_silent_night_splits_between_the_evening_and_the_morning(release):
    # Device 2: at B (areas 1 and 2, half each) at 23:30, next seen at D (area 3) at 20:00
    # the next day: 21 slots between, the first 10 nearer 23:00 (and the 11th, as near to
    # both: 23:00 + 10 = 09:00), the other 10 nearer 20:00.
    world = hand_world([ev(2, 0, 23, "B", 30), ev(2, 1, 20, "D")])
    counts = hourly(release, world, max_carry_minutes=720, max_backfill_minutes=720)
    at_b = {key: value for key, value in counts.items() if key[2] == "1"}
    at_d = {key: value for key, value in counts.items() if key[2] == "3"}
    # Back 12 slots from 23:00 (11:00-22:00), 23:00, then 00:00-09:00 the next day.
    assert sorted(at_b) == sorted(
        [(D, slot, "1") for slot in range(11, 24)] + [(NEXT, slot, "1") for slot in range(10)]
    )
    assert set(at_b.values()) == {0.5}
    # 10:00-19:00 back from 20:00, 20:00, and 21:00-23:00 carried (no data after that day).
    assert sorted(at_d) == [(NEXT, slot, "3") for slot in range(10, 24)]


def test_carrying_forward_and_back_together_are_at_most_a_day(release):
    with pytest.raises(CellcensusError, match="reach 25 slots of 60 minutes together"):
        hourly(release, max_carry_minutes=1440, max_backfill_minutes=60)
    # Daily slots: carrying a day forward leaves nothing to carry back (720 // 1440 = 0).
    daily = release("present_population", WORLD, slot_minutes=1440, max_carry_minutes=1440)
    assert set(daily["local_date"]) == {D, NEXT}


def test_a_device_staying_at_one_cell_is_counted_only_within_reach(release):
    # Seen at A (area 1) at 08:00, 14:00 and 22:00, then at 06:00 the next day: the spans
    # of observations at the same cell join only where they reach each other.
    world = hand_world([ev(1, 0, 8, "A"), ev(1, 0, 14, "A"), ev(1, 0, 22, "A"), ev(1, 1, 6, "A")])
    joined = hourly(release, world, max_carry_minutes=720, max_backfill_minutes=720)
    # From the start of the data to 06:00 + 12 slots carried forward on the next day.
    assert joined == {
        **{(D, slot, "1"): 1.0 for slot in range(24)},
        **{(NEXT, slot, "1"): 1.0 for slot in range(19)},
    }
    apart = hourly(release, world, max_carry_minutes=60, max_backfill_minutes=120)
    # Two slots back and one forward from each: 10-11, 16-19 and 00-03 are out of reach.
    assert apart == {
        **{(D, slot, "1"): 1.0 for slot in (6, 7, 8, 9, 12, 13, 14, 15, 20, 21, 22, 23)},
        **{(NEXT, slot, "1"): 1.0 for slot in (4, 5, 6, 7)},
    }


# Seen at home (A, area 1) at 08:00 and 18:00 and at work (C, area 2) at 10:00 on Monday.
MONDAY = [ev(1, 0, 8, "A"), ev(1, 0, 10, "C"), ev(1, 0, 18, "A")]


def test_a_long_silence_takes_the_usual_place_at_that_hour(release):
    # On Tuesday seen at home at 07:00 and 20:00 only: the nearest observation puts every
    # slot between at home. Slots more than 3 hours from both (11:00-16:00) take the usual
    # place at their hour where there is one: Monday's 10:00 at work counts for 09:00-11:00.
    world = hand_world([*MONDAY, ev(1, 1, 7, "A"), ev(1, 1, 20, "A")])
    nearest = hourly(release, world)
    usual = hourly(release, world, usual_place_after_minutes=180)
    assert nearest[(NEXT, 11, "1")] == 1.0
    moved = {**nearest, (NEXT, 11, "2"): 1.0}
    del moved[(NEXT, 11, "1")]
    assert usual == moved
    # Nearer than 3 hours to an observation, the nearest one wins: nothing moves at 4 hours.
    assert hourly(release, world, usual_place_after_minutes=240) == nearest


def test_weekend_days_have_usual_places_of_their_own(release):
    # The same Tuesday as a Saturday: Monday's place at work is a weekday's, not Saturday's.
    saturday = 5
    world = hand_world([*MONDAY, ev(1, saturday, 7, "A"), ev(1, saturday, 20, "A")])
    assert hourly(release, world, usual_place_after_minutes=180) == hourly(release, world)


def test_a_usual_place_needs_slots_within_a_day(release):
    with pytest.raises(CellcensusError, match="usual_place_after_minutes needs slots within"):
        release("present_population", WORLD, slot_minutes=1440, usual_place_after_minutes=60)


def test_events_in_the_same_second_place_the_device_at_the_largest_cell_id(release):
    # Both at 14:59:59 (A then D in the file): neither is later, and the order of cell ids
    # decides, from the events as from the hourly positions the ingest summarises.
    at = dt.datetime.combine(D, dt.time(14, 59, 59))
    rows = [(4, at, cell, "call_out", HOME_MCC, PHONE_TAC) for cell in ("D", "A")]
    only_seen = {"max_carry_minutes": 0, "max_backfill_minutes": 0}
    for order in (rows, rows[::-1]):
        frame = release("present_population", hand_world(order), slot_minutes=60, **only_seen)
        assert as_dict(frame, "local_date", "slot", "area_code") == {(D, 14, "3"): 1.0}


def test_a_device_under_two_home_networks_in_a_day_is_counted_once_from_its_events(release):
    # Its summary has a row per network, each with its own hours: a row's positions are not
    # its day, so the summaries' positions are not read and the events place it.
    world = hand_world([ev(5, 0, 9, "A", 10), ev(5, 0, 9, "C", 40, mcc=208)])
    assert not dataclasses.replace(world, summarised=True).positions
    assert hand_world([ev(5, 0, 9, "A", 10), ev(6, 0, 9, "C", mcc=208)]).positions is False
    only_seen = {"max_carry_minutes": 0, "max_backfill_minutes": 0}
    frame = release("present_population", world, slot_minutes=60, **only_seen)
    assert as_dict(frame, "local_date", "slot", "area_code") == {(D, 9, "2"): 1.0}
    daily = release("present_population", world, slot_minutes=1440, **only_seen)
    assert as_dict(daily, "local_date", "area_code") == {(D, "2"): 1.0}


def test_duckdbs_side_by_side_unnest_gives_the_positions_the_portable_form_gives(world):
    # Spark takes the listed hours by position (one generator per select); DuckDB unnests
    # the lists side by side. The conformance world's checks against the events run the
    # latter on DuckDB and the former on Spark; here both run on DuckDB.
    summaries = dataclasses.replace(world, summarised=True).arrow["device_days"]
    con = ibis.duckdb.connect()
    ranks = by_key(cell_ranks(ibis.memtable(world.arrow["cells"])))
    keys = ["device_id", "g"]
    forms = {}
    bound = con.create_table("summaries", summaries)
    for name, table in (("portable", ibis.memtable(summaries)), ("duckdb", bound)):
        assert engine_of(table) == (None if name == "portable" else "duckdb")
        observed = position_observations(table, ranks, per_day=24)
        forms[name] = con.to_pandas(observed).sort_values(keys).reset_index(drop=True)
    assert len(forms["duckdb"]) == sum(len(day) for day in summaries["positions"].to_pylist())
    assert forms["duckdb"]["following"].notna().sum() == len(forms["duckdb"]) - summaries.num_rows
    pd.testing.assert_frame_equal(forms["portable"], forms["duckdb"], check_dtype=False)


def test_cells_of_the_same_unchanging_weights_rank_as_one_and_count_the_same(release):
    # E lies wholly in area 1, as A does; F wholly in area 2, as C does until the third day,
    # when C moves to area 3. A move between A and E is no change of any count, so they
    # share a rank; C's weights change, so it keeps its own and F does not join it.
    third = D + dt.timedelta(days=2)
    allocation = pd.concat(
        [
            ALLOCATION[ALLOCATION.cell_id != "C"],
            pd.DataFrame(
                {
                    "cell_id": ["E", "F", "C", "C"],
                    "area_code": ["1", "2", "2", "3"],
                    "weight": 1.0,
                    "valid_from": [None, None, None, third],
                    "valid_to": [None, None, third - dt.timedelta(days=1), None],
                }
            ),
        ],
        ignore_index=True,
    )
    cells = pd.concat([CELLS, pd.DataFrame({"cell_id": ["E", "F"], "site_id": "S4"})])
    ranks = position_ranks(ibis.memtable(cells), ibis.memtable(allocation)).to_pandas()
    rank = dict(zip(ranks.cell_id, ranks["rank"], strict=True))
    assert rank["A"] == rank["E"]
    assert len({rank["A"], rank["B"], rank["C"], rank["D"], rank["F"]}) == 5
    # Without validity dates every cell's weights hold for all time: C then ranks with F.
    timeless = allocation[allocation.valid_from.isna()].drop(columns=["valid_from", "valid_to"])
    ranks = position_ranks(ibis.memtable(cells), ibis.memtable(timeless)).to_pandas()
    merged = dict(zip(ranks.cell_id, ranks["rank"], strict=True))
    assert merged["A"] == merged["E"] and merged["C"] == merged["F"] != merged["A"]
    rows = [ev(1, 0, 8, "A"), ev(1, 0, 9, "E"), ev(1, 0, 10, "A"), ev(1, 1, 22, "F")]
    rows += [ev(2, 1, 22, "C"), ev(3, 2, 12, "D")]
    world = World(events=events_frame(rows), cells=cells, allocation=allocation)
    counts = hourly(release, world, max_carry_minutes=180, max_backfill_minutes=0)
    # Carried three slots on: F stays in area 2 past midnight, C's device moves to area 3.
    second = D + dt.timedelta(days=1)
    assert counts == pytest.approx(
        {
            **{(D, slot, "1"): 1.0 for slot in range(8, 14)},
            (second, 22, "2"): 2.0,
            (second, 23, "2"): 2.0,
            **{(third, slot, area): 1.0 for slot in (0, 1) for area in ("2", "3")},
            **{(third, slot, "3"): 1.0 for slot in range(12, 16)},
        }
    )


def test_positions_are_keyed_by_cell_and_two_ids_of_one_key_are_refused(monkeypatch):
    ranks = cell_ranks(ibis.memtable(CELLS))
    keyed = by_key(ranks).to_pandas()
    expected = {cell_key(cell): rank for cell, rank in ranks.to_pandas().itertuples(index=False)}
    assert dict(zip(keyed.cell, keyed["rank"], strict=True)) == expected

    # A hash shared by two ids (about one chance in 10^9 among a million cells) would rank
    # one cell's positions as the other's: refused, naming the way out.
    def one_key(ids):
        return cell_keys(["A" for _ in ids]).set_column(0, "cell_id", [list(ids)])

    monkeypatch.setattr("cellcensus.holder.algorithms.present_population.cell_keys", one_key)
    with pytest.raises(CellcensusError, match=r"share one key.*--no-positions"):
        by_key(ranks)


def test_a_runner_ranks_each_worlds_own_cells(world):
    # The expression holds the ranks of the world's cells by key (`by_key`), computed as it
    # is built: a runner that reuses compiled SQL must not rank another network by them.
    world = dataclasses.replace(world, summarised=True)

    def renamed(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(cell_id=frame.cell_id.str.replace("C", "X", regex=False))

    other = dataclasses.replace(
        world,
        events=renamed(world.events),
        cells=renamed(world.cells),
        allocation=renamed(world.allocation),
    )
    runner = Runner(ibis.duckdb.connect())
    first = runner.run(get_algorithm("present_population"), world, {})
    second = runner.run(get_algorithm("present_population"), other, {})
    assert first["device_count"].sum() > 1000
    pd.testing.assert_frame_equal(first, second)
