"""Currency and number formatting."""

from __future__ import annotations

import math

import pytest

from retail_clv.dashboard.formatting import (
    currency_column_format,
    format_currency,
    format_number,
    format_percent,
)


@pytest.mark.parametrize(
    ("value", "symbol", "expected"),
    [
        (1234.5, "£", "£1,234.50"),
        (0, "£", "£0.00"),
        (-3, "€", "-€3.00"),
        (1_000_000.004, "$", "$1,000,000.00"),
        (12.346, "", "12.35"),
        (None, "£", "—"),
        (math.nan, "£", "—"),
    ],
)
def test_format_currency(value: float | None, symbol: str, expected: str) -> None:
    assert format_currency(value, symbol) == expected


def test_format_currency_decimals() -> None:
    assert format_currency(1234.567, decimals=0) == "£1,235"


def test_format_number_and_percent() -> None:
    assert format_number(12345) == "12,345"
    assert format_number(7.25, 1) == "7.2"
    assert format_number(None) == "—"
    assert format_percent(0.256) == "25.6%"
    assert format_percent(1) == "100.0%"
    assert format_percent(math.nan) == "—"


def test_currency_column_format_escapes_percent() -> None:
    assert currency_column_format("£") == "£%,.2f"
    assert currency_column_format("%", 0) == "%%%,.0f"
