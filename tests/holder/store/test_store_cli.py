"""`cellcensus ingest`: ingests, allocates, prints the report; user mistakes in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from deliveries import (  # type: ignore[import-not-found]
    CELLS,
    END,
    START,
    event,
    good_events,
    snapshot,
    write_delivery,
)
from typer.testing import CliRunner, Result

from cellcensus.cli import app
from cellcensus.holder.geo.tile_footprint import build_tile_footprint
from cellcensus.holder.store import Store
from cellcensus.reference import municipalities

runner = CliRunner()


def _ingest(dataset, tmp_path, store: str, *options: str):
    """`cellcensus ingest --dataset` into tmp_path/store with tmp_path/key, plus `options`."""
    command = ["ingest", "--dataset", str(dataset), "--store", str(tmp_path / store)]
    return runner.invoke(app, [*command, "--key-file", str(tmp_path / "key"), *options])


def test_ingest_a_dataset_folder(tmp_path):
    dataset = write_delivery(tmp_path / "dataset", rows=good_events())
    result = _ingest(dataset, tmp_path, "store", "--report", str(tmp_path / "report.json"))
    assert result.exit_code == 0, result.output
    assert "rows stored" in result.output
    written = json.loads((tmp_path / "report.json").read_text())
    assert written["rows_stored"] == 3
    # The seconds shown count the allocation after the rows, which the report's do not.
    shown = {
        " ".join(words[:-1]): words[-1]
        for line in result.output.splitlines()
        if len(words := line.replace("│", " ").split()) > 1
    }
    total, allocating = float(shown["seconds"]), float(shown["allocating cells"])
    assert total == pytest.approx(written["seconds"] + allocating, abs=0.11)
    allocation = Store(tmp_path / "store").read_allocation()
    assert set(allocation.columns) >= {"cell_id", "area_code", "weight"}
    assert set(allocation.cell_id) == {"A", "B", "C", "D"}


def _ingest_parts(tmp_path: Path, *, metadata: Path | None = None) -> Result:
    """`cellcensus ingest` of a delivery's events and cells, for a period, with metadata."""
    dataset = write_delivery(tmp_path / "dataset", rows=good_events(), fmt="csv")
    return runner.invoke(
        app,
        [
            "ingest",
            "--events",
            str(dataset / "events"),
            "--cells",
            str(dataset / "cells.parquet"),
            "--period",
            START.isoformat(),
            END.isoformat(),
            "--metadata",
            str(metadata or dataset / "metadata.json"),
            "--store",
            str(tmp_path / "store"),
        ],
    )


def test_ingest_events_and_cells_with_a_period(tmp_path):
    result = _ingest_parts(tmp_path)
    assert result.exit_code == 0, result.output
    assert Store(tmp_path / "store").metadata()["market_share"] == 0.4


def test_a_missing_metadata_file_is_named_missing(tmp_path):
    nowhere = tmp_path / "nosuch.json"
    result = _ingest_parts(tmp_path, metadata=nowhere)
    assert result.exit_code == 2
    assert f"--metadata {nowhere}: no such file" in " ".join(result.output.split())
    assert not (tmp_path / "store").exists()


def test_a_user_mistake_is_one_line_and_exit_code_2(tmp_path):
    dataset = write_delivery(tmp_path / "dataset", rows=good_events())
    (dataset / "events" / "part-0.parquet").write_text("user_id,timestamp\n")
    result = runner.invoke(
        app, ["ingest", "--dataset", str(dataset), "--store", str(tmp_path / "store")]
    )
    assert result.exit_code == 2
    assert result.output.startswith("error: ")  # no blank line of a progress display first
    assert "part-0.parquet" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "store").exists()


def test_dataset_and_events_together_are_refused(tmp_path):
    result = runner.invoke(
        app,
        ["ingest", "--dataset", str(tmp_path), "--events", str(tmp_path), "--store", str(tmp_path)],
    )
    assert result.exit_code == 2
    assert "either --dataset" in result.output


def test_ingest_under_a_small_memory_limit_stores_the_same_rows(tmp_path):
    dataset = write_delivery(tmp_path / "dataset", rows=good_events())
    reports = []
    for limit in ("4GB", "64MB"):
        report = tmp_path / f"report-{limit}.json"
        result = _ingest(
            dataset, tmp_path, f"store-{limit}", "--memory-limit", limit, "--report", str(report)
        )
        assert result.exit_code == 0, result.output
        reports.append(json.loads(report.read_text()))
    assert reports[0]["rows_stored"] == reports[1]["rows_stored"] == 3
    assert reports[0]["rows_quarantined_by_reason"] == reports[1]["rows_quarantined_by_reason"]


def test_a_memory_limit_that_is_not_a_size_is_refused_before_anything_is_written(tmp_path):
    dataset = write_delivery(tmp_path / "dataset", rows=good_events())
    result = _ingest(dataset, tmp_path, "store", "--memory-limit", "lots")
    assert result.exit_code != 0
    assert "memory limit 'lots' is not a size" in result.output
    assert "4GB" in result.output
    assert not (tmp_path / "store").exists()


