import csv
import json
from pathlib import Path

import pandas as pd
import pytest

from cellcensus.errors import CellcensusError
from cellcensus.nso.dissemination import (
    SDMX_DATAFLOW,
    official_table,
    write_outputs,
    write_sdmx_csv,
)
from cellcensus.nso.production import EstimationResult


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
