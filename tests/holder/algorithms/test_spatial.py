import numpy as np
import pandas as pd
import pytest

from cellcensus.holder.algorithms.spatial import allocation_counts, bayesian_counts

# Two areas of 1 km2: A holds 100 devices, B 10, each spread evenly inside its area.
# Cell c1 covers the west half of A, c2 the east half of A and west half of B, c3 the east
# half of B. So the cells see 50, 50 + 5 and 5 devices.
ALLOCATION = pd.DataFrame(
    {
        "cell_id": ["c1", "c2", "c2", "c3"],
        "area_code": ["A", "A", "B", "B"],
        "overlap_km2": [0.5, 0.5, 0.5, 0.5],
        "weight": [1.0, 0.5, 0.5, 1.0],
    }
)
CELL_COUNTS = pd.DataFrame({"cell_id": ["c1", "c2", "c3"], "device_count": [50.0, 55.0, 5.0]})


def as_dict(frame):
    return dict(zip(frame.area_code, frame.device_count, strict=True))


def test_allocation_spreads_a_straddling_cell_evenly_and_is_biased():
    counts = as_dict(allocation_counts(cell_counts=CELL_COUNTS, allocation=ALLOCATION))
    assert counts == pytest.approx({"A": 77.5, "B": 32.5})


def test_bayesian_recovers_the_true_densities():
    counts = as_dict(bayesian_counts(cell_counts=CELL_COUNTS, allocation=ALLOCATION))
    assert counts == pytest.approx({"A": 100.0, "B": 10.0}, abs=0.01)


def test_bayesian_keeps_the_total_and_recovers_a_random_world():
    rng = np.random.default_rng(3)
    n_areas, n_cells = 40, 160
    # Each cell overlaps 1-3 random areas with random footprint shares.
    rows = []
    for cell in range(n_cells):
        for area in rng.choice(n_areas, size=rng.integers(1, 4), replace=False):
            rows.append((f"c{cell}", f"a{area:02d}", rng.uniform(0.1, 1.0)))
    allocation = pd.DataFrame(rows, columns=["cell_id", "area_code", "overlap_km2"])
    allocation["weight"] = allocation.overlap_km2 / allocation.groupby(
        "cell_id"
    ).overlap_km2.transform("sum")
    truth = pd.Series(rng.lognormal(5, 1, n_areas), index=[f"a{i:02d}" for i in range(n_areas)])
    serving = allocation.overlap_km2 / allocation.groupby("area_code").overlap_km2.transform("sum")
    expected = (serving * allocation.area_code.map(truth)).groupby(allocation.cell_id).sum()
    cell_counts = expected.rename("device_count").rename_axis("cell_id").reset_index()

    estimate = bayesian_counts(cell_counts=cell_counts, allocation=allocation, max_iterations=2000)
    estimate = estimate.set_index("area_code").device_count
    assert estimate.sum() == pytest.approx(cell_counts.device_count.sum())
    naive = allocation_counts(cell_counts=cell_counts, allocation=allocation)
    naive_error = (naive.set_index("area_code").device_count - truth).abs().sum() / truth.sum()
    bayes_error = (estimate - truth).abs().sum() / truth.sum()
    assert bayes_error < 0.02
    assert bayes_error < naive_error / 3
