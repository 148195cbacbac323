"""No raw subscriber identifier reaches any file of the store, quarantine included."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
from deliveries import USERS, event, good_events, write_delivery  # type: ignore[import-not-found]

from cellcensus.holder.geo import build_allocation
from cellcensus.holder.store import Store, ingest_dataset
from cellcensus.reference import municipalities


def _texts(path: Path) -> set[str]:
    """Every value of a Parquet file as text (pages are compressed: bytes alone can hide)."""
    table = pq.read_table(path)
    return {str(value) for column in table.columns for value in column.to_pylist()}


def test_no_file_of_the_store_holds_a_raw_user_id(tmp_path: Path) -> None:
    rows = [
        *good_events(),
        event(user=USERS[0], kind="fax"),  # quarantined with a pseudonym
        event(user=USERS[1], cell="Z", timestamp="not a time"),
        event(user=USERS[2], cell=USERS[2]),  # an id shifted into another field
        event(user=USERS[0], mcc=USERS[0]),
        good_events()[0],  # duplicate
    ]
    dataset = write_delivery(tmp_path / "dataset", rows=rows, fmt="csv")
    with (dataset / "events" / "part-0.csv").open("a", encoding="utf-8") as handle:
        handle.write(f"{USERS[1]},2011-03-22T11:00:00Z,A,data,206,10,35000001,x\n")
    report = ingest_dataset(dataset=dataset, store=tmp_path / "store", key_file=tmp_path / "k")
    build_allocation(store=tmp_path / "store", areas=municipalities())
    assert report.rows_quarantined == 6

    files = [path for path in (tmp_path / "store").rglob("*") if path.is_file()]
    # Text files (JSON, the areas' boundaries as GeoJSON) are read as bytes like the rest.
    assert {path.suffix for path in files} == {".parquet", ".json", ".geojson"}
    values: set[str] = set()
    for path in files:
        content = path.read_bytes()
        for user in USERS:
            assert user.encode() not in content, path
        if path.suffix == ".parquet":
            values |= _texts(path)
    assert "A" in values and "fax" in values  # the scan does see the stored text
    assert values.isdisjoint(USERS)
    quarantine = Store(tmp_path / "store").read_quarantine()
    assert "[user_id removed]" in set(quarantine["cell_id"]) | set(quarantine["mcc_text"])


def test_a_store_folder_an_ingest_creates_is_closed_to_others(tmp_path: Path) -> None:
    """Its quarantine keeps rejected fields' raw text: not for every account of the machine."""
    import stat

    dataset = write_delivery(tmp_path / "dataset", rows=good_events(), fmt="csv")
    store = tmp_path / "new" / "store"
    ingest_dataset(dataset=dataset, store=store, key_file=tmp_path / "k")
    assert stat.S_IMODE(store.stat().st_mode) == 0o750
    # A folder the operator made keeps the mode the operator gave it.
    made = tmp_path / "made"
    made.mkdir(mode=0o755)
    made.chmod(0o755)
    ingest_dataset(dataset=dataset, store=made, key_file=tmp_path / "k")
    assert stat.S_IMODE(made.stat().st_mode) == 0o755
