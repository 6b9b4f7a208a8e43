"""The panels' amount inputs: a price typed as a decimal becomes integer minor units (through
Decimal, never a float), with no more decimals than the currency has; and back for the input."""

from __future__ import annotations

import pytest

from web.seller_kit import from_minor, to_minor


@pytest.mark.parametrize(("text", "currency", "minor"), [
    ("19.90", "USD", 1990), ("0.29", "USD", 29), ("1,234.5", "EUR", 123450), ("1200", "JPY", 1200),
    ("1.234", "KWD", 1234), (" 7 ", "USD", 700), ("0.07", "USD", 7),
])
def test_a_typed_amount_is_the_exact_number_of_minor_units(text: str, currency: str, minor: int) -> None:
    assert to_minor(text, currency) == minor
    assert to_minor(from_minor(minor, currency), currency) == minor


@pytest.mark.parametrize(("text", "currency"), [
    ("19.999", "USD"), ("12.5", "JPY"), ("-3", "USD"), ("1e3", "USD"), ("", "USD"), ("ten", "USD"), ("NaN", "USD"),
])
def test_what_is_not_an_amount_in_the_currency_is_refused(text: str, currency: str) -> None:
    assert to_minor(text, currency) is None


def test_an_amount_shows_in_its_input_with_the_currencys_decimals() -> None:
    assert (from_minor(1990, "USD"), from_minor(5, "USD"), from_minor(1200, "JPY"), from_minor(-150, "EUR")) == (
        "19.90", "0.05", "1200", "-1.50")
