"""The findings of the figures' text alternatives say what the numbers show, not more."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cellcensus.nso.report.figures import SCATTER_PNG
from cellcensus.nso.report.findings import residents_findings


def test_the_scatter_claims_no_agreement_the_numbers_do_not_show() -> None:
    # Estimates that know nothing of the census: its dots lie nowhere near the diagonal.
    census = np.geomspace(1_000, 100_000, 40)
    estimate = census[::-1]
    table = pd.DataFrame(
        {
            "area_code": [f"{code:05d}" for code in range(40)],
            "name": [f"m{code}" for code in range(40)],
            "estimate": estimate,
            "census": census,
            "relative_error": estimate / census - 1,
        }
    )

    said = residents_findings(table)[SCATTER_PNG]

    assert "lie along the diagonal" not in said
    assert "On the diagonal, estimate and census agree. Over the 40 dots" in said
    assert "correlation of the logarithms -1.000" in said
