"""A submission reads the store's folder of days once, and each day's file once."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from cellcensus.holder.enclave import EnclaveService, JobRequest
from cellcensus.holder.store.layout import Store


@pytest.mark.parametrize(
    "parameters",
    [{}, {"start": "2011-03-08", "end": "2011-03-10"}],
    ids=["every-day", "a-period"],
)
def test_a_submission_lists_the_stored_days_once_and_stats_each_day_file_once(
    state: Any, store: Path, monkeypatch: pytest.MonkeyPatch, parameters: dict[str, Any]
) -> None:
    service = EnclaveService(store=store, state=state)
    events = Store(store).events_dir
    day_files = {Store(store).day_path(day) for day in Store(store).days()}
    assert len(day_files) > 3
    listed: Counter[Path] = Counter()
    statted: Counter[Path] = Counter()
    iterdir, path_stat = Path.iterdir, Path.stat

    def counted_iterdir(self: Path) -> Any:
        listed[self] += 1
        return iterdir(self)

    def counted_stat(self: Path, **options: Any) -> os.stat_result:
        if self in day_files:
            statted[self] += 1
        return path_stat(self, **options)

    monkeypatch.setattr(Path, "iterdir", counted_iterdir)
    monkeypatch.setattr(Path, "stat", counted_stat)
    new = service.prepare(
        analyst="alice", request=JobRequest(algorithm="usual_residence", parameters=parameters)
    )
    monkeypatch.undo()
    assert listed[events] == 1
    assert statted == Counter(day_files)  # every day's file once, those outside the period too
    # What the single listing told is what the job reads and what its request hash keeps.
    start, end = new.period
    read = [day for day in Store(store).days() if start <= day <= end]
    assert new.days.startswith(f"{read[0]}")
    if parameters:
        assert (str(start), str(end)) == (parameters["start"], parameters["end"])
        assert len(read) == 3
