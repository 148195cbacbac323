import csv
import itertools
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from cellcensus.errors import CellcensusError
from cellcensus.nso.dissemination import (
    SDMX_COMMUTERS,
    SDMX_DATAFLOW,
    SDMX_PRESENT,
    official_table,
    write_commuting_sdmx,
    write_geojson,
    write_outputs,
    write_present_population_sdmx,
    write_sdmx_csv,
)
from cellcensus.nso.mobility import (
    PresentPopulation,
    estimate_commuting,
    estimate_present_population,
)
from cellcensus.nso.production import EstimationResult
from cellcensus.reference import belgium


def test_every_format_holds_the_same_official_figures(
    tmp_path: Path, realistic_result: EstimationResult
) -> None:
    files = write_outputs(result=realistic_result, out_dir=tmp_path)

    table = pd.read_csv(files.csv, dtype={"area_code": str, "arrondissement": str})
    parquet = pd.read_parquet(files.parquet)
    geojson = json.loads(files.geojson.read_text(encoding="utf-8"))
    assert len(table) == len(parquet) == len(geojson["features"]) == 589
    assert table["estimator"].eq(realistic_result.default).all()
    assert {"name_nl", "name_fr", "arrondissement", "province", "region"} <= set(table)
    suppressed = table[table["status"] == "suppressed"]
    assert len(suppressed) == realistic_result.best.agreement.n_suppressed
    assert suppressed["estimate"].isna().all()
    pd.testing.assert_series_equal(
        table["estimate"], parquet["estimate"].astype("float64"), check_names=False
    )
    antwerp = next(f for f in geojson["features"] if f["properties"]["area_code"] == "11002")
    assert antwerp["geometry"]["type"] in {"Polygon", "MultiPolygon"}
    assert (
        antwerp["properties"]["estimate"] == table.set_index("area_code").loc["11002", "estimate"]
    )
    assert len(pd.read_csv(files.all_estimators)) == 589 * len(realistic_result.outcomes)
    assert len(pd.read_csv(files.comparison)) == len(realistic_result.outcomes)


def test_sdmx_csv_has_the_standard_columns_and_flags_suppressed_cells(
    tmp_path: Path, realistic_result: EstimationResult
) -> None:
    out = write_sdmx_csv(
        table=official_table(result=realistic_result),
        out=tmp_path / "sdmx.csv",
        period_start="2011-03-01",
        period_end="2011-03-28",
    )

    with out.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0])[:7] == [
        "STRUCTURE",
        "STRUCTURE_ID",
        "ACTION",
        "REF_AREA",
        "INDICATOR",
        "TIME_PERIOD",
        "OBS_VALUE",
    ]
    assert len(rows) == 589
    first = rows[0]
    assert (first["STRUCTURE"], first["STRUCTURE_ID"], first["ACTION"]) == (
        "dataflow",
        SDMX_DATAFLOW,
        "I",
    )
    assert first["TIME_PERIOD"] == "2011-03-01/P28D"
    assert first["UNIT_MEASURE"] == "PS" and first["OBS_STATUS"] == "E"
    assert int(first["CI_LOWER"]) <= int(first["OBS_VALUE"]) <= int(first["CI_UPPER"])
    assert {row["CI_LEVEL"] for row in rows} == {"0.95"}
    confidential = [row for row in rows if row["CONF_STATUS"] == "C"]
    assert confidential and all(row["OBS_VALUE"] == "" for row in confidential)


def test_sdmx_refuses_a_period_that_ends_before_it_starts(
    tmp_path: Path, realistic_result: EstimationResult
) -> None:
    table = official_table(result=realistic_result)
    with pytest.raises(CellcensusError, match="before it starts"):
        write_sdmx_csv(
            table=table, out=tmp_path / "x.csv", period_start="2011-03-28", period_end="2011-03-01"
        )
    with pytest.raises(CellcensusError, match="YYYY-MM-DD"):
        write_sdmx_csv(
            table=table, out=tmp_path / "x.csv", period_start="March", period_end="2011-03-01"
        )


