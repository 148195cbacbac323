import datetime as dt

import ibis
import pandas as pd
import pytest

from cellcensus.errors import CellcensusError
from cellcensus.holder.algorithms import StoreTables, get_algorithm
from cellcensus.holder.algorithms.usual_residence import UsualResidenceParameters, home_cells

D = dt.date(2011, 3, 7)


def event(device: int, day: int, hour: int, cell: str) -> dict[str, object]:
    return {
        "device_id": device,
        "local_date": D + dt.timedelta(days=day),
        "local_hour": hour,
        "cell_id": cell,
    }


def tables(events: list[dict[str, object]], con=None) -> StoreTables:
    con = con or ibis.duckdb.connect()
    frame = pd.DataFrame(events).astype({"local_hour": "int8", "device_id": "int64"})
    allocation = pd.DataFrame(
        {
            "cell_id": ["A", "B", "B", "C"],
            "area_code": ["1", "1", "2", "2"],
            "weight": [1, 0.5, 0.5, 1],
        }
    )
    cells = pd.DataFrame({"cell_id": ["A", "B", "C"]})
    return StoreTables(
        events=con.create_table("events", frame, overwrite=True),
        cells=con.create_table("cells", cells, overwrite=True),
        allocation=con.create_table("allocation", allocation, overwrite=True),
    )


# Device 1: home A (3 nights) though B seen once and C by day.
# Device 2: 2 nights at B and 2 at C: the tie goes to the smaller cell id, B.
# Device 3: one night only, left out with min_nights=2.
# Device 4: 06:00 belongs to the previous night, 07:00 is day: home A on nights 0 and 1.
WORLD = [
    *(event(1, d, 22, "A") for d in range(3)),
    event(1, 3, 23, "B"),
    *(event(1, d, 12, "C") for d in range(5)),
    event(2, 0, 21, "B"),
    event(2, 2, 5, "B"),
    event(2, 3, 21, "C"),
    event(2, 5, 3, "C"),
    event(3, 0, 23, "C"),
    event(3, 0, 23, "C"),
    event(4, 1, 6, "A"),
    event(4, 1, 21, "A"),
    event(4, 3, 7, "C"),
    event(4, 3, 8, "C"),
]


def test_home_cell_is_most_distinct_nights_with_deterministic_ties():
    homes = home_cells(tables(WORLD), UsualResidenceParameters(min_nights=2)).to_pandas()
    assert dict(zip(homes.device_id, homes.cell_id, strict=True)) == {1: "A", 2: "B", 4: "A"}
    assert dict(zip(homes.device_id, homes.nights, strict=True)) == {1: 3, 2: 2, 4: 2}


def test_counts_are_shared_by_allocation_weights():
    algorithm = get_algorithm("usual_residence")
    counts = algorithm.expression(tables(WORLD), {"min_nights": 2}).to_pandas()
    result = dict(zip(counts.area_code, counts.device_count, strict=True))
    # Devices 1 and 4 at A (area 1), device 2 at B (half in each area).
    assert result == pytest.approx({"1": 2.5, "2": 0.5})
    assert sum(result.values()) == pytest.approx(3.0)  # each device adds exactly 1


def test_min_nights_one_keeps_single_night_devices():
    counts = get_algorithm("usual_residence").expression(tables(WORLD), {"min_nights": 1})
    total = counts.to_pandas().device_count.sum()
    assert total == pytest.approx(4.0)


def test_period_restricts_nights():
    # Only nights 3..5: device 1 has one night (B) -> out at min_nights 2; device 2 has two at C.
    params = {"min_nights": 2, "start": D + dt.timedelta(days=3), "end": D + dt.timedelta(days=5)}
    homes = home_cells(tables(WORLD), UsualResidenceParameters(**params)).to_pandas()
    assert dict(zip(homes.device_id, homes.cell_id, strict=True)) == {2: "C"}


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"min_nights": 0}, "min_nights"),
        ({"night_start_hour": 30}, "night_start_hour"),
        ({"bogus": 1}, "bogus"),
        ({"start": "2011-03-10", "end": "2011-03-01"}, "after"),
    ],
)
def test_out_of_range_parameters_are_refused_by_name(values, named):
    with pytest.raises(CellcensusError, match=named):
        get_algorithm("usual_residence").manifest.parse(values)


def test_unknown_algorithm_lists_known_ones():
    with pytest.raises(CellcensusError, match="usual_residence"):
        get_algorithm("nope")


@pytest.mark.spark
def test_spark_gives_the_same_release_as_duckdb():
    from cellcensus.holder.engines import connect

    algorithm = get_algorithm("usual_residence")
    results = []
    for engine in ("duckdb", "spark"):
        counts = algorithm.expression(tables(WORLD, connect(engine)), {"min_nights": 2})
        results.append(counts.to_pandas().sort_values("area_code").reset_index(drop=True))
    pd.testing.assert_frame_equal(results[0], results[1], check_dtype=False)
