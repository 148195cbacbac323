"""Local date and hour in the delivery's zone, right across daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import duckdb
import pandas as pd
import pytest
from deliveries import METADATA, event, write_delivery  # type: ignore[import-not-found]

from cellcensus.errors import InputDataError
from cellcensus.holder.store import Store, ingest_dataset
from cellcensus.holder.store.local_time import local_micros_sql, offset_changes


def test_local_hour_across_the_spring_dst_change_in_brussels(tmp_path):
    # 2011-03-27: 01:00 UTC is when Brussels jumps from 02:00 CET to 03:00 CEST.
    times = {
        "2011-03-26T22:59:00Z": (date(2011, 3, 26), 23),
        "2011-03-26T23:00:00Z": (date(2011, 3, 27), 0),
        "2011-03-27T00:30:00Z": (date(2011, 3, 27), 1),
        "2011-03-27T00:59:59Z": (date(2011, 3, 27), 1),
        "2011-03-27T01:00:00Z": (date(2011, 3, 27), 3),
        "2011-03-27T01:30:00Z": (date(2011, 3, 27), 3),
        "2011-03-27T21:59:00Z": (date(2011, 3, 27), 23),
    }
    rows = [event(timestamp=stamp, cell="A") for stamp in times]
    dataset = write_delivery(tmp_path / "dataset", rows=rows, fmt="csv")
    ingest_dataset(dataset=dataset, store=tmp_path / "store", key_file=tmp_path / "key")

    events = Store(tmp_path / "store").read_events()
    found = {
        stamp.strftime("%Y-%m-%dT%H:%M:%SZ"): (day, int(hour))
        for stamp, day, hour in events[["timestamp", "local_date", "local_hour"]].itertuples(
            index=False
        )
    }
    assert found == times
    assert 2 not in set(events["local_hour"])  # 02:xx does not exist that night


def test_local_hour_across_the_autumn_change():
    metadata = METADATA | {"period": {"start": "2011-10-29", "end": "2011-10-31"}}
    stamps = pd.date_range("2011-10-29T20:00Z", "2011-10-31T04:00Z", freq="7min")
    assert _sql_local(stamps, "Europe/Brussels", metadata) == _zoneinfo_local(
        stamps, "Europe/Brussels"
    )


@pytest.mark.parametrize("zone", ["Europe/Brussels", "Asia/Kolkata", "America/St_Johns", "UTC"])
def test_sql_local_time_agrees_with_zoneinfo_over_a_year(zone):
    metadata = METADATA | {"period": {"start": "2011-01-01", "end": "2011-12-31"}}
    stamps = pd.date_range("2011-01-01T00:00Z", "2011-12-31T12:00Z", freq="97min")
    assert _sql_local(stamps, zone, metadata) == _zoneinfo_local(stamps, zone)


def test_offset_changes_find_the_switch_to_the_second():
    changes = offset_changes(
        timezone="Europe/Brussels", start=date(2011, 3, 21), end=date(2011, 3, 27)
    )
    switch = datetime(2011, 3, 27, 1, tzinfo=UTC)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert [(c.since_us, c.offset_us) for c in changes[1:]] == [
        ((switch - epoch) // timedelta(microseconds=1), 7_200_000_000)
    ]
    assert changes[0].offset_us == 3_600_000_000


def test_an_unknown_zone_is_refused():
    with pytest.raises(InputDataError, match="IANA"):
        offset_changes(timezone="Europe/Atlantis", start=date(2011, 1, 1), end=date(2011, 1, 2))


def _sql_local(stamps, zone, metadata):
    period = metadata["period"]
    changes = offset_changes(
        timezone=zone,
        start=date.fromisoformat(period["start"]),
        end=date.fromisoformat(period["end"]),
    )
    local = local_micros_sql(epoch_us="e", changes=changes)
    frame = pd.DataFrame({"e": stamps.as_unit("us").asi8})
    con = duckdb.connect()
    con.register("frame", frame)
    rows = con.sql(
        f"SELECT DATE '1970-01-01' + CAST({local} // 86400000000 AS INTEGER), "
        f"CAST(({local} % 86400000000) // 3600000000 AS INTEGER) FROM frame"
    ).fetchall()
    return [(day, hour) for day, hour in rows]


def _zoneinfo_local(stamps, zone):
    tz = ZoneInfo(zone)
    return [
        (moment.astimezone(tz).date(), moment.astimezone(tz).hour)
        for moment in stamps.to_pydatetime()
    ]
