"""Customer features as of many cutoffs at once, computed strictly before each cutoff.

Every function here is pure: Polars frames in, a Polars frame out. A cutoff is a calendar date
``c``; a purchase counts for ``c`` when ``invoice_date < c`` (midnight), so the day of the cutoff
itself already belongs to the prediction window.

How many cutoffs are handled in one pass (no per-customer or per-cutoff Python loop):

* **Invoice-level aggregates** (spend, orders, windowed sums, intervals) come from a cross join of
  the invoice table (about 37k rows on Online Retail II) with the cutoffs, filtered to
  ``day < cutoff``, then one ``group_by(customer_id, cutoff)``.
* **Distinct counts and category shares** would need the much larger line table in that cross
  join, so they use a bucket trick: each first occurrence (or each category spend) gets the index
  ``b`` of the first cutoff it counts for (``searchsorted``), values are summed per bucket and
  cumulated over buckets, and an as-of join picks, for every cutoff ``k``, the last bucket
  ``b <= k``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

import numpy as np
import polars as pl

from retail_clv.errors import NotEnoughDataError, SchemaError
from retail_clv.features.bgnbd import BGNBD_COLUMNS, bgnbd_features
from retail_clv.features.dates import wall_clock
from retail_clv.features.money import line_milli, to_currency
from retail_clv.ingest.categories import UNCATEGORISED
from retail_clv.store.queries import CANCELLATIONS_SCHEMA, PURCHASES_SCHEMA

logger = logging.getLogger(__name__)

#: Columns the features read: those of ``store.queries.read_purchases`` / ``read_cancellations``.
PURCHASE_COLUMNS: tuple[str, ...] = tuple(PURCHASES_SCHEMA)
CANCELLATION_COLUMNS: tuple[str, ...] = tuple(CANCELLATIONS_SCHEMA)

#: Trailing windows (days) of the windowed spend / order counts.
WINDOWS: tuple[int, ...] = (30, 90, 180, 365)
#: Columns summed from line values (integer thousandths until the last step of the build).
_MONEY: tuple[str, ...] = (
    "monetary",
    "max_order_value",
    *(f"spend_{w}d" for w in WINDOWS),
    "spend_prev_90d",
    "spend_same_30d_last_year",
    "top_cat_spend",
    "returned",
)

#: Model inputs, all numeric (Float64); see ``docs/features.md`` for the catalog.
#: Version of the feature definitions, recorded in every model run and checked when one is
#: loaded: a run must be scored with the features it was trained on. 1: the first definitions;
#: 2: Gamma-Gamma fitted on a unit scale, retried BG/NBD fits, an order per invoice and day.
FEATURE_VERSION = 2

FEATURE_COLUMNS: list[str] = [
    # the original design's eight
    "recency_days",
    "frequency",
    "monetary",
    "avg_order_value",
    "tenure_days",
    "lines_per_order",
    "n_categories",
    "unique_products",
    # windows
    *[f"spend_{w}d" for w in WINDOWS],
    *[f"orders_{w}d" for w in WINDOWS],
    "spend_same_30d_last_year",
    "run_rate_adj_30d",
    "max_order_value",
    "purchase_days",
    # rhythm
    "ipi_mean_days",
    "ipi_std_days",
    "recency_ipi_ratio",
    "trend_90d",
    # returns, mix, place, season
    "return_rate",
    "top_category_share",
    "is_uk",
    "country_freq",
    "cutoff_month",
    "month_sin",
    "month_cos",
    # BG/NBD + Gamma-Gamma fitted at each cutoff on the data before it
    *BGNBD_COLUMNS,
]


def check_columns(frame: pl.DataFrame, required: Sequence[str], name: str) -> None:
    """Raise :class:`SchemaError` when ``frame`` lacks one of ``required``.

    Parameters
    ----------
    frame : pl.DataFrame
        The frame to check.
    required : Sequence[str]
        Column names that must be present.
    name : str
        Name of the frame used in the message (``purchases``, ``cancellations``).
    """
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise SchemaError(
            f"{name} frame lacks column(s) {', '.join(missing)}; expected {', '.join(required)}"
        )


def normalize_cutoffs(cutoffs: Sequence[dt.date] | dt.date) -> list[dt.date]:
    """Return the cutoffs as sorted, distinct ``datetime.date`` values.

    Parameters
    ----------
    cutoffs : Sequence[datetime.date] or datetime.date
        Dates (``datetime`` values are truncated to their date).

    Returns
    -------
    list[datetime.date]
        Sorted distinct dates.
    """
    if isinstance(cutoffs, dt.date):
        cutoffs = [cutoffs]
    out = {c.date() if isinstance(c, dt.datetime) else c for c in cutoffs}
    if not out:
        raise NotEnoughDataError("no cutoff date given")
    return sorted(out)


def _cutoff_frame(cutoffs: list[dt.date]) -> pl.DataFrame:
    return pl.DataFrame(
        {"cutoff": cutoffs, "k": np.arange(len(cutoffs), dtype=np.int64)},
        schema={"cutoff": pl.Date, "k": pl.Int64},
    )


def _bucket(day: pl.Series, cutoffs: list[dt.date]) -> pl.Series:
    """Index of the first cutoff strictly after ``day`` (a day counts for cutoffs ``k >= b``)."""
    cut = np.array(cutoffs, dtype="datetime64[D]")
    days = day.cast(pl.Date).to_numpy().astype("datetime64[D]")
    return pl.Series("b", np.searchsorted(cut, days, side="right").astype(np.int64))


def _asof_cumulative(
    events: pl.DataFrame, grid: pl.DataFrame, keys: list[str], values: list[str]
) -> pl.DataFrame:
    """Cumulate ``values`` over buckets per ``keys`` and read them at every grid cutoff ``k``.

    ``events`` has ``keys``, ``b`` and ``values``; ``grid`` has ``keys`` and ``k``. Returns the
    grid with the cumulated values (0 when the key had no event before cutoff ``k``).
    """
    cum = (
        events.group_by([*keys, "b"])
        .agg([pl.col(v).sum() for v in values])
        .sort([*keys, "b"])
        .with_columns([pl.col(v).cum_sum().over(keys) for v in values])
        .sort("b")
    )
    joined = grid.sort("k").join_asof(
        cum, left_on="k", right_on="b", by=keys, strategy="backward", check_sortedness=False
    )
    return joined.with_columns([pl.col(v).fill_null(0) for v in values]).drop("b")


def _invoices(purchases: pl.DataFrame) -> pl.DataFrame:
    """One row per order: a customer's invoice on one day.

    An invoice number whose lines fall on several days (an order shipped in parts, a number
    reused by another till) counts as one order per day: grouped by invoice alone it would be
    dated by its first line while summing the later ones, so lines on or after a cutoff would
    leak into that cutoff's features.
    """
    return (
        purchases.with_columns(
            day=pl.col("invoice_date").dt.date(),
            amount=line_milli(),  # exact integer sums (features/money.py)
        )
        .group_by(["customer_id", "invoice", "day"])
        .agg(
            amount=pl.col("amount").sum(),
            lines=pl.len().cast(pl.Float64),
        )
    )


def customer_features(
    purchases: pl.DataFrame,
    cancellations: pl.DataFrame | None,
    cutoffs: Sequence[dt.date] | dt.date,
) -> pl.DataFrame:
    """Compute every customer's features as of each cutoff, from data strictly before it.

    Parameters
    ----------
    purchases : pl.DataFrame
        Valid purchase lines with columns ``customer_id, invoice, stock_code, quantity, price,
        invoice_date, country, category`` (extra columns are ignored).
    cancellations : pl.DataFrame or None
        Cancellation lines ``customer_id, invoice, stock_code, quantity (< 0), price,
        invoice_date``; ``None`` or empty means no returns.
    cutoffs : Sequence[datetime.date]
        Cutoff dates; a line counts when ``invoice_date < cutoff`` (midnight).

    Returns
    -------
    pl.DataFrame
        One row per (customer, cutoff) for every customer with a purchase strictly before the
        cutoff: ``customer_id, cutoff, country`` and the :data:`FEATURE_COLUMNS` (Float64),
        sorted by cutoff then customer.

    Raises
    ------
    SchemaError
        When a required column is missing.
    """
    check_columns(purchases, PURCHASE_COLUMNS, "purchases")
    purchases = wall_clock(purchases)
    cuts = normalize_cutoffs(cutoffs)
    cut_frame = _cutoff_frame(cuts)
    p = purchases.select(PURCHASE_COLUMNS).with_columns(
        pl.col("customer_id").cast(pl.Utf8),
        pl.col("invoice_date").cast(pl.Datetime("us")),
        # null keys never match in a join: one category for lines without one, as in the store
        pl.col("category").fill_null(UNCATEGORISED),
    )
    # a total order makes every aggregation (and the BG/NBD fits) independent of input order
    p = p.filter(pl.col("invoice_date") < dt.datetime.combine(cuts[-1], dt.time())).sort(
        ["customer_id", "invoice_date", "invoice", "stock_code", "quantity", "price"]
    )

    inv = _invoices(p)
    # distinct purchase days and the gap to the previous one (for interval statistics)
    days = (
        inv.select("customer_id", "day")
        .unique()
        .sort(["customer_id", "day"])
        .with_columns(gap=pl.col("day") - pl.col("day").shift(1).over("customer_id"))
        .with_columns(gap=pl.col("gap").dt.total_days().cast(pl.Float64))
    )

    age = (pl.col("cutoff") - pl.col("day")).dt.total_days()
    base = (
        inv.join(cut_frame, how="cross")
        .filter(pl.col("day") < pl.col("cutoff"))
        .with_columns(age=age)
        .group_by(["customer_id", "cutoff", "k"])
        .agg(
            recency_days=pl.col("age").min().cast(pl.Float64),
            tenure_days=pl.col("age").max().cast(pl.Float64),
            frequency=pl.len().cast(pl.Float64),
            monetary=pl.col("amount").sum(),
            lines=pl.col("lines").sum(),
            max_order_value=pl.col("amount").max(),
            **{f"spend_{w}d": pl.col("amount").filter(pl.col("age") <= w).sum() for w in WINDOWS},
            **{
                f"orders_{w}d": pl.col("amount").filter(pl.col("age") <= w).len().cast(pl.Float64)
                for w in WINDOWS
            },
            spend_prev_90d=pl.col("amount")
            .filter((pl.col("age") > 90) & (pl.col("age") <= 180))
            .sum(),
            spend_same_30d_last_year=pl.col("amount")
            .filter((pl.col("age") > 335) & (pl.col("age") <= 365))
            .sum(),
        )
    )
    rhythm = (
        days.join(cut_frame, how="cross")
        .filter(pl.col("day") < pl.col("cutoff"))
        .group_by(["customer_id", "k"])
        .agg(
            purchase_days=pl.len().cast(pl.Float64),
            ipi_mean_days=pl.col("gap").mean(),
            ipi_std_days=pl.col("gap").std(ddof=0),
        )
    )
    grid = base.select("customer_id", "k")

    # distinct products / categories: count first occurrences, cumulated over cutoff buckets
    firsts_prod = p.group_by(["customer_id", "stock_code"]).agg(
        day=pl.col("invoice_date").min().dt.date()
    )
    firsts_prod = firsts_prod.with_columns(_bucket(firsts_prod["day"], cuts), one=pl.lit(1.0))
    prod = _asof_cumulative(
        firsts_prod.rename({"one": "unique_products"}), grid, ["customer_id"], ["unique_products"]
    )
    firsts_cat = p.group_by(["customer_id", "category"]).agg(
        day=pl.col("invoice_date").min().dt.date()
    )
    firsts_cat = firsts_cat.with_columns(_bucket(firsts_cat["day"], cuts), n_categories=pl.lit(1.0))
    cats = _asof_cumulative(firsts_cat, grid, ["customer_id"], ["n_categories"])

    # top-category share: spend per (customer, category) cumulated over buckets
    cat_spend = (
        p.with_columns(
            day=pl.col("invoice_date").dt.date(),
            cat_spend=line_milli(),
        )
        .group_by(["customer_id", "category", "day"])
        .agg(pl.col("cat_spend").sum())
    )
    cat_spend = cat_spend.with_columns(_bucket(cat_spend["day"], cuts))
    first_b = cat_spend.group_by(["customer_id", "category"]).agg(b0=pl.col("b").min())
    cat_grid = (
        first_b.join(cut_frame.select("k"), how="cross")
        .filter(pl.col("k") >= pl.col("b0"))
        .drop("b0")
    )
    top = (
        _asof_cumulative(cat_spend, cat_grid, ["customer_id", "category"], ["cat_spend"])
        .group_by(["customer_id", "k"])
        .agg(top_cat_spend=pl.col("cat_spend").max())
    )

    # cancellations (returns) strictly before the cutoff, as a share of spend
    if cancellations is not None and cancellations.height > 0:
        check_columns(cancellations, CANCELLATION_COLUMNS, "cancellations")
        canc = wall_clock(cancellations).select(
            pl.col("customer_id").cast(pl.Utf8),
            day=pl.col("invoice_date").cast(pl.Datetime("us")).dt.date(),
            returned=line_milli().abs(),
        )
        canc = canc.filter(pl.col("day") < cuts[-1])
        canc = canc.with_columns(_bucket(canc["day"], cuts))
        ret = _asof_cumulative(canc, grid, ["customer_id"], ["returned"])
    else:
        ret = grid.with_columns(returned=pl.lit(0, dtype=pl.Int64))

    # country: the customer's first country (stable over cutoffs)
    country = (
        p.sort(["invoice_date", "country"], nulls_last=True)
        .group_by("customer_id")
        .agg(country=pl.col("country").first())
        .with_columns(pl.col("country").fill_null("Unknown"))
    )

    bg = bgnbd_features(p, cuts)
    out = (
        base.join(rhythm, on=["customer_id", "k"], how="left")
        .join(prod, on=["customer_id", "k"], how="left")
        .join(cats, on=["customer_id", "k"], how="left")
        .join(top, on=["customer_id", "k"], how="left")
        .join(ret, on=["customer_id", "k"], how="left")
        .join(country, on="customer_id", how="left")
        .join(bg, on=["customer_id", "cutoff"], how="left")
    )
    # money was summed in exact integer thousandths; back to currency units before any ratio
    out = out.with_columns([to_currency(pl.col(c)) for c in _MONEY])
    month = pl.col("cutoff").dt.month().cast(pl.Float64)
    out = out.with_columns(
        avg_order_value=pl.col("monetary") / pl.col("frequency"),
        lines_per_order=pl.col("lines") / pl.col("frequency"),
        recency_ipi_ratio=pl.col("recency_days") / pl.col("ipi_mean_days"),
        trend_90d=pl.when((pl.col("spend_90d") + pl.col("spend_prev_90d")) > 0)
        .then(
            (pl.col("spend_90d") - pl.col("spend_prev_90d"))
            / (pl.col("spend_90d") + pl.col("spend_prev_90d"))
        )
        .otherwise(0.0),
        run_rate_adj_30d=pl.col("spend_365d") * 30.0 / pl.col("tenure_days").clip(30.0, 365.0),
        # null (imputed) when the spend rounds to 0 (prices below 0.0005): never inf or NaN
        return_rate=pl.when(pl.col("monetary") > 0).then(pl.col("returned") / pl.col("monetary")),
        top_category_share=pl.when(pl.col("monetary") > 0).then(
            pl.col("top_cat_spend") / pl.col("monetary")
        ),
        is_uk=(pl.col("country") == "United Kingdom").cast(pl.Float64),
        country_freq=(pl.len().over(["cutoff", "country"]) / pl.len().over("cutoff")).cast(
            pl.Float64
        ),
        cutoff_month=month,
        month_sin=(2 * np.pi * month / 12).sin(),
        month_cos=(2 * np.pi * month / 12).cos(),
    )
    out = out.select(
        "customer_id",
        "cutoff",
        "country",
        *[pl.col(c).cast(pl.Float64) for c in FEATURE_COLUMNS],
    ).sort(["cutoff", "customer_id"])
    logger.debug("features: %d rows for %d cutoffs", out.height, len(cuts))
    return out
