"""The store's location never reaches a client: every spelling engines give it is masked."""

from __future__ import annotations

from pathlib import Path

from cellcensus.holder.api.problems import without_store_path


def test_a_store_path_spelt_as_a_uri_by_spark_is_masked(tmp_path: Path) -> None:
    store = tmp_path / "holder data" / "störe"
    day = "events/date=2011-03-08/part-0.parquet"
    spark = (
        f"[FAILED_READ_FILE] Error while reading file file:{store.as_uri()[7:]}/{day}. "
        f"Path does not exist: file:{store}/{day}"
    )

    masked = without_store_path(spark, store)

    assert masked == (
        f"[FAILED_READ_FILE] Error while reading file file:STORE/{day}. "
        f"Path does not exist: file:STORE/{day}"
    )
    assert "holder" not in masked and "%20" not in masked


def test_a_store_of_one_relative_word_leaves_ordinary_words_alone() -> None:
    assert without_store_path("the store is damaged", Path("store")).startswith("the store is")
