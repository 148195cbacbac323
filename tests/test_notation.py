import pytest

from cellcensus.notation import scientific


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (1e-6, "10⁻⁶"),
        (5e-7, "5 × 10⁻⁷"),
        (1.5e-10, "1.5 × 10⁻¹⁰"),
        (1e-7 + 1e-6, "1.1 × 10⁻⁶"),  # a sum of deltas, rounded as :g rounds it
        (0.001, "0.001"),  # as :g writes it, without an exponent
        (0.5, "0.5"),
    ],
)
def test_a_small_delta_is_written_as_a_power_of_ten(value: float, written: str) -> None:
    assert scientific(value) == written