def test_released_devices_stay_whole_counts_in_every_format(
    tmp_path: Path, realistic_result: EstimationResult
) -> None:
    from cellcensus.nso.report.publish import estimates_table
    from cellcensus.nso.validation import compare_with_census
    from cellcensus.reference import belgium

    files = write_outputs(result=realistic_result, out_dir=tmp_path)
    suppressed = realistic_result.best.table["released_devices"].isna()
    assert suppressed.any()  # the missing counts must stay missing, not become 0

    def texts(path: Path) -> list[str]:
        with path.open(encoding="utf-8", newline="") as handle:
            return [row["released_devices"] for row in csv.DictReader(handle)]

    comparison = compare_with_census(
        expanded=realistic_result.best.table.reset_index(), census=belgium.census_population()
    )
    estimates = estimates_table(comparison)
    estimates.to_csv(tmp_path / "estimates.csv", index=False)
    for path in (files.csv, files.all_estimators, tmp_path / "estimates.csv"):
        values = texts(path)
        assert all(value == "" or value.isdigit() for value in values), path.name
        assert values.count("") == suppressed.sum() * (len(values) // len(suppressed)), path.name
    assert str(estimates["released_devices"].dtype) == "Int64"
    parquet = pd.read_parquet(files.parquet)
    assert str(parquet["released_devices"].dtype) == "Int64"
    assert parquet["released_devices"].isna().sum() == suppressed.sum()
    features = json.loads(files.geojson.read_text(encoding="utf-8"))["features"]
    counts = [feature["properties"]["released_devices"] for feature in features]
    assert {type(count) for count in counts} == {int, type(None)}


def test_present_population_sdmx_gives_each_hour_in_its_local_offset(
    tmp_path: Path, unbiased_result: EstimationResult
) -> None:
    from tests.nso.test_mobility import _present_release

    exact = _present_release(unbiased_result, day_gain=1.2)
    table = exact.table[exact.table["slot"].isin([3, 11])].reset_index(drop=True)
    summer = table[table["local_date"] == "2011-03-12"].assign(local_date="2011-03-28")
    table = pd.concat([table, summer], ignore_index=True)  # the day after clocks went forward
    table.loc[0, "device_count"] = pd.NA
    release = replace(exact, table=table, published={"timezone": "Europe/Brussels"})
    present = estimate_present_population(release=release, residents=unbiased_result)

    out = write_present_population_sdmx(present=present, out=tmp_path / "present.sdmx.csv")

    rows = list(csv.DictReader(out.open(encoding="utf-8", newline="")))
    assert len(rows) == len(table)
    assert {row["INDICATOR"] for row in rows} == {SDMX_PRESENT}
    periods = {row["TIME_PERIOD"] for row in rows}
    assert "2011-03-08T03:00:00+01:00/PT1H" in periods
    assert "2011-03-28T11:00:00+02:00/PT1H" in periods
    long = present.long.set_index(["area_code", "local_date", "slot"])
    for row in rows[:50]:
        hour = row["TIME_PERIOD"][:13]
        key = (row["REF_AREA"], hour[:10], int(hour[11:13]))
        expected = long.loc[key, "estimate"]
        if pd.isna(expected):
            assert (row["OBS_VALUE"], row["CONF_STATUS"]) == ("", "C")
        else:
            assert int(row["OBS_VALUE"]) == round(expected)
            assert int(row["CI_LOWER"]) <= int(row["OBS_VALUE"]) <= int(row["CI_UPPER"])
    assert sum(row["CONF_STATUS"] == "C" for row in rows) >= 1
    assert {row["CI_LEVEL"] for row in rows} == {"0.95"}


def _sdmx_hours(present: PresentPopulation, out: Path) -> list[tuple[datetime, timedelta]]:
    """One area's SDMX-CSV periods as (UTC start, length), in the order of their starts."""
    write_present_population_sdmx(present=present, out=out)
    rows = list(csv.DictReader(out.open(encoding="utf-8", newline="")))
    area = rows[0]["REF_AREA"]
    periods = [row["TIME_PERIOD"].split("/") for row in rows if row["REF_AREA"] == area]
    spans = [
        (datetime.fromisoformat(start).astimezone(UTC), timedelta(hours=int(length[2:-1])))
        for start, length in periods
    ]
    return sorted(spans)


@pytest.mark.parametrize(
    "dates",
    [("2011-03-26", "2011-03-27", "2011-03-28"), ("2011-10-29", "2011-10-30", "2011-10-31")],
    ids=["clocks forward", "clocks back"],
)
def test_present_population_sdmx_periods_tile_time_across_a_clock_change(
    tmp_path: Path, unbiased_result: EstimationResult, dates: tuple[str, ...]
) -> None:
    from tests.nso.test_mobility import _present_release, _release_on

    release = _release_on(_present_release(unbiased_result, day_gain=1.2), dates)
    present = estimate_present_population(release=release, residents=unbiased_result)

    spans = _sdmx_hours(present, tmp_path / "present.sdmx.csv")

    # Each period starts where the one before ends: no instant twice, none left out, from
    # the first local midnight to the last (71 hours when the clocks go forward, 73 back).
    assert all(start + length == after for (start, length), (after, _) in itertools.pairwise(spans))
    brussels = ZoneInfo("Europe/Brussels")
    first = datetime.fromisoformat(f"{dates[0]}T00:00").replace(tzinfo=brussels)
    last = datetime.fromisoformat(f"{dates[-1]}T00:00").replace(tzinfo=brussels)
    assert (spans[0][0], spans[-1][0] + spans[-1][1]) == (first, last + timedelta(days=1))


def test_present_population_sdmx_labels_the_repeated_hour_by_its_two_hours(
    tmp_path: Path, unbiased_result: EstimationResult
) -> None:
    from tests.nso.test_mobility import _present_release, _release_on

    dates = ("2011-10-29", "2011-10-30", "2011-10-31")
    release = _release_on(_present_release(unbiased_result, day_gain=1.2), dates)
    present = estimate_present_population(release=release, residents=unbiased_result)

    out = write_present_population_sdmx(present=present, out=tmp_path / "present.sdmx.csv")

    periods = {row["TIME_PERIOD"] for row in csv.DictReader(out.open(encoding="utf-8"))}
    assert "2011-10-30T01:00:00+02:00/PT1H" in periods
    assert "2011-10-30T02:00:00+02:00/PT2H" in periods
    assert "2011-10-30T03:00:00+01:00/PT1H" in periods
    assert not any(period.startswith("2011-10-30T02:00:00+01:00") for period in periods)


def test_present_population_sdmx_refuses_an_hour_the_clocks_skip(
    tmp_path: Path, unbiased_result: EstimationResult
) -> None:
    from tests.nso.test_mobility import _present_release

    exact = _present_release(unbiased_result, day_gain=1.2)
    present = estimate_present_population(release=exact, residents=unbiased_result)
    long = present.long.assign(local_date="2011-03-27")
    skipped = replace(present, long=long, timezone="Europe/Brussels")

    with pytest.raises(CellcensusError, match="02:00 of 2011-03-27 does not exist"):
        write_present_population_sdmx(present=skipped, out=tmp_path / "present.sdmx.csv")


def test_commuting_sdmx_names_home_and_work_over_the_flows_period(
    tmp_path: Path, unbiased_result: EstimationResult
) -> None:
    from tests.nso.test_mobility import _flows_release

    release = _flows_release(belgium.commuting_matrix(), share=0.02)
    dated = replace(release, published={"period": {"start": "2011-03-01", "end": "2011-03-28"}})
    commuting = estimate_commuting(release=dated, residents=unbiased_result)

    out = write_commuting_sdmx(commuting=commuting, out=tmp_path / "flows.sdmx.csv")

    rows = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert len(rows) == len(commuting.flows) == 43 * 43
    assert set(rows["TIME_PERIOD"]) == {"2011-03-01/P28D"}
    assert set(rows["INDICATOR"]) == {SDMX_COMMUTERS}
    brussels = rows[(rows["REF_AREA"] == "23000") & (rows["COUNTERPART_AREA"] == "21000")]
    flows = commuting.flows
    pair = (flows["home_area"] == "23000") & (flows["work_area"] == "21000")
    expected = float(flows.loc[pair, "estimate"].iloc[0])
    assert int(brussels["OBS_VALUE"].iloc[0]) == round(expected)
    with pytest.raises(CellcensusError, match="period"):
        undated = estimate_commuting(release=release, residents=unbiased_result)
        write_commuting_sdmx(commuting=undated, out=tmp_path / "undated.sdmx.csv")


def test_each_sdmx_dataflow_has_one_set_of_dimensions(
    tmp_path: Path, unbiased_result: EstimationResult
) -> None:
    from tests.nso.test_mobility import _flows_release

    period = {"start": "2011-03-01", "end": "2011-03-28"}
    flows = replace(
        _flows_release(belgium.commuting_matrix(), share=0.02), published={"period": period}
    )
    files = [
        write_sdmx_csv(
            table=official_table(result=unbiased_result),
            out=tmp_path / "residents.sdmx.csv",
            period_start=period["start"],
            period_end=period["end"],
        ),
        write_commuting_sdmx(
            commuting=estimate_commuting(release=flows, residents=unbiased_result),
            out=tmp_path / "flows.sdmx.csv",
        ),
    ]
    # A dataflow has one data structure: every file naming it has the same columns.
    columns: dict[str, set[tuple[str, ...]]] = {}
    for path in files:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        for structure in frame["STRUCTURE_ID"].unique():
            columns.setdefault(structure, set()).add(tuple(frame.columns))
    assert all(len(headers) == 1 for headers in columns.values()), columns


def test_geojson_rings_follow_the_right_hand_rule(tmp_path: Path) -> None:
    import shapely

    # A union or a difference gives clockwise exteriors; RFC 7946 3.1.6 asks the opposite.
    holed = shapely.box(4.0, 50.0, 5.0, 51.0).difference(shapely.box(4.4, 50.4, 4.6, 50.6))
    areas = pd.DataFrame({"area_code": ["A"], "geometry": [holed]})
    assert not holed.exterior.is_ccw
    out = write_geojson(
        table=pd.DataFrame({"area_code": ["A"], "estimate": [10.0]}),
        areas=areas,
        out=tmp_path / "a.geojson",
    )
    (feature,) = json.loads(out.read_text(encoding="utf-8"))["features"]
    polygon = shapely.geometry.shape(feature["geometry"])
    assert polygon.exterior.is_ccw
    assert [ring.is_ccw for ring in polygon.interiors] == [False]
