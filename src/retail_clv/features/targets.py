"""Prediction targets and training frames (features joined with targets, zeros included)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import polars as pl

from retail_clv.errors import NotEnoughDataError
from retail_clv.features.build import (
    FEATURE_COLUMNS,
    PURCHASE_COLUMNS,
    check_columns,
    customer_features,
    normalize_cutoffs,
)
from retail_clv.features.dates import wall_clock
from retail_clv.features.money import line_milli, to_currency


def targets(
    purchases: pl.DataFrame, cutoffs: Sequence[dt.date] | dt.date, horizon_days: int = 30
) -> pl.DataFrame:
    """Spend and distinct products of each buyer in ``[cutoff, cutoff + horizon_days)``.

    Parameters
    ----------
    purchases : pl.DataFrame
        Valid purchase lines (``customer_id, stock_code, quantity, price, invoice_date``...).
    cutoffs : Sequence[datetime.date]
        Window starts (midnight, inclusive).
    horizon_days : int, default 30
        Window length in days (the end is exclusive).

    Returns
    -------
    pl.DataFrame
        ``customer_id, cutoff, spend, n_products`` for every customer who bought in the window
        (new customers included). Join it to the population with :func:`training_frame` to get
        the zeros of non-buyers.
    """
    if horizon_days < 1:
        raise NotEnoughDataError(f"horizon_days must be >= 1, got {horizon_days}")
    check_columns(purchases, PURCHASE_COLUMNS[:6], "purchases")
    lines = (
        wall_clock(purchases)
        .lazy()
        .select(
            pl.col("customer_id").cast(pl.Utf8),
            "stock_code",
            pl.col("invoice_date").cast(pl.Datetime("us")),
            amount=line_milli(),  # exact integer sums (features/money.py)
        )
    )
    # One vectorized filter + group_by per cutoff (a loop over cutoffs, never over rows): the
    # windows of close cutoffs overlap, and an inequality join proved slower here.
    parts = []
    for cutoff in normalize_cutoffs(cutoffs):
        start = dt.datetime.combine(cutoff, dt.time())
        parts.append(
            lines.filter(
                pl.col("invoice_date").is_between(
                    start, start + dt.timedelta(days=horizon_days), closed="left"
                )
            )
            .group_by("customer_id")
            .agg(
                spend=to_currency(pl.col("amount").sum()),
                n_products=pl.col("stock_code").n_unique().cast(pl.Int64),
            )
            .with_columns(cutoff=pl.lit(cutoff, dtype=pl.Date))
        )
    return (
        pl.concat(pl.collect_all(parts))
        .select("customer_id", "cutoff", "spend", "n_products")
        .sort(["cutoff", "customer_id"])
    )


def training_frame(
    purchases: pl.DataFrame,
    cancellations: pl.DataFrame | None,
    cutoffs: Sequence[dt.date] | dt.date,
    horizon_days: int = 30,
) -> pl.DataFrame:
    """Features at each cutoff joined with the window targets; non-buyers get 0.

    Parameters
    ----------
    purchases, cancellations : pl.DataFrame
        As for :func:`retail_clv.features.customer_features`.
    cutoffs : Sequence[datetime.date]
        Cutoff dates.
    horizon_days : int, default 30
        Window length in days.

    Returns
    -------
    pl.DataFrame
        The feature frame plus ``spend`` (Float64) and ``n_products`` (Int64); one row per
        population member (customer with a purchase strictly before the cutoff) and cutoff.
    """
    feats = customer_features(purchases, cancellations, cutoffs)
    tg = targets(purchases, cutoffs, horizon_days)
    return feats.join(tg, on=["customer_id", "cutoff"], how="left").with_columns(
        pl.col("spend").fill_null(0.0), pl.col("n_products").fill_null(0)
    )


__all__ = ["FEATURE_COLUMNS", "targets", "training_frame"]
