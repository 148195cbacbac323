import numpy as np
import pytest

from cellcensus.holder.disclosure import DifferentialPrivacy, Hierarchy, belgian_hierarchy
from cellcensus.holder.disclosure.hierarchy import layout
from cellcensus.holder.disclosure.noise import laplace_scale, noisy_counts


def belgium(leaves: np.ndarray | None = None):
    hierarchy = belgian_hierarchy()
    keys = sorted(hierarchy.parents.area_code)
    cells = layout(leaves=keys, leaf_level="area_code", hierarchy=hierarchy)
    values = np.full(len(keys), 300.0) if leaves is None else leaves
    return cells, values


def test_laplace_scale_is_calibrated_by_opendp_from_epsilon_and_bound():
    assert laplace_scale(epsilon=0.4, contribution_bound=1.0) == pytest.approx(2.5)
    assert laplace_scale(epsilon=0.5, contribution_bound=24.0) == pytest.approx(48.0)


def test_opendp_certifies_the_policy_epsilon():
    cells, leaves = belgium()
    noisy = noisy_counts(
        leaves=leaves, layout=cells, dp_policy=DifferentialPrivacy(), contribution_bound=1.0
    )
    assert noisy.epsilon <= 0.4 + 1e-9
    assert noisy.epsilon == pytest.approx(0.4, rel=1e-6)
    assert noisy.delta == 0.0


def test_gaussian_mechanism_spends_epsilon_and_delta():
    cells, leaves = belgium()
    policy = DifferentialPrivacy(epsilon=1.0, delta=1e-7, mechanism="gaussian")
    noisy = noisy_counts(leaves=leaves, layout=cells, dp_policy=policy, contribution_bound=1.0)
    assert noisy.epsilon <= 1.0 + 1e-9
    assert noisy.delta <= 1e-7
    assert noisy.ci95[0] == pytest.approx(1.96 * noisy.scale, rel=1e-3)


def test_totals_summed_from_noisy_leaves_are_consistent_and_non_negative():
    rng = np.random.default_rng(0)
    cells, _ = belgium()
    leaves = rng.integers(0, 40, size=cells.n_leaves).astype(float)
    noisy = noisy_counts(
        leaves=leaves, layout=cells, dp_policy=DifferentialPrivacy(), contribution_bound=1.0
    )
    assert (noisy.values >= 0).all()
    np.testing.assert_allclose(cells.totals(noisy.values[: cells.n_leaves]), noisy.values)
    region = cells.offsets[3]
    assert noisy.ci95[region] > 10 * noisy.ci95[0]  # sum of hundreds of leaves


def test_measured_totals_are_reconciled_by_least_squares():
    cells, leaves = belgium()
    policy = DifferentialPrivacy(measure_totals=True)
    noisy = noisy_counts(leaves=leaves, layout=cells, dp_policy=policy, contribution_bound=1.0)
    assert noisy.scale == pytest.approx(4 * 2.5)  # epsilon split over 4 levels
    np.testing.assert_allclose(cells.totals(noisy.values[: cells.n_leaves]), noisy.values)
    assert (noisy.values >= 0).all()
    exact = cells.totals(leaves)
    region = slice(cells.offsets[3], None)
    # reconciled region totals are far better than sums of hundreds of equally noisy leaves
    assert (noisy.ci95[region] < noisy.ci95[0] * 2).all()
    assert np.abs(noisy.values[region] - exact[region]).max() < 6 * noisy.ci95[region].max()


def test_small_hierarchy_least_squares_matches_the_closed_form():
    hierarchy = Hierarchy(
        leaf_level="leaf",
        parents=__import__("pandas").DataFrame({"area_code": ["a", "b"], "top": ["T", "T"]}),
    )
    cells = layout(leaves=["a", "b"], leaf_level="leaf", hierarchy=hierarchy)
    matrix = cells.aggregation_matrix()
    assert matrix.tolist() == [[1, 0], [0, 1], [1, 1]]
    noisy = noisy_counts(
        leaves=np.array([1000.0, 2000.0]),
        layout=cells,
        dp_policy=DifferentialPrivacy(measure_totals=True),
        contribution_bound=1.0,
    )
    # Var of a reconciled leaf: (A'A)^-1 = [[2,-1],[-1,2]]/3 -> 2/3 of one measurement's
    sd = noisy.scale * np.sqrt(2)
    assert noisy.ci95[0] / sd == pytest.approx(np.sqrt(2 / 3) * np.log(20) / np.sqrt(2))
