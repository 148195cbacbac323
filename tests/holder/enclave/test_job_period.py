"""A job without dates reads every stored day: the store's period, not its last delivery's."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "api"))

from tiny_store import START, build_store  # type: ignore[import-not-found]

from cellcensus.holder.enclave import Enclave
from cellcensus.holder.enclave.compute import job_period
from cellcensus.holder.store import Store

LAST = START + dt.timedelta(days=6)


def later_delivery(store: Path) -> Path:
    """The store as after a second delivery of its last two days: metadata names only those."""
    meta = json.loads((store / "metadata.json").read_text())
    meta["period"] = {"start": "2011-03-12", "end": LAST.isoformat()}
    (store / "metadata.json").write_text(json.dumps(meta))
    return store


def test_a_job_without_dates_covers_every_stored_day(tmp_path):
    store = later_delivery(Path(build_store(tmp_path / "store")))
    # The period an analyst's scope must cover: every day the job reads.
    assert job_period(Store(store), {}) == (START, LAST)
    assert job_period(Store(store), {"end": "2011-03-09"}) == (START, dt.date(2011, 3, 9))
    enclave = Enclave(store=store, state_url=f"sqlite:///{tmp_path / 'state.db'}")
    release = enclave.run(
        algorithm="present_population", parameters={"slot_minutes": 1440}, analyst="a"
    )
    dates = sorted({str(day)[:10] for day in release.table["local_date"]})
    assert dates == [(START + dt.timedelta(days=k)).isoformat() for k in range(7)]
    assert release.published["period"] == {"start": START.isoformat(), "end": LAST.isoformat()}
    # Beside local dates and hours, the zone they are in (SDMX-CSV writes the UTC offset).
    assert release.published["timezone"] == "Europe/Brussels"
    explicit = enclave.run(
        algorithm="usual_residence",
        parameters={"start": "2011-03-08", "end": "2011-03-12"},
        analyst="a",
    )
    assert explicit.published["period"] == {"start": "2011-03-08", "end": "2011-03-12"}
