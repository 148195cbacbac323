"""Release files: the wire JSON, or a CSV table with its provenance sidecar."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest

from cellcensus.errors import CellcensusError
from cellcensus.release import Provenance, Release, provenance_path, published_period


def release() -> Release:
    provenance = Provenance(
        job_id="ab" * 16,
        algorithm="present_population",
        version="1.0.1",
        parameters={"slot_minutes": 60},
        policy={"min_count": 15, "dp": {"epsilon": 0.4, "delta": 0.0}},
        created_at="2026-11-28T10:00:00+00:00",
        engine="duckdb",
    )
    table = pd.DataFrame({"area_code": ["11001", "11002"], "device_count": [20, None]})
    return Release(table=table, provenance=provenance, published={"market_share": 0.4})


def test_csv_release_is_written_with_its_provenance_sidecar(tmp_path: Path) -> None:
    out = tmp_path / "out" / "present.csv"
    written = release().write(out)
    sidecar = tmp_path / "out" / "present.provenance.json"
    assert written == [out, sidecar] and provenance_path(out) == sidecar
    assert pd.read_csv(out, dtype={"area_code": str}).area_code.tolist() == ["11001", "11002"]
    document = json.loads(sidecar.read_text())
    wire = json.loads(release().to_json())
    assert document == {
        "provenance": wire["provenance"],
        "published": wire["published"],
        "columns": wire["columns"],
    }
    assert document["provenance"]["policy"]["dp"]["epsilon"] == 0.4
    assert document["provenance"]["job_id"] == "ab" * 16


def test_json_release_is_one_document(tmp_path: Path) -> None:
    out = tmp_path / "present.json"
    assert release().write(out) == [out]
    assert Release.from_json(out.read_text()).provenance == release().provenance
    assert not (tmp_path / "present.provenance.json").exists()


def test_other_suffixes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.csv or \.json"):
        release().write(tmp_path / "present.xlsx")


def test_read_gives_back_the_release_from_either_file(tmp_path: Path) -> None:
    written = release()
    written.write(tmp_path / "present.csv")
    written.write(tmp_path / "present.json")
    for name in ("present.csv", "present.json"):
        back = Release.read(tmp_path / name)
        assert back.provenance == written.provenance and back.published == written.published
        assert back.table["area_code"].tolist() == ["11001", "11002"]  # text, not numbers
        pd.testing.assert_frame_equal(back.table, written.table)


def test_read_says_what_is_missing_or_wrong(tmp_path: Path) -> None:
    table = tmp_path / "homes.csv"
    table.write_text("area_code,device_count\n11001,20\n")
    with pytest.raises(CellcensusError, match=r"homes\.provenance\.json is missing"):
        Release.read(table)
    provenance_path(table).write_text('{"job": 1}')
    with pytest.raises(CellcensusError, match=r"homes\.provenance\.json: not a cellcensus release"):
        Release.read(table)
    good = tmp_path / "good.csv"
    release().write(good)
    edited = tmp_path / "edited.csv"
    edited.write_text(good.read_text().replace("device_count", "devices"))
    provenance_path(edited).write_text(provenance_path(good).read_text())
    with pytest.raises(CellcensusError, match=r"edited\.csv: no column device_count, which"):
        Release.read(edited)  # the table's fault, not its sidecar's
    edited.write_text(good.read_text().replace("11001,20.0", "11001,twenty"))
    with pytest.raises(
        CellcensusError,
        match=r"edited\.csv: row 1 \(after the header\): device_count is 'twenty', not a number",
    ):
        Release.read(edited)
    edited.write_text(good.read_text().replace("11002,", "11002"))  # a field lost, not empty
    with pytest.raises(
        CellcensusError, match=r"edited\.csv: line 3 has 1 field\(s\) where the header has 2"
    ):
        Release.read(edited)
    (tmp_path / "other.json").write_text("[1, 2]")
    with pytest.raises(CellcensusError, match=r"other\.json: not a cellcensus release"):
        Release.read(tmp_path / "other.json")
    with pytest.raises(CellcensusError, match="no such release file"):
        Release.read(tmp_path / "absent.json")
    with pytest.raises(CellcensusError, match=r"absent\.csv: no such release file"):
        Release.read(tmp_path / "absent.csv")  # not its sidecar: neither is there
    with pytest.raises(CellcensusError, match=r"\.csv, \.json or \.parquet"):
        Release.read(tmp_path / "homes.xlsx")
    pd.DataFrame({"area_code": ["11001"]}).to_parquet(tmp_path / "plain.parquet")
    with pytest.raises(CellcensusError, match=r"plain\.parquet: not a cellcensus release"):
        Release.read(tmp_path / "plain.parquet")
    (tmp_path / "text.parquet").write_text("area_code\n")
    with pytest.raises(CellcensusError, match=r"text\.parquet: cannot be read as a release"):
        Release.read(tmp_path / "text.parquet")


def test_a_count_that_is_not_whole_is_refused_naming_its_line(tmp_path: Path) -> None:
    written = release()
    written.table["device_count"] = written.table["device_count"].astype("Int64")
    written.write(tmp_path / "counts.csv")
    assert Release.read(tmp_path / "counts.csv").table["device_count"].dtype == "Int64"
    text = (tmp_path / "counts.csv").read_text()
    (tmp_path / "counts.csv").write_text(text.replace("11001,20", "11001,1.5"))
    with pytest.raises(
        CellcensusError,
        match=r"row 1 \(after the header\): device_count is '1\.5', not a whole number",
    ):
        Release.read(tmp_path / "counts.csv")


def test_a_quote_left_open_in_a_long_release_is_refused_in_a_line(tmp_path: Path) -> None:
    codes = [f"{code:05d}" for code in range(20_000)]
    table = pd.DataFrame({"area_code": codes, "device_count": [20.0] * len(codes)})
    written = Release(table=table, provenance=release().provenance, published={})
    written.write(tmp_path / "long.csv")
    lines = (tmp_path / "long.csv").read_text().splitlines()
    lines[2] = '"' + lines[2]  # the rest of the file would be one field
    (tmp_path / "long.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(
        CellcensusError, match=r"long\.csv: cannot be split into fields from line 3"
    ):
        Release.read(tmp_path / "long.csv")
    lines[0], lines[2] = '"' + lines[0], lines[2][1:]  # in the header
    (tmp_path / "long.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(CellcensusError, match=r"cannot be split into fields from line 1"):
        Release.read(tmp_path / "long.csv")


def test_the_published_period_is_read_as_dates_or_refused() -> None:
    period = {"start": "2011-03-01", "end": "2011-03-28T23:59:59+01:00"}
    assert published_period({"period": period}) == (dt.date(2011, 3, 1), dt.date(2011, 3, 28))
    assert published_period({}) is None
    assert published_period({"period": {"start": "2011-03-01"}}) is None
    with pytest.raises(CellcensusError, match="is not two dates YYYY-MM-DD"):
        published_period({"period": {"start": "March 2011", "end": "2011-03-28"}})
