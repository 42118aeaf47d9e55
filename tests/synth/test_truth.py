from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lifetimes import BetaGeoFitter
from scipy.stats import poisson

from retail_clv.synth import (
    GenerateReport,
    achievable_r2,
    fraction_of_achievable_r2,
    oracle_r2,
    read_truth,
)
from retail_clv.synth.process import ProcessParams
from retail_clv.synth.truth import (
    bg_pgf,
    bgnbd_conditional_expected_transactions,
    expected_transactions,
    gamma_gamma_conditional_value,
)

from .helpers import clean_purchases, read_raw

# ---------------------------------------------------------------- closed forms


@settings(max_examples=60, deadline=None)
@given(
    phi=st.floats(0.0, 1.0),
    mu=st.floats(0.0, 20.0),
    p=st.floats(0.001, 1.0),
)
def test_bg_pgf_matches_the_brute_force_sum(phi: float, mu: float, p: float) -> None:
    # N = min(M, K): P(N >= n) = P(M >= n) (1-p)^(n-1), n >= 1
    n = np.arange(1, 400)
    surv = poisson.sf(n - 1, mu) * (1 - p) ** (n - 1)
    pmf = np.concatenate([[1 - surv[0]], surv[:-1] - surv[1:]])
    brute = float(np.sum(pmf * phi ** np.arange(0, 399)))
    assert bg_pgf(phi, np.array([mu]), np.array([p]))[0] == pytest.approx(brute, abs=1e-9)
    assert expected_transactions(np.array([mu]), np.array([p]))[0] == pytest.approx(
        float(surv.sum()), rel=1e-9, abs=1e-12
    )


def test_bgnbd_conditional_expectation_matches_lifetimes() -> None:
    bgf = BetaGeoFitter()
    bgf.params_ = pd.Series({"r": 0.75, "alpha": 35.0, "a": 1.3, "b": 4.0})
    x = np.array([0, 1, 3, 10, 40])
    t_x = np.array([0.0, 20.0, 100.0, 300.0, 600.0])
    big_t = np.array([200.0, 50.0, 400.0, 500.0, 610.0])
    expected = bgf.conditional_expected_number_of_purchases_up_to_time(30, x, t_x, big_t)
    ours = bgnbd_conditional_expected_transactions(30, x, t_x, big_t, 0.75, 35.0, 1.3, 4.0)
    np.testing.assert_allclose(ours, expected, rtol=1e-8)


def test_bgnbd_conditional_expectation_needs_a_above_one() -> None:
    with pytest.raises(ValueError, match="a > 1"):
        bgnbd_conditional_expected_transactions(30, [0], [0], [10], 1, 1, 0.9, 1)


def test_gamma_gamma_posterior_mean_by_hand() -> None:
    # p (gamma + S) / (p n + q - 1) = 4 * (230 + 500) / (8 + 2.5)
    value = gamma_gamma_conditional_value(np.array([2]), np.array([500.0]), 4.0, 3.5, 230.0)
    assert value[0] == pytest.approx(4 * 730 / 10.5)
    # no history -> the prior mean p * gamma / (q - 1)
    prior = gamma_gamma_conditional_value(np.array([0]), np.array([0.0]), 4.0, 3.5, 230.0)
    assert prior[0] == pytest.approx(4 * 230 / 2.5)


# ---------------------------------------------------------------- truth vs transactions


def _window(report: GenerateReport) -> pl.DataFrame:
    p = clean_purchases(read_raw(report.path))
    start = dt.datetime.combine(report.truth_cutoff, dt.time())
    return p.filter(
        (pl.col("InvoiceDate") >= start)
        & (pl.col("InvoiceDate") < start + dt.timedelta(days=report.horizon_days))
    )


def test_dead_customers_never_buy_after_the_cutoff(realistic: GenerateReport) -> None:
    truth = read_truth(str(realistic.truth_path))
    p = clean_purchases(read_raw(realistic.path))
    after = p.filter(
        pl.col("InvoiceDate") >= dt.datetime.combine(realistic.truth_cutoff, dt.time())
    )
    dead = truth.filter(pl.col("in_population") & ~pl.col("alive_at_cutoff"))
    assert dead.height > 100
    assert after.join(dead, left_on="Customer ID", right_on="customer_id").is_empty()
    # and nobody buys after the recorded dropout
    last = p.group_by("Customer ID").agg(pl.col("InvoiceDate").max().alias("last"))
    gone = truth.filter(pl.col("death_at").is_not_null()).join(
        last, left_on="customer_id", right_on="Customer ID"
    )
    assert (gone["last"] == gone["death_at"]).all()