def test_a_memory_limit_too_small_to_read_is_named_not_the_files(tmp_path):
    dataset = write_delivery(tmp_path / "dataset", rows=good_events())
    result = _ingest(dataset, tmp_path, "store", "--memory-limit", "0GB")
    said = " ".join(result.output.split())
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "ran out of memory under the ingest's memory limit of 0GB" in said, said
    assert "give a larger --memory-limit" in said and "check the files" not in said
    assert not (tmp_path / "store").exists()


def test_a_prior_the_coverage_model_cannot_take_is_refused_before_anything_is_written(tmp_path):
    dataset = write_delivery(tmp_path / "dataset", rows=good_events())
    result = _ingest(dataset, tmp_path, "store", "--coverage", "voronoi", "--prior", "population")
    assert result.exit_code == 2
    assert "the population prior needs a grid footprint" in result.output
    assert not (tmp_path / "store").exists()


def test_ingest_says_which_stored_days_a_delivery_left_without_events(tmp_path):
    assert (
        _ingest(write_delivery(tmp_path / "a", rows=good_events()), tmp_path, "store").exit_code
        == 0
    )
    later = write_delivery(tmp_path / "b", rows=[event(timestamp="2011-03-25T08:00:00Z")])
    result = _ingest(later, tmp_path, "store", "--empty-days")
    assert result.exit_code == 0, result.output
    assert "now without events" in result.output
    assert "2011-03-22 to 2011-03-22" in result.output


def test_ingest_refuses_to_empty_stored_days_unless_told_to(tmp_path):
    dataset = write_delivery(tmp_path / "a", rows=good_events())
    assert _ingest(dataset, tmp_path, "store").exit_code == 0
    files = snapshot(tmp_path / "store")
    later = write_delivery(tmp_path / "b", rows=[event(timestamp="2011-03-25T08:00:00Z")])
    result = _ingest(later, tmp_path, "store")
    assert result.exit_code != 0
    output = " ".join(result.output.split())
    assert "1 day(s) the store keeps" in output
    assert "(2011-03-22)" in output
    assert "--empty-days" in output
    assert snapshot(tmp_path / "store") == files


def test_ingest_names_what_the_new_cells_leave_to_make_again(tmp_path):
    dataset = write_delivery(tmp_path / "dataset", rows=good_events())
    assert _ingest(dataset, tmp_path, "store").exit_code == 0
    store = Store(tmp_path / "store")
    areas = municipalities()
    build_tile_footprint(store, areas=areas[areas.area_code.isin(["21004", "44021", "62063"])])
    moved = CELLS.assign(latitude=CELLS.latitude + 0.01 * (CELLS.cell_id == "C"))
    dataset = write_delivery(tmp_path / "moved", rows=good_events(), cells=moved)
    result = _ingest(dataset, tmp_path, "store")
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "The cells changed since the tile footprint was made" in output
    assert "--tile-footprint` makes it again" in output


def test_ingest_names_the_engines(tmp_path):
    dataset = write_delivery(tmp_path / "dataset", rows=good_events(), fmt="csv")
    result = _ingest(dataset, tmp_path, "store", "--engine", "polars")
    assert result.exit_code == 2
    assert "--engine 'polars': choose duckdb or spark" in result.output
    assert not (tmp_path / "store").exists()


def _hive_delivery(folder):
    """A delivery whose events are partitioned by day, as `cellcensus synth` writes them."""
    dataset = write_delivery(folder, rows=good_events())
    day = dataset / "events" / "date=2011-03-22"
    day.mkdir()
    (dataset / "events" / "part-0.parquet").rename(day / "part-0.parquet")
    return dataset


STORE_COMMANDS = {
    "run": ["run", "usual_residence", "--out", "homes.csv"],
    "store info": ["store", "info"],
    "store allocate": ["store", "allocate"],
    "store summarise": ["store", "summarise"],
    "store purge": ["store", "purge", "--before", "2011-04-01"],
}


def test_a_delivery_given_as_a_store_is_refused_and_left_as_it_is(tmp_path, monkeypatch):
    # A delivery has a store's layout: jobs and summaries would meet raw ids, a purge delete them.
    monkeypatch.chdir(tmp_path)
    dataset = _hive_delivery(tmp_path / "world")
    before = snapshot(dataset)
    for name, command in STORE_COMMANDS.items():
        result = runner.invoke(app, [*command, "--store", str(dataset)], env={"COLUMNS": "200"})
        assert result.exit_code == 2, (name, result.output)
        said = " ".join(result.output.split())
        assert f"{dataset} is a delivery, not a store" in said, name
        assert f"cellcensus ingest --dataset {dataset} --store STORE" in said, name
        assert snapshot(dataset) == before, name
    result = _ingest(dataset, tmp_path, "store")  # what the message says to do
    assert result.exit_code == 0, result.output
    assert Store(tmp_path / "store").holds_raw_events() is False


def test_a_delivery_is_not_ingested_into_another_delivery(tmp_path):
    other = _hive_delivery(tmp_path / "other")
    before = snapshot(other)
    dataset = write_delivery(tmp_path / "dataset", rows=good_events())
    result = _ingest(dataset, tmp_path, "other")
    assert result.exit_code == 2, result.output
    assert f"{other} is a delivery, not a store" in " ".join(result.output.split())
    assert snapshot(other) == before  # its raw events kept
