"""How the report writes numbers."""

from cellcensus.nso.report.numbers import signed_number, signed_percent


def test_a_value_that_rounds_to_zero_has_no_sign() -> None:
    # The size-class table showed "−0.0%" for a total off by −0.04 %.
    assert signed_percent(-0.0004) == "0.0%" and signed_percent(0.0004) == "0.0%"
    assert signed_number(-0.4) == "0" and signed_number(0.3) == "0"
    assert signed_percent(-0.012) == "\N{MINUS SIGN}1.2%" and signed_percent(0.5) == "+50.0%"
    assert signed_number(-1234.0) == "\N{MINUS SIGN}1,234" and signed_number(12.0) == "+12"
    assert signed_percent(float("nan")) == "–"
