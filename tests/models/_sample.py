"""A small synthetic transaction log (vectorized NumPy) for training tests."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl


def synthetic_log(
    n_customers: int = 150, months: int = 18, seed: int = 0
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Customers with their own order rate and basket value, a few heavy buyers, some churn."""
    rng = np.random.default_rng(seed)
    start = dt.datetime(2010, 1, 1)
    days = months * 30
    rate = rng.gamma(0.8, 1 / 25, n_customers)  # orders per day
    rate[: n_customers // 20] *= 4  # heavy buyers
    basket = rng.gamma(2.0, 60.0, n_customers)
    basket[: n_customers // 20] *= 5
    first = rng.integers(0, days // 2, n_customers)
    churn = first + rng.integers(60, days, n_customers)
    n_orders = rng.poisson(rate * (np.minimum(churn, days) - first)) + 1
    cust = np.repeat(np.arange(n_customers), n_orders)
    span = np.maximum(np.minimum(churn, days) - first, 1)[cust]
    day = first[cust] + (rng.random(cust.size) * span).astype(int)
    lines = rng.integers(1, 4, cust.size)
    order_id = np.repeat(np.arange(cust.size), lines)
    c = cust[order_id]
    qty = rng.integers(1, 6, order_id.size)
    price = np.round(basket[c] / 3 / qty * rng.uniform(0.5, 1.5, order_id.size), 2) + 0.01
    stamp = np.datetime64(start) + (day[order_id] * 24 * 60 + 600).astype("timedelta64[m]")
    purchases = pl.DataFrame(
        {
            "customer_id": [str(12000 + x) for x in c],
            "invoice": [str(500000 + x) for x in order_id],
            "stock_code": [f"P{x}" for x in rng.integers(0, 60, order_id.size)],
            "quantity": qty.astype(np.int64),
            "price": price.astype(float),
            "invoice_date": stamp.astype("datetime64[us]"),
            "country": np.where(c % 7 == 0, "France", "United Kingdom"),
            "category": [f"C{x % 6}" for x in rng.integers(0, 60, order_id.size)],
        }
    )
    cancel = (
        purchases.sample(fraction=0.02, seed=seed)
        .with_columns(
            invoice="C" + pl.col("invoice"),
            quantity=-pl.col("quantity"),
            invoice_date=pl.col("invoice_date") + pl.duration(days=3),
        )
        .select("customer_id", "invoice", "stock_code", "quantity", "price", "invoice_date")
    )
    return purchases, cancel
