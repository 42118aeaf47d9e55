"""Write a synthetic Online Retail II export (plus ground truth), streaming block by block.

Customers are simulated in fixed blocks of :data:`BLOCK_CUSTOMERS`; block ``k`` draws from its
own generator ``numpy.random.default_rng([seed, 1, k])`` (the catalog from
``default_rng([seed, 0])``), so the output depends on the seed only — not on how many blocks are
buffered before a write. Rows are sorted by time *within* each block and blocks are written one
after the other (the file is a concatenation of time-sorted runs; nothing downstream depends on
row order). Invoice numbers are consecutive in that order, starting at 489434.

Dirt, added on top of the clean purchase lines (clean lines are never altered, so the truth
stays exact), at these default rates (:class:`DirtRates`):

============================  ====================================================================
missing ``Customer ID``       guest orders: 0.08 per customer order, ~60 lines each (~20% of rows)
cancellations                 4% of orders get a ``C`` invoice 1-10 days later reversing each of
                              their lines with probability 0.5 (negative quantity, same price;
                              30% partial), ~1.7% of rows
zero price                    an extra free line in 8% of customer orders and 50% of guest
                              orders (~0.5% of rows); half of them without Description
bad-debt adjustments          ``A`` invoices, stock code ``B``, no customer, +/- large price
                              (2/3 negative): 2 per 100,000 clean lines
non-product codes             POST on 60% of foreign orders, M on 0.3% of orders (both valid
                              purchases), DOT on 50% of guest orders
exact duplicate lines         1% of lines written twice (adjacent)
unparseable dates             extra copies of 1 in 10,000 lines with a broken ``InvoiceDate``
============================  ====================================================================
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from retail_clv.synth.catalog import (
    COUNTRIES,
    MINUTE_CDF,
    NON_PRODUCT,
    Calendar,
    Catalog,
    build_calendar,
    build_catalog,
)
from retail_clv.synth.process import Block, ProcessParams, simulate_block, sorted_unique
from retail_clv.synth.truth import (
    bg_pgf,
    bgnbd_conditional_expected_transactions,
    expected_transactions,
    gamma_gamma_conditional_value,
)

__all__ = [
    "BLOCK_CUSTOMERS",
    "COLUMNS",
    "FORMATS",
    "DirtRates",
    "GenerateReport",
    "generate",
    "truth_path_for",
]

logger = logging.getLogger(__name__)

#: Online Retail II columns, in order
COLUMNS = ["Invoice", "StockCode", "Description", "Quantity", "InvoiceDate", "Price"]
COLUMNS += ["Customer ID", "Country"]
FORMATS = ("csv", "csv.gz", "xlsx", "parquet")
PROCESSES = ("realistic", "bgnbd")
BLOCK_CUSTOMERS = 4096
FIRST_INVOICE = 489434
FIRST_CUSTOMER_ID = 12346
XLSX_MAX_ROWS = 1_048_575  # data rows per sheet (Excel's limit minus the header)
BAD_DATES = np.array(
    [
        "2011-02-30 10:15:00",
        "2010-13-05 09:30:00",
        "31/12/2010 25:61",
        "not a date",
        "2011-06-31 12:00:00",
        "##########",
    ],
    dtype=object,
)

# row kinds
_PURCHASE, _GUEST, _ZERO, _CANCEL, _BADDEBT, _BADDATE = range(6)
# pseudo product codes for non-product lines
_POST, _MANUAL, _DOT, _BADDEBT_CODE = -1, -2, -3, -4


@dataclass(frozen=True)
class DirtRates:
    """Rates of the dirt added to the clean purchase lines (see the module docstring)."""

    guest_orders_per_order: float = 0.08
    guest_basket_mean: float = 60.0
    guest_dot_prob: float = 0.5
    zero_price_per_order: float = 0.08
    zero_price_per_guest_order: float = 0.5
    zero_price_missing_description: float = 0.5
    cancel_order_prob: float = 0.04
    cancel_line_prob: float = 0.5
    cancel_partial_prob: float = 0.3
    bad_debt_per_line: float = 2e-5
    duplicate_prob: float = 0.01
    bad_date_per_line: float = 1e-4


@dataclass
class GenerateReport:
    """What :func:`generate` wrote.

    ``dirt`` counts rows written by kind: ``missing_customer_id``, ``cancellation``,
    ``zero_price``, ``negative_price``, ``bad_debt``, ``non_product`` (POST/M/DOT lines),
    ``duplicate`` (extra copies), ``bad_date``. ``clean_purchase_rows`` is the number of distinct
    valid purchase lines of known customers: what an ingestion should load.
    """

    path: Path
    truth_path: Path
    fmt: str
    process: str
    seed: int
    customers: int
    start: dt.date
    end: dt.date
    truth_cutoff: dt.date
    horizon_days: int
    rows_written: int = 0
    clean_purchase_rows: int = 0
    orders: int = 0
    invoices: int = 0
    dirt: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary."""
        out = asdict(self)
        for key in ("path", "truth_path", "start", "end", "truth_cutoff"):
            out[key] = str(out[key])
        return out


