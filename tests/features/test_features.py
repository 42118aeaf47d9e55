import datetime as dt
import math

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from retail_clv.errors import SchemaError
from retail_clv.features import FEATURE_COLUMNS, customer_features
from retail_clv.features.bgnbd import BGNBD_COLUMNS

from ._frames import FR, HAND_CANCELLATIONS, HAND_PURCHASES, UK, cancellations, d, purchases

FEB1 = dt.date(2011, 2, 1)


def _row(frame: pl.DataFrame, customer: str, cutoff: dt.date) -> dict:
    rows = frame.filter((pl.col("customer_id") == customer) & (pl.col("cutoff") == cutoff))
    assert rows.height == 1
    return rows.row(0, named=True)


def test_hand_computed_features_at_one_cutoff():
    f = customer_features(HAND_PURCHASES, HAND_CANCELLATIONS, [FEB1])
    assert f.columns == ["customer_id", "cutoff", "country", *FEATURE_COLUMNS]
    assert f["customer_id"].to_list() == ["A", "B"]
    a = _row(f, "A", FEB1)
    assert a["country"] == UK
    expected = {
        "recency_days": 1.0,  # last purchase 2011-01-31 (23:00 is still before the cutoff)
        "tenure_days": 31.0,
        "frequency": 3.0,
        "monetary": 45.0,
        "avg_order_value": 15.0,
        "lines_per_order": 4 / 3,
        "n_categories": 2.0,
        "unique_products": 3.0,
        "spend_30d": 15.0,  # 01-11 (age 21) and 01-31 (age 1); 01-01 is 31 days old
        "orders_30d": 2.0,
        "spend_90d": 45.0,
        "orders_365d": 3.0,
        "max_order_value": 30.0,
        "purchase_days": 3.0,
        "ipi_mean_days": 15.0,  # gaps 10 and 20 days
        "ipi_std_days": 5.0,
        "recency_ipi_ratio": 1 / 15,
        "trend_90d": 1.0,  # nothing in the 90 days before the last 90
        "return_rate": 5 / 45,
        "top_category_share": 25 / 45,  # Home 10 + 5 + 10 of 45
        "is_uk": 1.0,
        "country_freq": 0.5,
        "cutoff_month": 2.0,
        "spend_same_30d_last_year": 0.0,
    }
    for name, value in expected.items():
        assert a[name] == pytest.approx(value), name
    b = _row(f, "B", FEB1)
    assert b["country"] == FR and b["is_uk"] == 0.0
    assert b["recency_days"] == 12.0 and b["frequency"] == 1.0 and b["return_rate"] == 0.0
    assert b["ipi_mean_days"] is None and b["recency_ipi_ratio"] is None
    assert b["top_category_share"] == 1.0


def test_population_is_customers_with_a_purchase_strictly_before_the_cutoff():
    jan11 = dt.date(2011, 1, 11)
    f = customer_features(HAND_PURCHASES, None, [jan11, FEB1])
    assert f.filter(pl.col("cutoff") == jan11)["customer_id"].to_list() == ["A"]
    a = _row(f, "A", jan11)
    # the purchase on the cutoff day itself (I2, 2011-01-11) belongs to the window
    assert a["frequency"] == 1.0 and a["monetary"] == 30.0 and a["recency_days"] == 10.0
    assert a["unique_products"] == 2.0 and a["return_rate"] == 0.0


def test_many_cutoffs_at_once_equal_one_at_a_time():
    cuts = [dt.date(2011, 1, 2), dt.date(2011, 1, 12), dt.date(2011, 1, 16), FEB1]
    together = customer_features(HAND_PURCHASES, HAND_CANCELLATIONS, cuts)
    alone = pl.concat([customer_features(HAND_PURCHASES, HAND_CANCELLATIONS, [c]) for c in cuts])
    assert together.sort(["cutoff", "customer_id"]).equals(alone.sort(["cutoff", "customer_id"]))


def test_an_invoice_number_on_two_days_is_two_orders_and_never_leaks_back():
    reused = pl.concat(
        [HAND_PURCHASES, purchases([("A", "I1", "Z", 1, 500.0, d(2011, 2, 10), UK, "Home")])]
    )
    mar1 = dt.date(2011, 3, 1)
    together = customer_features(reused, None, [FEB1, mar1])
    assert _row(together, "A", FEB1) == _row(customer_features(reused, None, [FEB1]), "A", FEB1)
    assert _row(together, "A", FEB1)["monetary"] == 45.0
    later = _row(together, "A", mar1)
    assert later["recency_days"] == 19.0 and later["frequency"] == 4.0
    assert later["spend_30d"] == 510.0 and later["max_order_value"] == 500.0  # I3 is 29 days old


def test_missing_column_is_a_schema_error():
    with pytest.raises(SchemaError, match="lacks column.*category"):
        customer_features(HAND_PURCHASES.drop("category"), None, [FEB1])


customers = st.sampled_from(["1", "2", "3", "4"])
days = st.integers(min_value=0, max_value=120)
line = st.tuples(
    customers,
    st.integers(0, 30),
    st.sampled_from(["P1", "P2", "P3", "P4", "P5"]),
    st.integers(1, 20),
    st.floats(0.1, 50.0, allow_nan=False),
    days,
    st.integers(0, 23),
    st.sampled_from([UK, FR, "Germany"]),
    st.sampled_from(["Home", "Toys", "Kitchen"]),
)


