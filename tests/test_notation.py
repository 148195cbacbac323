import datetime as dt

import pytest

from cellcensus.notation import date_runs, scientific


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


def test_days_are_written_as_runs_of_consecutive_dates_in_order() -> None:
    days = [dt.date(2011, 3, d) for d in (11, 7, 8, 9, 13, 28)] + [dt.date(2011, 4, 1)]
    assert (
        date_runs(days)
        == "2011-03-07 to 2011-03-09, 2011-03-11, 2011-03-13, 2011-03-28, 2011-04-01"
    )
    month_end = [dt.date(2011, 2, 28), dt.date(2011, 3, 1)]  # runs across a month's end
    assert date_runs(month_end) == "2011-02-28 to 2011-03-01"
    assert date_runs([]) == ""