def truth_path_for(out: Path) -> Path:
    """Path of the ground-truth file written beside ``out`` (``out`` + ``.truth.parquet``)."""
    return Path(f"{out}.truth.parquet")


def _add_months(day: dt.date, months: int) -> dt.date:
    total = day.year * 12 + (day.month - 1) + months
    return dt.date(total // 12, total % 12 + 1, 1) if day.day == 1 else _clip_day(total, day.day)


def _clip_day(total_months: int, dom: int) -> dt.date:
    year, month = total_months // 12, total_months % 12 + 1
    for d in (dom, 30, 29, 28):
        try:
            return dt.date(year, month, d)
        except ValueError:
            continue
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------------------------------
# Dirt and row assembly for one block
# ---------------------------------------------------------------------------------------------


@dataclass
class _Rows:
    """Raw rows of a block before invoice numbering (numpy columns)."""

    kind: np.ndarray
    event: np.ndarray  # invoice event id within the block
    seq: np.ndarray  # order of lines within an invoice
    product: np.ndarray  # catalog index or negative pseudo code
    quantity: np.ndarray
    price: np.ndarray
    day: np.ndarray
    minute: np.ndarray
    customer: np.ndarray  # global customer index, -1 missing
    country: np.ndarray
    no_description: np.ndarray
    bad_date: np.ndarray  # index into BAD_DATES, -1 = valid


def _concat(parts: list[_Rows]) -> _Rows:
    return _Rows(
        **{
            name: np.concatenate([getattr(p, name) for p in parts])
            for name in _Rows.__dataclass_fields__
        }
    )


def _random_minutes(rng: np.random.Generator, n: int) -> np.ndarray:
    return 7 * 60 + np.searchsorted(MINUTE_CDF, rng.random(n), side="right")


def _block_rows(
    rng: np.random.Generator,
    block: Block,
    catalog: Catalog,
    dirt: DirtRates,
    horizon_days: int,
    next_open: np.ndarray,
) -> tuple[_Rows, np.ndarray, np.ndarray, np.ndarray, int]:
    """Clean lines plus dirt; returns rows and per-event (kind, day, minute) for numbering."""
    n_ord = block.order_customer.size
    n_lines = block.line_order.size
    cust_global = block.customer_index[block.order_customer]
    o_day, o_min = block.order_day, block.order_minute
    uk = 0
    lo = block.line_order
    clean = _Rows(
        kind=np.full(n_lines, _PURCHASE),
        event=lo,
        seq=np.arange(n_lines),
        product=block.line_product,
        quantity=block.line_quantity,
        price=block.line_price,
        day=o_day[lo],
        minute=o_min[lo],
        customer=cust_global[lo],
        country=block.country[block.order_customer][lo],
        no_description=np.zeros(n_lines, bool),
        bad_date=np.full(n_lines, -1),
    )
    next_event = n_ord
    ev_kind = [np.full(n_ord, _PURCHASE)]
    ev_day = [o_day]
    ev_min = [o_min]
    parts = [clean]
    cdf = np.cumsum(catalog.popularity)

    def popular(n: int) -> np.ndarray:
        return np.minimum(np.searchsorted(cdf, rng.random(n) * cdf[-1]), catalog.size - 1)

    # ---- guest orders (missing customer id)
    n_guest = int(rng.poisson(dirt.guest_orders_per_order * n_ord)) if n_ord else 0
    src = rng.integers(0, max(n_ord, 1), n_guest)
    g_day = o_day[src] if n_ord else np.zeros(0, np.int64)
    g_min = _random_minutes(rng, n_guest)
    g_country = np.where(rng.random(n_guest) < 0.95, uk, rng.integers(0, len(COUNTRIES), n_guest))
    g_k = 1 + rng.poisson(dirt.guest_basket_mean - 1.0, n_guest)
    g_ord = np.repeat(np.arange(n_guest), g_k)
    key = sorted_unique(g_ord.astype(np.int64) * catalog.size + popular(g_ord.size))
    g_ord, g_prod = key // catalog.size, key % catalog.size
    g_dot = np.flatnonzero(rng.random(n_guest) < dirt.guest_dot_prob)
    g_ord = np.concatenate([g_ord, g_dot])
    g_prod = np.concatenate([g_prod, np.full(g_dot.size, _DOT)])
    g_qty = np.where(g_prod >= 0, 1 + rng.poisson(1.5, g_ord.size), 1)
    g_price = np.where(
        g_prod >= 0,
        catalog.list_price[np.maximum(g_prod, 0)],
        np.round(rng.gamma(2.0, 40.0, g_ord.size), 2),
    )
    parts.append(
        _Rows(
            kind=np.full(g_ord.size, _GUEST),
            event=next_event + g_ord,
            seq=np.arange(g_ord.size),
            product=g_prod,
            quantity=g_qty,
            price=g_price,
            day=g_day[g_ord],
            minute=g_min[g_ord],
            customer=np.full(g_ord.size, -1),
            country=g_country[g_ord],
            no_description=np.zeros(g_ord.size, bool),
            bad_date=np.full(g_ord.size, -1),
        )
    )
    ev_kind.append(np.full(n_guest, _GUEST))
    ev_day.append(g_day)
    ev_min.append(g_min)
    guest_event0 = next_event
    next_event += n_guest
    # ---- zero-price lines inside customer and guest orders
    z_ord = np.flatnonzero(rng.random(n_ord) < dirt.zero_price_per_order)
    z_g = np.flatnonzero(rng.random(n_guest) < dirt.zero_price_per_guest_order)
    nz = z_ord.size + z_g.size
    parts.append(
        _Rows(
            kind=np.full(nz, _ZERO),
            event=np.concatenate([z_ord, guest_event0 + z_g]),
            seq=np.full(nz, 10**9),
            product=popular(nz),
            quantity=rng.integers(1, 25, nz),
            price=np.zeros(nz),
            day=np.concatenate([o_day[z_ord], g_day[z_g]]),
            minute=np.concatenate([o_min[z_ord], g_min[z_g]]),
            customer=np.concatenate([cust_global[z_ord], np.full(z_g.size, -1)]),
            country=np.concatenate([block.country[block.order_customer][z_ord], g_country[z_g]]),
            no_description=rng.random(nz) < dirt.zero_price_missing_description,
            bad_date=np.full(nz, -1),
        )
    )
    # ---- cancellations of earlier customer orders
    c_ord = np.flatnonzero(rng.random(n_ord) < dirt.cancel_order_prob)
    c_day = next_open[np.minimum(o_day[c_ord] + 1 + rng.poisson(3.0, c_ord.size), horizon_days)]
    keep = c_day < horizon_days
    c_ord, c_day = c_ord[keep], c_day[keep]
    c_min = _random_minutes(rng, c_ord.size)
    cancelled = np.zeros(n_ord, np.int64) - 1
    cancelled[c_ord] = np.arange(c_ord.size)
    line_pick = (cancelled[lo] >= 0) & (rng.random(n_lines) < dirt.cancel_line_prob)
    ci = np.flatnonzero(line_pick)
    c_evt = cancelled[lo[ci]]
    partial = rng.random(ci.size) < dirt.cancel_partial_prob
    c_qty = -np.where(partial, np.ceil(block.line_quantity[ci] / 2), block.line_quantity[ci])
    parts.append(
        _Rows(
            kind=np.full(ci.size, _CANCEL),
            event=next_event + c_evt,
            seq=ci,
            product=block.line_product[ci],
            quantity=c_qty.astype(np.int64),
            price=block.line_price[ci],
            day=c_day[c_evt],
            minute=c_min[c_evt],
            customer=clean.customer[ci],
            country=clean.country[ci],
            no_description=np.zeros(ci.size, bool),
            bad_date=np.full(ci.size, -1),
        )
    )
    ev_kind.append(np.full(c_ord.size, _CANCEL))
    ev_day.append(c_day)
    ev_min.append(c_min)
    next_event += c_ord.size
    # ---- bad-debt adjustments
    n_bd = int(rng.poisson(dirt.bad_debt_per_line * n_lines))
    bd_day = next_open[rng.integers(0, horizon_days, n_bd)]
    bd_day = np.where(bd_day < horizon_days, bd_day, np.flatnonzero(next_open < horizon_days)[-1])
    bd_min = _random_minutes(rng, n_bd)
    sign = np.where(rng.random(n_bd) < 2 / 3, -1.0, 1.0)
    parts.append(
        _Rows(
            kind=np.full(n_bd, _BADDEBT),
            event=next_event + np.arange(n_bd),
            seq=np.zeros(n_bd, np.int64),
            product=np.full(n_bd, _BADDEBT_CODE),
            quantity=np.ones(n_bd, np.int64),
            price=sign * np.round(rng.lognormal(8.5, 1.0, n_bd), 2),
            day=bd_day,
            minute=bd_min,
            customer=np.full(n_bd, -1),
            country=np.full(n_bd, uk),
            no_description=np.zeros(n_bd, bool),
            bad_date=np.full(n_bd, -1),
        )
    )
    ev_kind.append(np.full(n_bd, _BADDEBT))
    ev_day.append(bd_day)
    ev_min.append(bd_min)
    next_event += n_bd
    # ---- exact duplicates of any line written so far, then broken-date copies of clean lines
    rows = _concat(parts)
    dup = np.flatnonzero(rng.random(rows.kind.size) < dirt.duplicate_prob)
    dup = dup[rows.kind[dup] != _BADDEBT]
    n_bad = int(rng.poisson(dirt.bad_date_per_line * n_lines)) if n_lines else 0
    bad_src = rng.integers(0, max(n_lines, 1), n_bad)
    bad_pick = rng.integers(0, BAD_DATES.size, n_bad)
    extra = []
    for idx, is_bad in ((dup, False), (bad_src, True)):
        taken = _Rows(**{k: getattr(rows, k)[idx] for k in _Rows.__dataclass_fields__})
        if is_bad:
            taken.kind = np.full(idx.size, _BADDATE)
            taken.bad_date = bad_pick
        extra.append(taken)
    rows = _concat([rows, *extra])
    events = np.concatenate(ev_kind), np.concatenate(ev_day), np.concatenate(ev_min)
    return rows, *events, int(dup.size)


class _Lookup:
    """Stock code / description / country text of the integer codes."""

    def __init__(self, catalog: Catalog) -> None:
        # pseudo codes -1..-4 map to catalog.size + 0..3
        extra_codes = ["POST", "M", "DOT", "B"]
        self.offset = catalog.size
        self.codes = pl.Series(
            "StockCode", [*catalog.stock_code.tolist(), *extra_codes], dtype=pl.Utf8
        )
        self.descriptions = pl.Series(
            "Description",
            [*catalog.description.tolist(), *(NON_PRODUCT[c] for c in extra_codes)],
            dtype=pl.Utf8,
        )
        self.countries = pl.Series("Country", [c[0] for c in COUNTRIES], dtype=pl.Utf8)
        self.categories = [*catalog.category.tolist(), *(["Non-product"] * 4)]

    def index(self, product: np.ndarray) -> np.ndarray:
        return np.where(product >= 0, product, self.offset - product - 1)


def _frame(rows: _Rows, invoice_no: np.ndarray, start: dt.date, lookup: _Lookup) -> pl.DataFrame:
    """Build the raw Online Retail II frame of a block, sorted by time then invoice."""
    order = np.lexsort((rows.seq, invoice_no, rows.minute, rows.day))
    idx = lookup.index(rows.product[order])
    kind = rows.kind[order]
    ts = (
        np.datetime64(start, "m")
        + rows.day[order].astype("timedelta64[D]")
        + rows.minute[order].astype("timedelta64[m]")
    )
    bad = rows.bad_date[order]
    customer = rows.customer[order]
    df = pl.DataFrame(
        {
            "_kind": kind,
            "_no": invoice_no[order],
            "_idx": idx,
            "_nodesc": rows.no_description[order],
            "Quantity": rows.quantity[order].astype(np.int64),
            "_ts": ts.astype("datetime64[us]"),
            "_bad": bad,
            "Price": rows.price[order].astype(np.float64),
            "_cust": customer + FIRST_CUSTOMER_ID,
            "_hascust": customer >= 0,
            "_country": rows.country[order],
        }
    )
    bad_text = pl.Series("_bad_text", BAD_DATES.tolist(), dtype=pl.Utf8)
    return df.select(
        pl.when(pl.col("_kind") == _CANCEL)
        .then(pl.lit("C") + pl.col("_no").cast(pl.Utf8))
        .when(pl.col("_kind") == _BADDEBT)
        .then(pl.lit("A") + pl.col("_no").cast(pl.Utf8))
        .otherwise(pl.col("_no").cast(pl.Utf8))
        .alias("Invoice"),
        pl.lit(lookup.codes).gather(pl.col("_idx")).alias("StockCode"),
        pl.when(pl.col("_nodesc"))
        .then(pl.lit(None, dtype=pl.Utf8))
        .otherwise(pl.lit(lookup.descriptions).gather(pl.col("_idx")))
        .alias("Description"),
        pl.col("Quantity"),
        pl.when(pl.col("_bad") >= 0)
        .then(pl.lit(bad_text).gather(pl.col("_bad").clip(0, None)))
        .otherwise(pl.col("_ts").dt.strftime("%Y-%m-%d %H:%M:%S"))
        .alias("InvoiceDate"),
        pl.col("Price"),
        pl.when(pl.col("_hascust"))
        .then(pl.col("_cust"))
        .otherwise(pl.lit(None, dtype=pl.Int64))
        .alias("Customer ID"),
        pl.lit(lookup.countries).gather(pl.col("_country")).alias("Country"),
    )


# ---------------------------------------------------------------------------------------------
# Ground truth of one block
# ---------------------------------------------------------------------------------------------


def _block_truth(
    block: Block,
    params: ProcessParams,
    calendar: Calendar,
    start: dt.date,
    cutoff_day: int,
    horizon: int,
    process: str,
    n_codes: int,
) -> pl.DataFrame:
    n = block.customer_index.size
    c_op = float(calendar.cum[cutoff_day])
    w_op = float(calendar.cum[cutoff_day + horizon])
    arrival = block.arrival_op
    in_pop = arrival < c_op
    alive = in_pop & (block.death_op > c_op)
    arrives_in = (arrival >= c_op) & (arrival < w_op)
    mu = block.lam * np.maximum(w_op - np.maximum(c_op, arrival), 0.0)
    eligible = alive | arrives_in
    first = arrives_in.astype(np.float64)
    e_orders = np.where(eligible, first + expected_transactions(mu, block.p), 0.0)
    mean_value = params.p_gg / block.nu
    u = 1.0 - 1.0 / np.maximum(block.repertoire_size, 1)
    psi = u * np.exp((block.beta - 1.0) * (u - 1.0))

    def g(phi: np.ndarray | float) -> np.ndarray:
        """E[phi ** N_window], N including a certain first order for arrivals."""
        phi_arr = np.broadcast_to(np.asarray(phi, dtype=np.float64), (n,))
        value = np.power(phi_arr, first) * bg_pgf(phi_arr, mu, block.p)
        return np.where(eligible, value, 1.0)

    e_products = (
        block.repertoire_size * (1.0 - g(psi))
        + (1.0 - g(1.0 - block.post_prob))
        + (1.0 - g(1.0 - params.manual_prob))
    )
    # observable history and actual window outcome from the clean lines
    o_cust = block.order_customer
    before = block.order_day < cutoff_day
    in_win = (block.order_day >= cutoff_day) & (block.order_day < cutoff_day + horizon)
    order_total = np.bincount(
        block.line_order,
        weights=block.line_quantity * block.line_price,
        minlength=o_cust.size,
    )
    n_before = np.bincount(o_cust[before], minlength=n)
    spend_before = np.bincount(o_cust[before], weights=order_total[before], minlength=n)
    last_before = np.full(n, -np.inf)
    np.maximum.at(last_before, o_cust[before], block.order_op[before])
    actual_orders = np.bincount(o_cust[in_win], minlength=n)
    actual_spend = np.bincount(o_cust[in_win], weights=order_total[in_win], minlength=n)
    l_in = in_win[block.line_order]
    l_cust = o_cust[block.line_order[l_in]]
    code = np.where(block.line_product[l_in] >= 0, block.line_product[l_in], n_codes)
    code = code + np.maximum(-block.line_product[l_in] - 1, 0)
    pairs = sorted_unique(l_cust.astype(np.int64) * (n_codes + 8) + code)
    actual_products = np.bincount(pairs // (n_codes + 8), minlength=n)
    if process == "bgnbd":
        x = np.maximum(n_before - 1, 0)
        t_x = np.where(n_before > 0, last_before - arrival, 0.0)
        big_t = np.maximum(c_op - arrival, 0.0)
        bayes_orders = bgnbd_conditional_expected_transactions(
            w_op - c_op, x, t_x, big_t, params.r, params.alpha, params.a, params.b
        )
        bayes_value = gamma_gamma_conditional_value(
            n_before, spend_before, params.p_gg, params.q_gg, params.gamma_gg
        )
        bayes_orders = np.where(in_pop, bayes_orders, np.nan)
        bayes_spend = bayes_orders * bayes_value
    else:
        bayes_orders = np.full(n, np.nan)
        bayes_spend = np.full(n, np.nan)
    origin = np.datetime64(start, "us")

    def clock(op: np.ndarray) -> np.ndarray:
        finite = np.isfinite(op)
        day, minute = calendar.to_clock(np.where(finite, op, 0.0))
        ts = origin + day.astype("timedelta64[D]") + minute.astype("timedelta64[m]")
        return np.where(finite, ts, np.datetime64("NaT"))

    countries = np.array([c[0] for c in COUNTRIES], dtype=object)
    return pl.DataFrame(
        {
            "customer_id": (block.customer_index + FIRST_CUSTOMER_ID).astype(str),
            "country": countries[block.country].tolist(),
            "segment": np.where(block.wholesale, "wholesale", "regular"),
            "first_purchase": clock(arrival),
            "death_at": clock(block.death_op),
            "lambda_per_day": block.lam,
            "p_dropout": block.p,
            "nu": block.nu,
            "expected_order_value": mean_value,
            "basket_mean": block.beta,
            "repertoire_size": block.repertoire_size.astype(np.int64),
            "post_prob": block.post_prob,
            "alive_at_cutoff": alive,
            "in_population": in_pop,
            "orders_before_cutoff": n_before.astype(np.int64),
            "spend_before_cutoff": spend_before,
            "oracle_expected_orders": e_orders,
            "oracle_expected_spend": e_orders * mean_value,
            "oracle_expected_products": e_products,
            "bayes_expected_orders": bayes_orders,
            "bayes_expected_spend": bayes_spend,
            "actual_orders": actual_orders.astype(np.int64),
            "actual_spend": actual_spend,
            "actual_products": actual_products.astype(np.int64),
        }
    ).with_columns(
        pl.col("bayes_expected_orders").fill_nan(None),
        pl.col("bayes_expected_spend").fill_nan(None),
        pl.lit(start + dt.timedelta(days=cutoff_day)).alias("cutoff"),
        pl.lit(horizon, dtype=pl.Int64).alias("horizon_days"),
    )


# ---------------------------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------------------------


class _Writer:
    """Append frames to a csv / csv.gz / parquet file, or collect them for xlsx."""

    def __init__(self, path: Path, fmt: str) -> None:
        self.path, self.fmt = path, fmt
        self._fh: IO[bytes] | None = None
        self._pq: pq.ParquetWriter | None = None
        self._frames: list[pl.DataFrame] = []
        self._xlsx_rows = 0
        if fmt == "csv":
            self._fh = open(path, "wb")  # noqa: SIM115 - closed in close()
        elif fmt == "csv.gz":
            self._fh = cast(IO[bytes], gzip.GzipFile(path, "wb", compresslevel=6))
        if self._fh is not None:
            self._fh.write((",".join(COLUMNS) + "\n").encode())

    def write(self, df: pl.DataFrame) -> None:
        if self._fh is not None:
            if self.fmt == "csv":
                df.write_csv(self._fh, include_header=False)
            else:
                buf = io.BytesIO()
                df.write_csv(buf, include_header=False)
                self._fh.write(buf.getvalue())
        elif self.fmt == "parquet":
            table = df.to_arrow()
            if self._pq is None:
                self._pq = pq.ParquetWriter(self.path, table.schema)
            self._pq.write_table(table)
        else:
            self._xlsx_rows += df.height
            if self._xlsx_rows > 4 * XLSX_MAX_ROWS:
                raise ValueError(
                    "xlsx output is for small files (Excel caps a sheet at 1,048,576 rows): "
                    "use --format csv, csv.gz or parquet"
                )
            self._frames.append(df)

    def close(self, start: dt.date, months: int) -> None:
        if self._fh is not None:
            self._fh.close()
        elif self._pq is not None:
            self._pq.close()
        elif self.fmt == "parquet":
            pl.DataFrame(schema=_empty_schema()).write_parquet(self.path)
        elif self.fmt == "xlsx":
            self._write_xlsx(start, months)

    def _write_xlsx(self, start: dt.date, months: int) -> None:
        import xlsxwriter

        df = pl.concat(self._frames) if self._frames else pl.DataFrame(schema=_empty_schema())
        # one sheet per 12-month period, named like the real workbook ("Year 2009-2010")
        stamp = df["InvoiceDate"].str.slice(0, 10)
        bounds = [_add_months(start, 12 * k) for k in range((months + 11) // 12 + 1)]
        with xlsxwriter.Workbook(self.path) as wb:
            for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
                part = df.filter((stamp >= lo.isoformat()) & (stamp < hi.isoformat()))
                # unparseable dates go to the first sheet
                if lo == bounds[0]:
                    part = pl.concat([part, df.filter(~stamp.str.contains(r"^\d{4}-\d\d-\d\d$"))])
                if part.height > XLSX_MAX_ROWS:
                    raise ValueError(
                        f"sheet of {part.height:,} rows exceeds Excel's 1,048,576-row limit: "
                        "use --format csv, csv.gz or parquet"
                    )
                part.write_excel(
                    workbook=wb,
                    worksheet=f"Year {lo.year}-{lo.year + 1}",
                    autofit=False,
                    table_style=None,
                    float_precision=2,
                )


def _empty_schema() -> dict[str, Any]:
    return {
        "Invoice": pl.Utf8,
        "StockCode": pl.Utf8,
        "Description": pl.Utf8,
        "Quantity": pl.Int64,
        "InvoiceDate": pl.Utf8,
        "Price": pl.Float64,
        "Customer ID": pl.Int64,
        "Country": pl.Utf8,
    }


# ---------------------------------------------------------------------------------------------
# Public entry point
# ---------------------------------------------------------------------------------------------


def generate(
    customers: int,
    start: dt.date,
    months: int,
    seed: int,
    out: Path,
    fmt: str = "csv",
    process: str = "realistic",
    truth_cutoff: dt.date | None = None,
    *,
    horizon_days: int = 30,
    params: ProcessParams | None = None,
    dirt: DirtRates | None = None,
    n_products: int = 3000,
    chunk_rows: int = 1_000_000,
    progress: Callable[[float, str], None] | None = None,
) -> GenerateReport:
    """Generate a synthetic Online Retail II export and its ground truth.

    Parameters
    ----------
    customers : int
        Number of customers (known ids; guest orders come on top).
    start : datetime.date
        First simulated day.
    months : int
        Length of the simulated period in months.
    seed : int
        Seed; the output depends on it only.
    out : pathlib.Path
        Raw file to write; the truth goes to ``out`` + ``.truth.parquet``.
    fmt : str
        ``csv``, ``csv.gz``, ``xlsx`` (small files only: one sheet per year, at most 1,048,575
        rows each) or ``parquet``.
    process : str
        ``realistic`` (seasonality, wholesale tail) or ``bgnbd`` (pure BG/NBD + Gamma-Gamma,
        with the Bayes-optimal prediction in the truth).
    truth_cutoff : datetime.date, optional
        Start of the truth window; default ``horizon_days`` before the end of the period.
    horizon_days : int
        Length of the truth window.
    params : ProcessParams, optional
        Population parameters; default :meth:`ProcessParams.for_process`.
    dirt : DirtRates, optional
        Dirt rates; default :class:`DirtRates`.
    n_products : int
        Catalog size.
    chunk_rows : int
        Rows buffered before a write (memory bound; does not change the output).
    progress : callable, optional
        Called with ``(fraction done, message)`` after each block.

    Returns
    -------
    GenerateReport
        Paths, row counts and dirt counts.

    Raises
    ------
    ValueError
        On an invalid argument (the message says which and why).
    """
    t0 = time.perf_counter()
    if customers < 1:
        raise ValueError("customers must be at least 1")
    if months < 1:
        raise ValueError("months must be at least 1")
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    if process not in PROCESSES:
        raise ValueError(f"unknown process {process!r}: use 'realistic' or 'bgnbd'")
    end = _add_months(start, months)
    n_days = (end - start).days
    if truth_cutoff is None:
        truth_cutoff = end - dt.timedelta(days=horizon_days)
    cutoff_day = (truth_cutoff - start).days
    if cutoff_day <= 0 or cutoff_day + horizon_days > n_days:
        raise ValueError(
            f"truth cutoff {truth_cutoff} must be after {start} and at least {horizon_days} "
            f"days before the end of the period ({end})"
        )
    params = params or ProcessParams.for_process(process)
    dirt = dirt or DirtRates()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    truth_path = truth_path_for(out)
    catalog = build_catalog(np.random.default_rng([seed, 0]), n_products)
    calendar = build_calendar(start, n_days, seasonal=process == "realistic")
    lookup = _Lookup(catalog)
    next_open = _next_open_day(calendar.s[:n_days])
    report = GenerateReport(
        path=out,
        truth_path=truth_path,
        fmt=fmt,
        process=process,
        seed=seed,
        customers=customers,
        start=start,
        end=end,
        truth_cutoff=truth_cutoff,
        horizon_days=horizon_days,
    )
    counts = dict.fromkeys(
        (
            "missing_customer_id",
            "cancellation",
            "zero_price",
            "negative_price",
            "bad_debt",
            "non_product",
            "duplicate",
            "bad_date",
        ),
        0,
    )
    writer = _Writer(out, fmt)
    truth_writer: pq.ParquetWriter | None = None
    meta = {
        "process": process,
        "seed": seed,
        "customers": customers,
        "start": start.isoformat(),
        "months": months,
        "cutoff": truth_cutoff.isoformat(),
        "horizon_days": horizon_days,
        "params": {k: v for k, v in asdict(params).items() if k != "countries"},
    }
    buffer: list[pl.DataFrame] = []
    buffered = 0
    next_invoice = FIRST_INVOICE
    n_blocks = (customers + BLOCK_CUSTOMERS - 1) // BLOCK_CUSTOMERS
    try:
        for b in range(n_blocks):
            rng = np.random.default_rng([seed, 1, b])
            first = b * BLOCK_CUSTOMERS
            size = min(BLOCK_CUSTOMERS, customers - first)
            block = simulate_block(rng, first, size, params, calendar, n_days, catalog)
            rows, ev_kind, ev_day, ev_min, n_dup = _block_rows(
                rng, block, catalog, dirt, n_days, next_open
            )
            # invoice numbers: consecutive in time order within the block
            ev_order = np.lexsort((np.arange(ev_kind.size), ev_min, ev_day))
            number = np.empty(ev_kind.size, np.int64)
            number[ev_order] = next_invoice + np.arange(ev_kind.size)
            next_invoice += ev_kind.size
            frame = _frame(rows, number[rows.event], start, lookup)
            buffer.append(frame)
            buffered += frame.height
            report.rows_written += frame.height
            report.orders += block.order_customer.size
            report.invoices += ev_kind.size
            _count_dirt(counts, rows)
            counts["duplicate"] += n_dup
            report.clean_purchase_rows += block.line_order.size
            truth = _block_truth(
                block,
                params,
                calendar,
                start,
                cutoff_day,
                horizon_days,
                process,
                catalog.size,
            )
            table = truth.to_arrow()
            if truth_writer is None:
                schema = table.schema.with_metadata({"retail_clv.synth": json.dumps(meta)})
                truth_writer = pq.ParquetWriter(truth_path, schema)
            truth_writer.write_table(table.cast(truth_writer.schema))
            if buffered >= chunk_rows:
                writer.write(pl.concat(buffer))
                buffer, buffered = [], 0
            if progress is not None:
                progress((b + 1) / n_blocks, f"{report.rows_written:,} rows")
        if buffer:
            writer.write(pl.concat(buffer))
    finally:
        writer.close(start, months)
        if truth_writer is not None:
            truth_writer.close()
    report.dirt = counts
    report.seconds = time.perf_counter() - t0
    logger.info(
        "wrote %s rows to %s in %.1f s (truth: %s)",
        f"{report.rows_written:,}",
        out,
        report.seconds,
        truth_path,
    )
    return report


def _next_open_day(s: np.ndarray) -> np.ndarray:
    """First trading day on or after each day (``len(s)`` when none is left), plus a sentinel."""
    open_days = np.flatnonzero(s > 0)
    pos = np.searchsorted(open_days, np.arange(s.size + 1))
    return np.where(pos < open_days.size, open_days[np.minimum(pos, open_days.size - 1)], s.size)


def _count_dirt(counts: dict[str, int], rows: _Rows) -> None:
    kind = rows.kind
    counts["missing_customer_id"] += int(np.sum(rows.customer < 0))
    counts["cancellation"] += int(np.sum(kind == _CANCEL))
    counts["zero_price"] += int(np.sum(rows.price == 0))
    counts["negative_price"] += int(np.sum(rows.price < 0))
    counts["bad_debt"] += int(np.sum(kind == _BADDEBT))
    counts["non_product"] += int(np.sum((rows.product < 0) & (rows.product != _BADDEBT_CODE)))
    counts["bad_date"] += int(np.sum(kind == _BADDATE))