def _frame(lines) -> pl.DataFrame:
    base = dt.datetime(2011, 1, 1)
    return purchases(
        [
            (c, f"I{inv}", sc, q, p, base + dt.timedelta(days=day, hours=h), ctry, cat)
            for c, inv, sc, q, p, day, h, ctry, cat in lines
        ]
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    before=st.lists(line, min_size=1, max_size=30),
    after=st.lists(line, min_size=1, max_size=30),
    cut_day=st.integers(min_value=1, max_value=120),
)
def test_no_leakage_rows_on_or_after_the_cutoff_change_nothing(before, after, cut_day):
    cutoff = dt.date(2011, 1, 1) + dt.timedelta(days=cut_day)
    start = dt.datetime.combine(cutoff, dt.time())
    past = _frame(before).filter(pl.col("invoice_date") < start)
    # future lines reuse the past's invoice numbers (an order shipped in parts, a number reused)
    future = _frame(after).with_columns(
        invoice_date=pl.lit(start) + (pl.col("invoice_date") - pl.datetime(2011, 1, 1)),
    )
    future_cancel = future.select(
        "customer_id", "invoice", "stock_code", -pl.col("quantity"), "price", "invoice_date"
    )
    clean = customer_features(past, None, [cutoff])
    # a later cutoff in the same call keeps the future lines in the frame being aggregated
    later = cutoff + dt.timedelta(days=200)
    dirty = customer_features(pl.concat([past, future]), future_cancel, [cutoff, later]).filter(
        pl.col("cutoff") == cutoff
    )
    exact = [c for c in clean.columns if c not in BGNBD_COLUMNS]
    # Sums over the same rows may be added in another order (parallel group-by), so float
    # columns agree to ~1e-15 relative, not bit for bit; any leak would move them far more.
    assert_frame_equal(
        clean.select(exact), dirty.select(exact), check_exact=False, rel_tol=1e-9, abs_tol=1e-12
    )
    # BG/NBD columns come from a numerical optimiser: equal up to floating-point noise
    for col in BGNBD_COLUMNS:
        a, b = clean[col].to_numpy(), dirty[col].to_numpy()
        assert np.allclose(a, b, rtol=1e-6, atol=1e-9, equal_nan=True), col


def test_nan_free_core_features_on_single_purchase_customer():
    p = purchases([("Z", "I9", "P", 1, 2.0, d(2011, 3, 1), UK, "Home")])
    f = customer_features(p, None, [dt.date(2011, 3, 2)])
    row = f.row(0, named=True)
    assert row["monetary"] == 2.0 and row["trend_90d"] == 1.0
    assert not math.isnan(row["avg_order_value"])


def test_a_spend_that_rounds_to_zero_gives_null_ratios_not_inf():
    # a price of 0.0004 passes ingest (> 0) but its line rounds to 0 thousandths: return rate
    # and top-category share divide by that spend, and an inf stopped every model's imputer
    p = purchases(
        [
            ("A", "I1", "X", 1, 0.0004, d(2011, 1, 5), UK, "Home"),
            ("B", "I2", "Y", 2, 5.0, d(2011, 1, 6), UK, "Home"),
        ]
    )
    c = cancellations([("A", "C1", "X", -1, 3.0, d(2011, 1, 7))])
    f = customer_features(p, c, [dt.date(2011, 2, 1)])
    a = _row(f, "A", dt.date(2011, 2, 1))
    assert a["monetary"] == 0.0
    assert a["return_rate"] is None and a["top_category_share"] is None
    assert np.isfinite(
        f.select(FEATURE_COLUMNS).to_numpy()[~np.isnan(f.select(FEATURE_COLUMNS).to_numpy())]
    ).all()
    assert _row(f, "B", dt.date(2011, 2, 1))["top_category_share"] == 1.0


def test_lines_without_a_category_are_one_category_for_every_feature():
    # a frame given to the library may carry null categories (the store never does)
    p = purchases(
        [
            ("A", "I1", "X", 1, 90.0, d(2011, 1, 5), UK, None),
            ("A", "I1", "Y", 1, 10.0, d(2011, 1, 5), UK, "Home"),
            ("B", "I2", "Y", 1, 50.0, d(2011, 1, 6), UK, None),
        ]
    )
    f = customer_features(p, None, [dt.date(2011, 2, 1)])
    a, b = _row(f, "A", dt.date(2011, 2, 1)), _row(f, "B", dt.date(2011, 2, 1))
    assert a["n_categories"] == 2.0 and a["top_category_share"] == pytest.approx(0.9)
    assert b["n_categories"] == 1.0 and b["top_category_share"] == 1.0


def test_bgnbd_fits_that_fail_at_every_cutoff_are_logged_once(caplog) -> None:
    import logging

    from retail_clv.features.bgnbd import bgnbd_features

    # one-time buyers only: nobody has a repeat purchase for BG/NBD to learn from
    p = purchases(
        [(f"C{i}", f"I{i}", "P", 1, 2.0, d(2011, 1, 1 + i), UK, "Home") for i in range(20)]
    )
    cutoffs = [dt.date(2011, 2, 1), dt.date(2011, 3, 1), dt.date(2011, 4, 1)]
    with caplog.at_level(logging.INFO, logger="retail_clv.features.bgnbd"):
        out = bgnbd_features(p, cutoffs)
    assert out.height == 60 and out["bgnbd_p_alive"].null_count() == 60  # imputed later
    [line] = [r.getMessage() for r in caplog.records if "fit failed" in r.getMessage()]
    assert line.startswith("BG/NBD fit failed at 3 of 3 cutoffs (2011-02-01 … 2011-04-01; ")
    assert line.endswith(
        "bgnbd_purchases_30d, bgnbd_p_alive, bgnbd_gg_spend_30d imputed by the models"
    )
