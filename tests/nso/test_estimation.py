import math
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest

from cellcensus.errors import CellcensusError
from cellcensus.nso.estimation import expand_national, expansion_factor


def release(counts: Sequence[object] | pd.api.extensions.ExtensionArray) -> pd.DataFrame:
    return pd.DataFrame(
        {"area_code": [f"1100{i}" for i in range(len(counts))], "device_count": counts}
    )


def test_expansion_multiplies_every_released_count_by_one_national_factor() -> None:
    released = release(pd.array([100, None, 40, 0], dtype="Int64"))

    expanded = expand_national(released=released, market_share=0.5, sampling_fraction=0.2)

    assert list(expanded.columns) == ["area_code", "released_devices", "estimate", "factor"]
    assert list(expanded["area_code"]) == ["11000", "11001", "11002", "11003"]
    assert expanded["factor"].tolist() == pytest.approx([10.0] * 4)
    np.testing.assert_array_equal(expanded["released_devices"], [100.0, np.nan, 40.0, 0.0])
    np.testing.assert_allclose(expanded["estimate"], [1000.0, np.nan, 400.0, 0.0])
    assert expanded["estimate"].dtype == "float64"


@pytest.mark.parametrize("suppressed", [None, np.nan, pd.NA])
def test_any_kind_of_null_means_suppressed(suppressed: object) -> None:
    released = release([20, suppressed])

    expanded = expand_national(released=released, market_share=1.0, sampling_fraction=1.0)

    assert expanded["estimate"].iloc[0] == 20.0
    assert math.isnan(expanded["estimate"].iloc[1])


def test_factor_is_persons_per_device() -> None:
    assert expansion_factor(market_share=0.25, sampling_fraction=0.5) == pytest.approx(8.0)
    assert expansion_factor(market_share=1, sampling_fraction=1) == 1.0


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.01, 40.0, math.nan, math.inf, "0.4", True])
@pytest.mark.parametrize("name", ["market_share", "sampling_fraction"])
def test_shares_outside_zero_one_are_refused_by_name(name: str, bad: object) -> None:
    shares: dict[str, Any] = {"market_share": 0.4, "sampling_fraction": 0.5, name: bad}
    with pytest.raises(CellcensusError, match=name):
        expand_national(released=release([20]), **shares)


def test_missing_column_is_named() -> None:
    with pytest.raises(CellcensusError, match="device_count"):
        expand_national(
            released=pd.DataFrame({"area_code": ["11001"], "devices": [3]}),
            market_share=0.4,
            sampling_fraction=1.0,
        )


def test_repeated_area_is_refused() -> None:
    released = pd.DataFrame({"area_code": ["11001", "11001"], "device_count": [20, 30]})
    with pytest.raises(CellcensusError, match="11001"):
        expand_national(released=released, market_share=0.4, sampling_fraction=1.0)


def test_negative_or_non_numeric_counts_are_refused() -> None:
    with pytest.raises(CellcensusError, match="negative"):
        expand_national(released=release([20, -1]), market_share=0.4, sampling_fraction=1.0)
    with pytest.raises(CellcensusError, match="numeric"):
        expand_national(released=release([20, "many"]), market_share=0.4, sampling_fraction=1.0)


def test_nso_side_never_imports_the_holder() -> None:
    code = (
        "import sys\n"
        "import cellcensus.nso.estimation, cellcensus.nso.validation\n"
        "import cellcensus.nso.expansion, cellcensus.nso.power_law, cellcensus.nso.calibration\n"
        "import cellcensus.nso.uncertainty, cellcensus.nso.production\n"
        "import cellcensus.nso.dissemination, cellcensus.nso.simulation\n"
        "import cellcensus.nso.report.figures, cellcensus.nso.report.html\n"
        "import cellcensus.nso.report.publish, cellcensus.nso.report.quality\n"
        "leaked = sorted(m for m in sys.modules if m.startswith('cellcensus.holder'))\n"
        "assert not leaked, leaked\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
