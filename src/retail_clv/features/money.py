"""Money summed exactly: line values held as whole thousandths of the currency unit.

Polars' parallel group-bys add a group's rows in an order that changes from run to run, and
floating-point addition is not associative, so float sums of the same lines differ in their
last bits between runs. A tree split can flip on such a difference, which made two trainings
on the same data differ in the third decimal of R². Integer sums are exact in any order, so
every money feature and target is bit-for-bit reproducible. Each line value is rounded to the
nearest 0.001 first (at most 0.0005 per line).
"""

from __future__ import annotations

import polars as pl

#: Thousandths per currency unit.
MILLI = 1000


def line_milli(quantity: str = "quantity", price: str = "price") -> pl.Expr:
    """``quantity × price`` of each line as an ``Int64`` number of thousandths.

    Parameters
    ----------
    quantity, price : str
        Column names.

    Returns
    -------
    polars.Expr
        The rounded line value in thousandths of the currency unit.
    """
    value = pl.col(quantity).cast(pl.Float64) * pl.col(price).cast(pl.Float64)
    return (value * MILLI).round(0).cast(pl.Int64)


def to_currency(milli: pl.Expr) -> pl.Expr:
    """Convert an (exactly summed) ``Int64`` number of thousandths back to currency units.

    Parameters
    ----------
    milli : polars.Expr
        Thousandths of the currency unit.

    Returns
    -------
    polars.Expr
        ``Float64`` currency units.
    """
    return milli.cast(pl.Float64) / MILLI
