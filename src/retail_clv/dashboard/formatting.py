"""Number and currency formatting for the dashboard (pure functions, no Streamlit).

The currency symbol defaults to ``£`` (the UCI Online Retail II data set is in pounds
sterling) and can be changed from the dashboard's sidebar.
"""

from __future__ import annotations

import math

DEFAULT_CURRENCY = "£"

#: Currency symbols offered in the sidebar; the first one is the default.
CURRENCY_CHOICES: tuple[str, ...] = (DEFAULT_CURRENCY, "€", "$", "")


def _is_missing(value: float | int | None) -> bool:
    """Return True for ``None`` and NaN."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def format_currency(
    value: float | int | None, symbol: str = DEFAULT_CURRENCY, decimals: int = 2
) -> str:
    """Format an amount of money with a currency symbol and thousands separators.

    Parameters
    ----------
    value : float, int or None
        The amount; ``None`` and NaN are shown as an em dash.
    symbol : str, default "£"
        Currency symbol put before the number (after the minus sign).
    decimals : int, default 2
        Number of decimals.

    Returns
    -------
    str
        For example ``"£1,234.50"`` or ``"-£3.00"``.

    Examples
    --------
    >>> format_currency(1234.5)
    '£1,234.50'
    >>> format_currency(-3, "€")
    '-€3.00'
    """
    if _is_missing(value):
        return "—"
    assert value is not None  # for mypy: _is_missing ruled None out
    sign = "-" if value < 0 else ""
    return f"{sign}{symbol}{abs(value):,.{decimals}f}"


def format_number(value: float | int | None, decimals: int = 0) -> str:
    """Format a count or a plain number with thousands separators.

    Parameters
    ----------
    value : float, int or None
        The number; ``None`` and NaN are shown as an em dash.
    decimals : int, default 0
        Number of decimals.

    Returns
    -------
    str
        For example ``"12,345"``.

    Examples
    --------
    >>> format_number(12345)
    '12,345'
    """
    if _is_missing(value):
        return "—"
    return f"{value:,.{decimals}f}"


def format_percent(fraction: float | None, decimals: int = 1) -> str:
    """Format a fraction (0.25) as a percentage (``"25.0%"``).

    Parameters
    ----------
    fraction : float or None
        The fraction; ``None`` and NaN are shown as an em dash.
    decimals : int, default 1
        Number of decimals of the percentage.

    Returns
    -------
    str
        The percentage text.

    Examples
    --------
    >>> format_percent(0.256)
    '25.6%'
    """
    if _is_missing(fraction):
        return "—"
    assert fraction is not None
    return f"{fraction * 100:.{decimals}f}%"


def currency_column_format(symbol: str = DEFAULT_CURRENCY, decimals: int = 2) -> str:
    """Return a printf-style format for ``st.column_config.NumberColumn`` (with ``,`` groups).

    Parameters
    ----------
    symbol : str, default "£"
        Currency symbol; a literal ``%`` in it is escaped.
    decimals : int, default 2
        Number of decimals.

    Returns
    -------
    str
        For example ``"£%,.2f"`` (Streamlit shows 1234.5 as ``£1,234.50``).
    """
    return f"{symbol.replace('%', '%%')}%,.{decimals}f"
