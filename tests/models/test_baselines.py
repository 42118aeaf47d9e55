import datetime as dt

import numpy as np
import polars as pl
import pytest

from retail_clv.features.bgnbd import bgnbd_features, fit_bgnbd_gg
from retail_clv.models import baselines as B
from tests.models._sample import synthetic_log

P = pl.DataFrame(
    {
        "customer_id": ["A", "A", "A", "A", "B"],
        "invoice": ["1", "1", "2", "3", "4"],
        "stock_code": ["x", "y", "x", "x", "z"],
        "quantity": [1, 2, 1, 3, 1],
        "price": [10.0, 5.0, 30.0, 10.0, 7.0],
        "invoice_date": [
            dt.datetime(2011, 1, 1, 9),
            dt.datetime(2011, 1, 1, 9),
            dt.datetime(2011, 1, 5, 9),
            dt.datetime(2011, 1, 11, 9),
            dt.datetime(2011, 1, 8, 9),
        ],
    }
)


def test_mean_and_run_rate_by_hand():
    assert B.mean_baseline([0, 0, 30], 2).tolist() == [10.0, 10.0]
    assert B.run_rate_baseline([365.0, 0.0], 30).tolist() == [30.0, 0.0]


def test_last_window_products_by_hand():
    # window [2011-01-05, 2011-01-12) for a cutoff of 2011-01-12 and a 7-day horizon:
    # A bought x (01-05) and x again (01-11) -> 1 distinct; B bought z (01-08) -> 1; C nothing.
    got = B.last_window_products_baseline(P, dt.date(2011, 1, 12), ["C", "A", "B"], 7)
    assert got.tolist() == [0.0, 1.0, 1.0]
    # a 12-day window also holds A's first invoice (x, y): 2 distinct; the cutoff day is out
    got = B.last_window_products_baseline(P, dt.date(2011, 1, 11), ["A", "B"], 12)
    assert got.tolist() == [2.0, 1.0]


def test_rfm_summary_by_hand():
    s = B.rfm_summary(P, dt.date(2011, 1, 11))  # the 01-11 purchase is on the cutoff: excluded
    a = s.filter(pl.col("customer_id") == "A").row(0, named=True)
    assert a == {
        "customer_id": "A",
        "frequency": 1.0,  # one repeat purchase day (01-05)
        "recency": 4.0,
        "T": 10.0,
        "monetary_value": 30.0,
    }
    b = s.filter(pl.col("customer_id") == "B").row(0, named=True)
    assert b["frequency"] == 0.0 and b["monetary_value"] == 0.0 and b["T"] == 3.0


def test_bgnbd_gg_baseline_takes_numeric_customer_ids():
    # features and targets turn ids into text; the baseline joined the raw ids to that text
    purchases, _ = synthetic_log(n_customers=200, months=12, seed=3)
    ids = purchases["customer_id"].unique().sort().to_list()
    text = B.bgnbd_gg_baseline(purchases, dt.date(2010, 11, 1), ids, 30)
    numbers = {c: i for i, c in enumerate(ids)}
    numeric = purchases.with_columns(
        pl.col("customer_id").replace_strict(numbers, return_dtype=pl.Int64)
    )
    got = B.bgnbd_gg_baseline(numeric, dt.date(2010, 11, 1), [str(i) for i in range(len(ids))], 30)
    assert text.ok and got.ok, got.reason
    assert got.predictions is not None and text.predictions is not None
    np.testing.assert_allclose(got.predictions, text.predictions, rtol=1e-6)


def test_bgnbd_gg_predicts_on_synthetic_data():
    purchases, _ = synthetic_log(n_customers=200, months=12, seed=3)
    ids = purchases["customer_id"].unique().sort().to_list()
    res = B.bgnbd_gg_baseline(purchases, dt.date(2010, 11, 1), ids, 30)
    assert res.ok, res.reason
    assert res.predictions is not None and res.predictions.shape == (len(ids),)
    assert np.all(res.predictions >= 0) and np.isfinite(res.predictions).all()
    assert {"bgnbd_r", "bgnbd_alpha", "gg_p", "gg_q", "gg_v"} <= set(res.params)