def test_truth_first_purchase_and_window_actuals_match_the_file(realistic: GenerateReport) -> None:
    truth = read_truth(str(realistic.truth_path))
    p = clean_purchases(read_raw(realistic.path))
    first = p.group_by("Customer ID").agg(pl.col("InvoiceDate").min().alias("first"))
    joined = truth.join(first, left_on="customer_id", right_on="Customer ID")
    assert joined.height == truth.height
    assert (joined["first"] == joined["first_purchase"]).all()
    win = (
        _window(realistic)
        .group_by("Customer ID")
        .agg(
            (pl.col("Quantity") * pl.col("Price")).sum().alias("spend"),
            pl.col("StockCode").n_unique().alias("products"),
        )
    )
    check = truth.join(win, left_on="customer_id", right_on="Customer ID", how="left").fill_null(0)
    np.testing.assert_allclose(check["spend"], check["actual_spend"], atol=1e-6)
    assert (check["products"] == check["actual_products"]).all()


@pytest.mark.parametrize("mode", ["realistic", "bgnbd"])
def test_oracle_is_unbiased_and_correlates_with_the_outcome(
    mode: str, request: pytest.FixtureRequest
) -> None:
    report: GenerateReport = request.getfixturevalue(mode)
    truth = read_truth(str(report.truth_path)).filter(pl.col("in_population"))
    s = truth.select(
        pl.corr("oracle_expected_spend", "actual_spend").alias("corr_spend"),
        pl.corr("oracle_expected_products", "actual_products").alias("corr_products"),
        (pl.col("oracle_expected_orders").sum() / pl.col("actual_orders").sum()).alias("orders"),
        (pl.col("oracle_expected_products").sum() / pl.col("actual_products").sum()).alias("prod"),
    ).row(0, named=True)
    assert s["corr_spend"] > 0.5
    assert s["corr_products"] > 0.5
    assert 0.85 < s["orders"] < 1.15
    assert 0.85 < s["prod"] < 1.15


def test_bayes_optimal_is_between_oracle_and_a_constant(bgnbd: GenerateReport) -> None:
    truth = read_truth(str(bgnbd.truth_path))
    pop = truth.filter(pl.col("in_population"))
    assert pop["bayes_expected_spend"].null_count() == 0
    r = achievable_r2(truth, pop.select("customer_id", "bayes_expected_spend"))
    assert r.bayes_r2 == pytest.approx(r.model_r2)
    assert 0 < r.model_r2 < r.oracle_r2
    assert r.fraction_of_bayes == pytest.approx(1.0)
    ratio = pop["bayes_expected_orders"].sum() / pop["actual_orders"].sum()
    assert 0.85 < ratio < 1.15


def test_bayes_columns_are_null_in_the_realistic_process(realistic: GenerateReport) -> None:
    truth = read_truth(str(realistic.truth_path))
    assert truth["bayes_expected_spend"].null_count() == truth.height
    assert (truth["segment"] == "wholesale").any()
    assert ProcessParams.for_process("bgnbd").wholesale_share == 0


# ---------------------------------------------------------------- achievable R²


def test_achievable_r2_of_the_oracle_itself_is_one(realistic: GenerateReport) -> None:
    truth = read_truth(str(realistic.truth_path))
    pop = truth.filter(pl.col("in_population"))
    r = achievable_r2(truth, pop.select("customer_id", "oracle_expected_spend"))
    assert r.fraction == pytest.approx(1.0)
    assert r.n_customers == pop.height and r.n_missing_predictions == 0
    assert r.bayes_r2 is None
    # a constant prediction explains nothing
    mean = float(pop["actual_spend"].mean())  # type: ignore[arg-type]
    const = achievable_r2(truth, dict.fromkeys(pop["customer_id"].to_list(), mean))
    assert const.model_r2 == pytest.approx(0.0, abs=1e-9)
    assert fraction_of_achievable_r2(0.5 * r.oracle_r2, truth) == pytest.approx(0.5)


def test_achievable_r2_accepts_external_actuals_and_counts_missing(
    realistic: GenerateReport,
) -> None:
    truth = read_truth(str(realistic.truth_path))
    pop = truth.filter(pl.col("in_population"))
    actual = pop.select("customer_id", pl.col("actual_spend").alias("spend"))
    assert oracle_r2(truth, actual) == pytest.approx(oracle_r2(truth))
    half = pop.head(pop.height // 2).select("customer_id", "oracle_expected_spend")
    r = achievable_r2(truth, half, actual)
    assert r.n_missing_predictions == pop.height - pop.height // 2
    with pytest.raises(ValueError, match="two columns"):
        achievable_r2(truth, pop.select("customer_id", "nu", "p_dropout"))


def test_achievable_r2_for_products(realistic: GenerateReport) -> None:
    truth = read_truth(str(realistic.truth_path))
    pop = truth.filter(pl.col("in_population"))
    r = achievable_r2(
        truth, pop.select("customer_id", "oracle_expected_products"), target="products"
    )
    assert r.fraction == pytest.approx(1.0) and r.bayes_r2 is None
    assert 0 < r.oracle_r2 == pytest.approx(oracle_r2(truth, target="products"))
    with pytest.raises(ValueError, match="unknown target 'orders'"):
        oracle_r2(truth, target="orders")
