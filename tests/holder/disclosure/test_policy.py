import pandas as pd
import pytest

from cellcensus.errors import CellcensusError
from cellcensus.holder.disclosure import DisclosurePolicy, protect


def test_counts_at_or_below_threshold_are_suppressed_and_keys_completed():
    raw = pd.DataFrame({"area_code": ["a", "b", "c"], "device_count": [15.0, 15.2, 100.4]})
    out = protect(raw, keys=["a", "b", "c", "d"], policy=DisclosurePolicy(min_count=15))
    assert list(out.area_code) == ["a", "b", "c", "d"]
    assert out.device_count.isna().tolist() == [True, False, False, True]
    assert out.device_count.iloc[1] == 15
    assert out.device_count.iloc[2] == 100


def test_key_outside_public_set_is_refused():
    raw = pd.DataFrame({"area_code": ["zz"], "device_count": [50.0]})
    with pytest.raises(CellcensusError, match="public key set"):
        protect(raw, keys=["a"], policy=DisclosurePolicy())


def test_negative_threshold_is_refused():
    with pytest.raises(CellcensusError, match="min_count"):
        DisclosurePolicy(min_count=-1)