def test_gamma_gamma_is_fitted_on_a_unit_scale_and_values_one_time_buyers_above_zero():
    # on the raw currency this log's Gamma-Gamma fit stopped on "precision loss" (no baseline,
    # no BG/NBD features); on real data it ended with q < 1, valuing one-time buyers below 0
    purchases, _ = synthetic_log(n_customers=150, months=18, seed=0)
    summary = B.rfm_summary(purchases, dt.date(2011, 3, 1))
    ids = summary["customer_id"].to_list()
    res = B.bgnbd_gg_baseline(purchases, dt.date(2011, 3, 1), ids, 30)
    assert res.ok, res.reason
    repeat = summary.filter(pl.col("frequency") > 0)["monetary_value"]
    assert res.params["gg_scale"] == float(np.median(repeat))
    assert res.params["gg_q"] > 1  # the population mean p·v/(q − 1) is positive
    fit = fit_bgnbd_gg(summary)
    one_timers = (summary["frequency"] == 0).to_numpy()
    assert one_timers.any() and np.all(fit.average_value[one_timers] > 0)
    assert np.allclose(fit.average_value[one_timers], fit.average_value[one_timers][0])


def test_bgnbd_features_keep_the_bgnbd_columns_when_gamma_gamma_fails(monkeypatch):
    import lifetimes

    def boom(self, *args, **kwargs):
        raise RuntimeError("no")

    purchases, _ = synthetic_log(n_customers=150, months=18, seed=0)
    monkeypatch.setattr(lifetimes.GammaGammaFitter, "fit", boom)
    f = bgnbd_features(purchases, [dt.date(2011, 3, 1)])
    assert f["bgnbd_purchases_30d"].null_count() == 0 and f["bgnbd_p_alive"].null_count() == 0
    assert f["bgnbd_gg_spend_30d"].null_count() == f.height


def test_a_fit_that_fails_at_the_penalizer_is_retried_with_larger_ones(monkeypatch):
    import lifetimes
    from lifetimes.utils import ConvergenceError

    original = lifetimes.BetaGeoFitter.fit
    tried: list[float] = []

    def stuck_below_0_01(self, *args, **kwargs):
        tried.append(self.penalizer_coef)
        if self.penalizer_coef < 0.005:
            raise ConvergenceError("The model did not converge.")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(lifetimes.BetaGeoFitter, "fit", stuck_below_0_01)
    purchases, _ = synthetic_log(n_customers=200, months=12, seed=3)
    ids = purchases["customer_id"].unique().sort().to_list()
    res = B.bgnbd_gg_baseline(purchases, dt.date(2010, 11, 1), ids, 30)
    assert res.ok, res.reason
    assert tried == pytest.approx([0.001, 0.01])
    assert res.params["bgnbd_penalizer"] == pytest.approx(0.01)
    assert res.params["gg_penalizer"] == pytest.approx(0.001)


def test_bgnbd_failure_is_reported_not_raised(monkeypatch):
    import lifetimes

    def boom(self, *args, **kwargs):
        raise RuntimeError("did not converge")

    monkeypatch.setattr(lifetimes.BetaGeoFitter, "fit", boom)
    res = B.bgnbd_gg_baseline(P, dt.date(2011, 1, 11), ["A", "B"], 30)
    assert not res.ok and res.predictions is None
    assert res.reason == "RuntimeError: did not converge"


def test_a_bgnbd_convergence_failure_is_said_without_the_libraries_advice(monkeypatch):
    import lifetimes
    from lifetimes.utils import ConvergenceError

    def stuck(self, *args, **kwargs):
        raise ConvergenceError("The model did not converge. Try adding a larger penalizer")

    monkeypatch.setattr(lifetimes.BetaGeoFitter, "fit", stuck)
    res = B.bgnbd_gg_baseline(P, dt.date(2011, 1, 11), ["A", "B"], 30)
    assert res.reason == "the fit did not converge: too few repeat buyers, or too little history"


def test_bgnbd_without_repeat_buyers_fails_cleanly():
    single = P.filter(pl.col("invoice").is_in(["1", "4"]))
    res = B.bgnbd_gg_baseline(single, dt.date(2011, 2, 1), ["A", "B"], 30)
    assert not res.ok
    assert res.reason == "no customer has a repeat purchase day: BG/NBD cannot be fitted"
