import datetime as dt
import math
import re

import numpy as np
import polars as pl
import pytest
from sklearn.base import BaseEstimator, RegressorMixin

from retail_clv.errors import NotEnoughDataError, SettingError
from retail_clv.features import FEATURE_COLUMNS, customer_features
from retail_clv.models import metrics as M
from retail_clv.models.training import (
    BUDGETS,
    TrainResult,
    history_needed,
    predict_frame,
    spend_levels,
    train,
    training_cutoffs,
)
from tests.models._sample import synthetic_log


@pytest.fixture(scope="module")
def quick_run() -> tuple[TrainResult, list[tuple[float, str]]]:
    purchases, cancellations = synthetic_log()
    calls: list[tuple[float, str]] = []
    result = train(
        purchases,
        cancellations,
        as_of=dt.date(2011, 3, 1),
        horizon_days=30,
        budget="quick",
        progress=lambda f, m: calls.append((f, m)),
    )
    return result, calls


def test_training_cutoffs_windows_end_by_as_of():
    cuts = training_cutoffs(dt.date(2010, 1, 1), dt.date(2011, 1, 1), 30, 28, 5)
    assert len(cuts) == 5 and cuts == sorted(cuts)
    assert cuts[-1] == dt.date(2010, 12, 2)
    assert all(c + dt.timedelta(days=30) <= dt.date(2011, 1, 1) for c in cuts)


def test_a_cap_above_the_history_keeps_every_cutoff():
    # docs/api.md: a client lifts the server's cap by sending one at least this large
    every = training_cutoffs(dt.date(2010, 1, 1), dt.date(2011, 1, 1), 30, 28)
    assert training_cutoffs(dt.date(2010, 1, 1), dt.date(2011, 1, 1), 30, 28, 1000) == every
    assert training_cutoffs(dt.date(2010, 1, 1), dt.date(2011, 1, 1), 30, 28, len(every)) == every
    assert len(every) == 10


def test_minimum_training_cutoffs_follow_the_purged_folds():
    from retail_clv.models.training import BUDGETS, min_training_cutoffs

    quick, default = BUDGETS["quick"], BUDGETS["default"]
    # a window longer than the 28-day step needs several cutoffs of history per fold
    assert [min_training_cutoffs(quick, h) for h in (7, 30, 90, 180)] == [2, 3, 7, 13]
    # the default budget's search folds each hold the stack's own folds
    assert min_training_cutoffs(default, 30) == 10


@pytest.mark.parametrize(
    ("budget", "as_of", "horizon", "expected"),
    [
        ("quick", dt.date(2011, 3, 1), 180, "the quick budget trains on at least 13 cutoffs"),
        ("default", dt.date(2010, 9, 1), 30, "The quick budget (--budget quick) needs only 4"),
    ],
)
def test_too_little_history_for_the_folds_is_refused_before_any_work(
    budget, as_of, horizon, expected
):
    purchases, cancellations = synthetic_log()
    with pytest.raises(NotEnoughDataError, match=re.escape(expected)):
        train(purchases, cancellations, as_of, horizon, budget)


def test_unseen_season_note_counts_days_of_the_year_no_window_covered():
    from retail_clv.models.training import unseen_season_note

    feb_to_nov = training_cutoffs(dt.date(2009, 12, 1), dt.date(2010, 12, 9), 30, 28)
    note = unseen_season_note(feb_to_nov, dt.date(2010, 12, 9), 30)
    assert note is not None and note.startswith("30 of the 30 days of [2010-12-09, 2011-01-08)")
    # a year of windows covers every day of the year
    full_year = training_cutoffs(dt.date(2009, 12, 1), dt.date(2011, 4, 9), 30, 28)
    assert unseen_season_note(full_year, dt.date(2011, 4, 9), 30) is None
    # two years of history with 7-day windows 28 days apart: gaps between windows are no season
    short = training_cutoffs(dt.date(2009, 12, 1), dt.date(2011, 6, 15), 7, 28)
    assert unseen_season_note(short, dt.date(2011, 6, 15), 7) is None
    # half or less unseen is not worth a warning; 29 February counts as 28 February
    assert unseen_season_note([dt.date(2011, 1, 1)], dt.date(2011, 1, 16), 30) is None
    # 15 February .. 1 March 2011 covers 15-29 February 2012
    assert unseen_season_note([dt.date(2011, 2, 15)], dt.date(2012, 2, 15), 15) is None
    assert unseen_season_note([dt.date(2011, 2, 1)], dt.date(2012, 2, 15), 15) is not None


def test_a_held_out_window_without_buyers_is_a_warning():
    import polars as pl

    purchases, cancellations = synthetic_log()
    # nobody buys in [2011-03-01, 2011-03-31); one purchase after it keeps the window covered
    window = pl.col("invoice_date").is_between(
        dt.datetime(2011, 3, 1), dt.datetime(2011, 3, 31), closed="left"
    )
    gap = purchases.filter(~window & (pl.col("invoice_date") < dt.datetime(2011, 3, 31)))
    later = purchases.head(1).with_columns(
        customer_id=pl.lit("NEW"), invoice_date=pl.lit(dt.datetime(2011, 4, 2))
    )
    result = train(pl.concat([gap, later]), cancellations, dt.date(2011, 3, 1), 30, "quick")
    [note] = [w for w in result.metrics["warnings"] if w.startswith("nobody bought")]
    assert "[2011-03-01, 2011-03-31)" in note
    assert result.metrics["buyer_share"] == 0.0


def test_identical_models_are_explained_by_their_blends():
    from types import SimpleNamespace

    import polars as pl

    from retail_clv.models.training import same_predictions_note

    def stack(weights):
        return SimpleNamespace(regressor_=SimpleNamespace(blend_weights=lambda: weights))

    m1 = stack({"rf": 0.7, "ridge": 0.0, "lasso": 0.3, "intercept": 0.0})
    m2 = stack({"rf": 0.7, "xgb": 0.0, "ridge": 0.0, "lasso": 0.3, "intercept": 0.0})
    same = pl.DataFrame(
        {"predicted_spend_30d_model1": [1.0, 2.0], "predicted_spend_30d_model2": [1.0, 2.0]}
    )
    note = same_predictions_note(same, m1, m2)
    assert note is not None
    assert "(Model 1: rf 0.70, lasso 0.30; Model 2: rf 0.70, lasso 0.30)" in note
    different = same.with_columns(predicted_spend_30d_model2=pl.Series([1.0, 2.5]))
    assert same_predictions_note(different, m1, m2) is None


def test_models_clearly_behind_a_baseline_are_a_warning():
    from retail_clv.models.training import behind_baselines_notes

    def gap(high):
        return {"r2": {"delta": -0.2, "low": -0.5, "high": high}}

    metrics = {
        "models": {"model1": {"r2": -1.349}, "model2": {"r2": 0.30}},
        "baselines": {"mean": {"r2": -0.382}, "run_rate": {"r2": 0.15}, "bgnbd_gg": {"r2": 0.40}},
        "vs_baselines": {
            "model1": {"run_rate": gap(-0.03), "bgnbd_gg": gap(-0.5)},
            "model2": {"run_rate": gap(0.2), "bgnbd_gg": gap(0.01)},  # behind, inside the noise
        },
    }
    [note] = behind_baselines_notes(metrics)
    assert note.startswith(
        "Model 1 is clearly behind simple baselines on the held-out window: R² -1.349 against "
        "the train mean's -0.382 and the run-rate's 0.150 and BG/NBD + Gamma-Gamma's 0.400."
    )
    metrics["vs_baselines"]["model2"]["bgnbd_gg"] = gap(-0.01)
    assert [n[:7] for n in behind_baselines_notes(metrics)] == ["Model 1", "Model 2"]
    failed = {**metrics, "baselines": {"bgnbd_gg": {"failed": True}}, "vs_baselines": {}}
    assert behind_baselines_notes(failed) == []
    assert behind_baselines_notes({"models": {"model1": {"r2": float("nan")}}}) == []
    assert behind_baselines_notes({}) == []
    # a thousandth below the train mean is no news (-0.101 against -0.100)
    close = {"models": {"model1": {"r2": -0.101}}, "baselines": {"mean": {"r2": -0.100}}}
    assert behind_baselines_notes(close) == []


def test_models_ranking_worse_than_a_baseline_or_not_at_all_are_a_warning():
    from retail_clv.models.training import behind_baselines_notes

    def gap(high):
        return {"gini": {"delta": -0.2, "low": -0.4, "high": high}}

    metrics = {
        "models": {
            "model1": {"r2": 0.3, "gini": 0.185, "spearman": 0.2},
            "model2": {"r2": 0.3, "gini": 0.40, "spearman": 0.3},
        },
        "baselines": {"run_rate": {"gini": 0.30}, "bgnbd_gg": {"gini": 0.444}},
        "vs_baselines": {
            "model1": {"run_rate": gap(0.05), "bgnbd_gg": gap(-0.093)},
            "model2": {"run_rate": gap(0.2), "bgnbd_gg": gap(0.01)},  # behind inside the noise
        },
    }
    [note] = behind_baselines_notes(metrics)
    assert note.startswith(
        "Model 1 ranks customers clearly worse than simple baselines on the held-out window: "
        "Gini 0.185 against BG/NBD + Gamma-Gamma's 0.444."
    )
    # an interval just below zero for a gap of a few thousandths is no news
    small = {"gini": {"delta": -0.003, "low": -0.005, "high": -0.0001}}
    tiny = {**metrics, "vs_baselines": {"model1": {"bgnbd_gg": small}}}
    assert behind_baselines_notes(tiny) == []
    # worse than chance, whatever the intervals say
    metrics["models"]["model2"]["gini"] = -0.054
    notes = behind_baselines_notes(metrics)
    assert notes[1].startswith(
        "Model 2 does not rank customers on the held-out window: Gini -0.054, its order of the "
        "customers is no better than chance."
    )
    # one number for everyone: Gini 0 and no Spearman correlation (NaN, or null from JSON)
    for spearman in (float("nan"), None):
        metrics["models"]["model2"] = {"r2": 0.0, "gini": 0.0, "spearman": spearman}
        assert (
            "Gini 0.000, it predicts the same spend for every customer."
            in (behind_baselines_notes(metrics)[1])
        )
    # as the metrics measure one number for everyone
    y = np.array([0.0, 0.0, 5.0, 40.0, 0.0, 3.0, 12.0, 0.0, 0.0, 7.0])
    metrics["models"]["model2"] = M.evaluate(y, np.full(y.size, 4.2))
    assert "it predicts the same spend for every customer" in behind_baselines_notes(metrics)[1]
    metrics["models"]["model2"]["gini"] = float("nan")  # nobody bought: nothing to rank
    assert len(behind_baselines_notes(metrics)) == 1


def test_a_products_model_behind_its_baselines_is_a_warning():
    from retail_clv.models.training import behind_baselines_notes

    metrics = {
        "models": {"products": {"r2": 0.051}},
        "products_baselines": {"mean": {"r2": -0.004}, "last_window": {"r2": 0.203}},
    }
    [note] = behind_baselines_notes(metrics)
    assert note.startswith(
        "The products model is behind simple baselines on the held-out window: R² 0.051 "
        "against the last-window baseline's 0.203."
    )
    metrics["products_baselines"]["last_window"]["r2"] = 0.055  # inside the margin
    assert behind_baselines_notes(metrics) == []


def test_quick_training_on_a_small_sample(quick_run):
    result, calls = quick_run
    m = result.metrics
    assert m["cutoff"] == "2011-03-01" and m["horizon_days"] == 30 and m["evaluated"]
    assert set(m["models"]) == {"model1", "model2", "products"}
    assert set(m["baselines"]) == {"mean", "run_rate", "bgnbd_gg"}
    # the products model is reported beside its own baselines
    assert set(m["products_baselines"]) == {"mean", "last_window"}
    for values in (m["models"]["products"], *m["products_baselines"].values()):
        assert set(values) == {"mae", "spearman", "r2"}
    for key in ("model1", "model2"):
        assert set(m["models"][key]) == {"r2", "mae", "rmse", "spearman", "gini", "top10_capture"}
        assert len(m["calibration"][key]) == 10
        # the synthetic customers have stable rates: the stacks must rank them well
        assert m["models"][key]["gini"] > 0.3
    assert m["gain_curve"]["perfect"][-1]["fraction_spend"] == pytest.approx(1.0)
    # every model against every working baseline, R² and Gini, with bootstrap intervals
    working = {b for b, v in m["baselines"].items() if b != "mean" and not v.get("failed")}
    assert set(m["vs_baselines"]) == {"model1", "model2"}
    for key, gaps in m["vs_baselines"].items():
        assert set(gaps) == working
        for baseline, gap in gaps.items():
            r2_gap = m["models"][key]["r2"] - m["baselines"][baseline]["r2"]
            assert gap["r2"]["delta"] == pytest.approx(r2_gap)
            assert gap["gini"]["low"] <= gap["gini"]["delta"] <= gap["gini"]["high"]
    assert result.feature_names == FEATURE_COLUMNS
    assert m["n_customers"] == result.holdout.height
    # training rows include the zero spenders of every cutoff
    assert result.config["train_rows"] > 0
    assert all(c < "2011-03-01" for c in result.config["train_cutoffs"])
    # the as-of population's spend levels, for the scale check of later scorings
    purchases, cancellations = synthetic_log()
    as_of_rows = customer_features(purchases, cancellations, [dt.date(2011, 3, 1)])
    assert result.config["spend_levels"] == spend_levels(as_of_rows)
    assert result.config["spend_levels"]["customers"] == m["n_customers"]
    # the window's total and each method's sum of predictions
    h = result.holdout
    assert m["totals"]["actual"] == pytest.approx(h["actual_spend"].sum())
    assert m["totals"]["model2"] == pytest.approx(h["pred_model2"].sum())
    assert m["totals"]["run_rate"] == pytest.approx(h["pred_run_rate"].sum())
    assert calls[0][0] < calls[-1][0] == 1.0
    assert {f["feature"] for f in result.feature_importance} == set(FEATURE_COLUMNS)
    assert all(
        w >= 0 for k, w in result.config["blend_weights"]["model2"].items() if k != "intercept"
    )


def test_holdout_and_predict_frame(quick_run):
    result, _ = quick_run
    h = result.holdout
    assert h.columns == [
        "customer_id",
        "actual_spend",
        "actual_products",
        "pred_model1",
        "pred_model2",
        "pred_products",
        "pred_mean",
        "pred_run_rate",
        "pred_bgnbd_gg",
    ]
    assert (h["actual_spend"] == 0).sum() > 0  # non-buyers are evaluated too
    for col in ("pred_model1", "pred_model2", "pred_products"):
        assert h[col].min() >= 0
    purchases, cancellations = synthetic_log()
    feats = customer_features(purchases, cancellations, [dt.date(2011, 3, 1)])
    out = predict_frame(
        result.model1, result.model2, result.products_model, feats, result.feature_names
    )
    assert out.columns == [
        "customer_id",
        "predicted_spend_30d_model1",
        "predicted_spend_30d_model2",
        "predicted_products_30d",
    ]
    assert np.allclose(out["predicted_spend_30d_model2"], h["pred_model2"])
    assert out.select(pl.all().exclude("customer_id").min()).row(0) >= (0, 0, 0)


def test_not_evaluated_when_window_not_covered(monkeypatch):
    # same code path as the quick budget, with tiny learners to keep CI fast
    small = {**BUDGETS["quick"], "rf_trees": 5, "xgb_trees": 10, "max_train_cutoffs": 6}
    monkeypatch.setitem(BUDGETS, "quick", small)
    purchases, cancellations = synthetic_log(n_customers=40, months=15, seed=1)
    last = purchases["invoice_date"].max().date()
    result = train(purchases, cancellations, last, 30, "quick")
    assert result.metrics["evaluated"] is False and result.metrics["models"] == {}
    assert result.holdout["actual_spend"].null_count() == result.holdout.height
    assert not math.isnan(result.holdout["pred_model1"].sum())


def test_a_cap_on_training_cutoffs_keeps_the_newest_and_is_recorded(monkeypatch):
    small = {**BUDGETS["quick"], "rf_trees": 5, "xgb_trees": 10}
    monkeypatch.setitem(BUDGETS, "quick", small)
    purchases, cancellations = synthetic_log(n_customers=40, months=15, seed=1)
    as_of = dt.date(2011, 1, 1)
    every = training_cutoffs(purchases["invoice_date"].min().date(), as_of, 30, 28)
    assert len(every) > 5
    result = train(purchases, cancellations, as_of, 30, "quick", max_train_cutoffs=5)
    assert result.config["train_cutoffs"] == [c.isoformat() for c in every[-5:]]
    assert result.config["max_train_cutoffs"] == 5
    populations = [customer_features(purchases, cancellations, c).height for c in every[-5:]]
    assert result.config["train_rows"] == sum(populations)


@pytest.mark.parametrize(("budget", "needed"), [("quick", 4), ("default", 10)])
def test_a_cap_below_what_the_budget_needs_is_refused_before_any_work(budget, needed):
    purchases, cancellations = synthetic_log()
    with pytest.raises(SettingError, match=f"at least {needed} training cutoffs") as caught:
        train(purchases, cancellations, dt.date(2011, 3, 1), 30, budget, max_train_cutoffs=3)
    assert f"max_train_cutoffs 3 is too few for the {budget} budget" in str(caught.value)
    assert history_needed(budget, 30)[0] == needed


def test_too_little_history_is_a_clear_error():
    purchases, cancellations = synthetic_log(n_customers=30, months=18)
    first = purchases["invoice_date"].min().date()
    as_of = dt.date(2010, 4, 1)
    with pytest.raises(NotEnoughDataError, match="too little history before the as-of") as caught:
        train(purchases, cancellations, as_of, 30, "quick")
    # the minimum is stated: 60 days + 3 steps of 28 days + the horizon, and what there is
    assert "that takes 174 days of purchases before the as-of date" in str(caught.value)
    assert f"the store has {(as_of - first).days} (" in str(caught.value)
    assert history_needed("quick", 30) == (4, 174)


def test_one_purchase_day_per_customer_is_named_as_the_reason():
    purchases, cancellations = synthetic_log(n_customers=60, months=18)
    once = (
        purchases.group_by("customer_id")
        .agg(pl.col("invoice_date").min())
        .join(purchases, on=["customer_id", "invoice_date"])
    )
    as_of = once["invoice_date"].max().date() + dt.timedelta(days=1)
    with pytest.raises(NotEnoughDataError, match="no customer bought on more than one day"):
        train(once, cancellations.clear(), as_of, 30, "quick")


def test_a_window_ending_on_a_cut_off_last_day_is_flagged() -> None:
    from retail_clv.models.training import partial_last_day_note

    def day(d: dt.date, lines: int, hour: int = 10) -> list[dt.datetime]:
        return [dt.datetime.combine(d, dt.time(hour, i % 60)) for i in range(lines)]

    first = dt.date(2011, 11, 1)
    usual = [t for i in range(8) for t in day(first + dt.timedelta(days=i), 20)]
    cut = pl.Series(usual + day(dt.date(2011, 11, 9), 9, hour=12))  # 9 lines against 20
    note = partial_last_day_note(cut, dt.date(2011, 10, 11), 30)
    assert note is not None
    assert note.startswith("the held-out window [2011-10-11, 2011-11-10) ends on the last day")
    assert "2011-11-09, which holds 9 purchase lines (the last at 12:08)" in note
    assert "against a median of 20 on the sale days of the four weeks before" in note
    assert note.endswith("an as-of one day earlier (2011-10-10) avoids it")
    # a full last day, or a window ending before the last day, says nothing
    full = pl.Series(usual + day(dt.date(2011, 11, 9), 10))
    assert partial_last_day_note(full, dt.date(2011, 10, 11), 30) is None
    assert partial_last_day_note(cut, dt.date(2011, 10, 10), 30) is None
    # nothing before the last day to compare with
    assert partial_last_day_note(pl.Series(day(first, 3)), dt.date(2011, 10, 3), 30) is None


def test_one_customer_holding_most_of_the_variance_is_named() -> None:
    from retail_clv.models.training import dominant_customer_note, variance_concentration

    actual = np.array([0.0] * 97 + [10.0, 10.0, 1000.0])
    shares = variance_concentration(actual)
    terms = (actual - actual.mean()) ** 2
    assert shares["top1"] == pytest.approx(terms[-1] / terms.sum())
    assert shares["top5"] == pytest.approx(np.sort(terms)[-5:].sum() / terms.sum())
    ids = [f"c{i}" for i in range(100)]
    note = dominant_customer_note(actual, ids, dt.date(2011, 12, 3), 7)
    assert note is not None
    assert note.startswith(
        f"customer c99 holds {shares['top1']:.0%} of the spend variance of the held-out window "
        "[2011-12-03, 2011-12-10)"
    )
    assert "so read it beside Gini, Spearman and MAE" in note
    # spread over many customers, or nobody bought: nothing to say
    assert dominant_customer_note(np.arange(100.0), ids, dt.date(2011, 12, 3), 7) is None
    assert variance_concentration(np.zeros(5)) == {"top1": 0.0, "top5": 0.0}
    assert dominant_customer_note(np.zeros(100), ids, dt.date(2011, 12, 3), 7) is None


def test_a_long_stretch_without_purchases_is_named() -> None:
    from retail_clv.models.training import data_gap_note

    times = pl.Series(
        [dt.datetime(2020, 1, d, 10) for d in range(1, 29)]
        + [dt.datetime(2022, 3, 1, 9), dt.datetime(2022, 3, 2, 9)]
    )
    note = data_gap_note(times, dt.date(2022, 4, 1))
    assert note is not None
    assert note.startswith("no purchase at all between 2020-01-28 and 2022-03-01 (763 days)")
    # only the history before the as-of counts; short closures say nothing
    assert data_gap_note(times, dt.date(2020, 2, 1)) is None
    weekly = pl.Series([dt.datetime(2021, 1, 1) + dt.timedelta(days=7 * i) for i in range(60)])
    assert data_gap_note(weekly, dt.date(2022, 6, 1)) is None


# -- a search candidate that diverges is skipped, not fatal -----------------------------------


class _Explodes(RegressorMixin, BaseEstimator):
    """A regressor that diverges (``TrainingDivergedError``) when ``explode`` names the step.

    ``explode``: "predict" (when it predicts, as Model 2's XGBoost does), "fit" (inside its own
    fit, as a stack does when its member predicts), "refit" (only on more than 300 rows, so on
    the final refit), "bug" (a plain error in fit, not a divergence), or "" (never).
    """

    def __init__(self, explode: str = "", level: float = 0.0) -> None:
        self.explode = explode
        self.level = level

    def fit(self, X, y) -> "_Explodes":
        from retail_clv.errors import TrainingDivergedError

        if self.explode == "fit" or (self.explode == "refit" and len(X) > 300):
            raise TrainingDivergedError("the XGBoost learner gave 9 of 9 predictions that ...")
        if self.explode == "bug":
            raise TypeError("a plain bug")
        self.mean_ = float(np.mean(y))
        return self

    def predict(self, X) -> np.ndarray:
        if self.explode == "predict":
            from retail_clv.errors import TrainingDivergedError

            raise TrainingDivergedError("the XGBoost learner gave 9 of 9 predictions that ...")
        return np.full(len(X), self.mean_ + self.level)


def _search_input() -> tuple:
    import pandas as pd

    from retail_clv.models.tuning import cutoff_days

    rng = np.random.default_rng(0)
    cutoffs = np.repeat(
        np.array([dt.date(2011, 1, 1) + dt.timedelta(days=28 * i) for i in range(8)]), 50
    )
    X = pd.DataFrame({"x": rng.normal(size=cutoffs.size)})
    X.index = pd.Index(cutoff_days(cutoffs), name="cutoff_day")
    y = rng.gamma(1.0, 10.0, size=cutoffs.size)
    return X, y


@pytest.mark.parametrize(("n_iter", "candidates"), [(3, 3), (9, 4)])
def test_a_search_moves_the_progress_bar_before_every_fold_fit_and_the_refit(
    n_iter, candidates
) -> None:
    from retail_clv.models.training import _fit_search

    X, y = _search_input()
    calls: list[tuple[float, str]] = []
    space = {"explode": ["", "predict"], "level": [0.0, 1.0]}  # 4 candidates, 2 diverge
    cfg = {"n_iter": n_iter, "outer_splits": 2}
    _fit_search(
        "Model 2",
        _Explodes(),
        space,
        X,
        y,
        cfg,
        30,
        0,
        lambda f, m: calls.append((f, m)),
        (0.45, 0.80),
    )
    fits = 2 * candidates  # a space smaller than n_iter is searched whole
    assert [m for _, m in calls] == [
        *(f"tuning Model 2 · search fit {k} of {fits}" for k in range(1, fits + 1)),
        "tuning Model 2 · refitting the best candidate on all training rows",
    ]
    fractions = [f for f, _ in calls]
    assert fractions == sorted(fractions) and fractions[0] == 0.45 and fractions[-1] < 0.80
    assert fractions[-1] == pytest.approx(0.45 + 0.35 * fits / (fits + 1))


def test_the_bar_names_each_stack_member_s_fit_and_never_moves_back(quick_run) -> None:
    from retail_clv.models.estimators import MEMBER_FIT_STEP

    _, calls = quick_run
    messages = [m for _, m in calls]
    model2 = "tuning Model 2 (RF + XGBoost + Ridge + Lasso stack)"
    assert [m for m in messages if m.startswith(model2)] == [
        model2,
        *(f"{model2} · {member}, all rows" for member in ("forest", "XGBoost", "Ridge", "Lasso")),
        *(
            f"{model2} · {member}, inner fold {k} of 2"
            for k in (1, 2)
            for member in ("forest", "XGBoost", "Ridge", "Lasso")
        ),
    ]
    assert "tuning Model 1 (RF + Ridge + Lasso stack) · Lasso, inner fold 2 of 2" in messages
    fractions = [f for f, _ in calls]
    assert fractions == sorted(fractions)
    assert MEMBER_FIT_STEP.get() is None  # the hook does not outlive the training


@pytest.mark.parametrize("where", ["predict", "fit"])
def test_a_search_candidate_that_diverges_is_skipped_and_named(caplog, where) -> None:
    import warnings

    from retail_clv.models.training import _fit_search, failed_search_note

    X, y = _search_input()
    cfg = {"n_iter": 4, "outer_splits": 2}
    space = {"explode": ["", where], "level": [0.0, 100.0]}  # 4 candidates, 2 diverge
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        fitted, best, scores = _fit_search("Model 2", _Explodes(), space, X, y, cfg, 30, 0)
    # no multi-line "fits failed" warning from scikit-learn (its one line about the NaN
    # scores stays): one log line says what was skipped and why
    assert not [w for w in seen if "failed" in str(w.message)]
    assert [str(w.message) for w in seen if "non-finite" in str(w.message)] == [
        "One or more of the test scores are non-finite: "
        + str(np.array([scores["mean_test_r2"][i] or np.nan for i in range(4)]))
    ]
    [logged] = [r.getMessage() for r in caplog.records if "were skipped" in r.getMessage()]
    assert logged.startswith("Model 2: 2 of 4 search candidates diverged on the forward folds")
    assert logged.endswith("(first: the XGBoost learner gave 9 of 9 predictions that ...)")
    assert best == {"explode": "", "level": 0.0}  # the best finite one, not a failed one
    assert isinstance(fitted, _Explodes) and fitted.explode == "" and fitted.level == 0.0
    assert scores["n_candidates"] == 4
    assert sorted(c["level"] for c in scores["failed_candidates"]) == [0.0, 100.0]
    assert all(c["explode"] == where for c in scores["failed_candidates"])
    assert sum(v is None for v in scores["mean_test_r2"]) == 2
    assert math.isfinite(scores["best_score_r2"])
    note = failed_search_note("Model 2", scores)
    listed = "; ".join(
        ", ".join(f"{k} {v}" for k, v in c.items()) for c in scores["failed_candidates"]
    )
    assert f"level 0.0, explode {where}" in listed and f"level 100.0, explode {where}" in listed
    assert note == (
        "Model 2's hyper-parameter search skipped 2 of 4 candidates whose predictions on a "
        "forward fold were not finite numbers (the XGBoost learner gave 9 of 9 predictions that "
        f"...): {listed}. The best of the others was kept"
    )
    assert failed_search_note("Model 1", {"search": "none (budget)"}) is None


def test_failed_search_note_shortens_the_pipeline_names() -> None:
    from retail_clv.models.training import failed_search_note

    scores = {
        "n_candidates": 3,
        "failure": "why",
        "failed_candidates": [
            {"regressor__xgb__regressor__learning_rate": 0.1, "regressor__ridge__model__alpha": 10}
        ],
    }
    assert "(why): xgb.learning_rate 0.1, ridge.alpha 10." in str(failed_search_note("M", scores))


@pytest.mark.parametrize("where", ["predict", "fit"])
def test_a_search_whose_every_candidate_diverges_is_one_clear_error(where) -> None:
    from retail_clv.errors import TrainingDivergedError
    from retail_clv.models.training import _fit_search

    X, y = _search_input()
    cfg = {"n_iter": 2, "outer_splits": 2}
    with pytest.raises(
        TrainingDivergedError,
        match=r"^every candidate of Model 2's hyper-parameter search diverged on the forward "
        r"folds \(the XGBoost learner gave 9 of 9 predictions that \.\.\.\); train with "
        r"--budget quick",
    ):
        _fit_search(
            "Model 2", _Explodes(), {"explode": [where], "level": [0.0, 1.0]}, X, y, cfg, 30, 0
        )


def test_a_chosen_candidate_that_diverges_on_the_refit_is_one_clear_error() -> None:
    from retail_clv.errors import TrainingDivergedError
    from retail_clv.models.training import _fit_search

    X, y = _search_input()  # folds train on at most 300 rows, the refit on 400
    with pytest.raises(
        TrainingDivergedError, match=r"^Model 1's chosen hyper-parameters diverged when refitted"
    ):
        _fit_search("Model 1", _Explodes(), {"explode": ["refit"], "level": [0.0]}, X, y,
                    {"n_iter": 2, "outer_splits": 2}, 30, 0)  # fmt: skip


def test_an_error_that_is_not_a_divergence_still_ends_the_search() -> None:
    from retail_clv.models.training import _fit_search

    X, y = _search_input()
    with pytest.raises(TypeError, match="a plain bug"):
        _fit_search("Model 2", _Explodes(), {"explode": ["", "bug"], "level": [0.0]}, X, y,
                    {"n_iter": 2, "outer_splits": 2}, 30, 0)  # fmt: skip


def test_without_a_search_a_divergence_names_the_model() -> None:
    from retail_clv.errors import TrainingDivergedError
    from retail_clv.models.training import _fit_search

    X, y = _search_input()
    with pytest.raises(TrainingDivergedError, match=r"^Model 2 could not be trained: the XGBoost"):
        _fit_search("Model 2", _Explodes(explode="fit"), {}, X, y, {"n_iter": 1}, 30, 0)


def test_a_small_held_out_population_is_said_to_give_rough_numbers() -> None:
    from retail_clv.models.training import SMALL_POPULATION, small_population_note

    assert small_population_note(SMALL_POPULATION) is None
    note = small_population_note(5)
    assert note is not None and note.startswith(
        "only 5 customers in the held-out window (fewer than 100): one customer can decide R²"
    )


def test_the_entry_points_hide_scikit_learn_s_few_bootstrap_rows_line() -> None:
    import warnings

    import numpy as np
    from sklearn.ensemble import RandomForestRegressor

    from retail_clv.logging import hide_repeated_warnings

    rng = np.random.default_rng(0)
    x, y = rng.random((12, 2)), rng.random(12)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        RandomForestRegressor(n_estimators=2, max_samples=0.3).fit(x, y)
    assert any("max_samples=0.3" in str(w.message) for w in seen)  # what a tiny shop met
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        hide_repeated_warnings()
        RandomForestRegressor(n_estimators=2, max_samples=0.3).fit(x, y)
    assert not any("max_samples" in str(w.message) for w in seen)


def test_the_readme_table_of_history_needed_matches_the_code():
    from pathlib import Path

    from retail_clv.models.training import history_needed

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    rows = re.findall(
        r"^\| (\d+) days[^|]*\| (\d+) days \(([\d.]+) months\) \| (\d+) days "
        r"\(([\d.]+) months\) \|$",
        readme,
        flags=re.MULTILINE,
    )
    assert len(rows) == 4, "the README's history table is missing or was reshaped"
    for horizon, quick, quick_months, default, default_months in rows:
        h = int(horizon)
        for budget, needed, months in (
            ("quick", quick, quick_months),
            ("default", default, default_months),
        ):
            days_before = history_needed(budget, h)[1]
            assert int(needed) == days_before, (budget, h)
            assert float(months) == round((days_before + h) / 30.44, 1), (budget, h)


def test_a_run_rate_over_less_than_a_year_of_history_is_a_warning():
    from retail_clv.models.training import short_run_rate_note

    note = short_run_rate_note(dt.date(2024, 1, 1), dt.date(2024, 7, 19), 0.771)  # 200 days
    assert note is not None
    assert (
        "only 200 days of purchases before 2024-07-19: it spreads them over a whole year, "
        "and its predictions sum to 0.77 of the window's actual spend" in note
    )
    assert short_run_rate_note(dt.date(2024, 1, 1), dt.date(2024, 12, 31), 0.5) is None
    # it ran high (a quiet January after the December peak): its lead is not that scaling
    assert short_run_rate_note(dt.date(2024, 1, 1), dt.date(2024, 7, 19), 2.38) is None


def test_counts_of_one_customer_are_singular_in_the_no_repeat_message():
    from retail_clv.models.training import _no_training_spend

    one = pl.DataFrame({"customer_id": ["1"], "invoice_date": [dt.datetime(2011, 1, 5)]})
    said = _no_training_spend(one, dt.date(2011, 6, 1))
    assert "(1 customer, one purchase day each)" in said
    two_days = pl.concat(
        [one, pl.DataFrame({"customer_id": ["1"], "invoice_date": [dt.datetime(2011, 2, 5)]})]
    )
    assert "(only 1 of 1 customer bought on more than one day)" in _no_training_spend(
        two_days, dt.date(2011, 6, 1)
    )


def test_a_run_on_less_than_a_year_says_how_low_the_run_rate_ran():
    purchases, cancellations = synthetic_log(n_customers=60, months=10)
    as_of = purchases["invoice_date"].max().date() - dt.timedelta(days=60)  # 234 days of history
    result = train(purchases, cancellations, as_of=as_of, horizon_days=30, budget="quick")
    totals = result.metrics["totals"]
    assert totals["run_rate"] < totals["actual"]  # it ran low here (0.50)
    [note] = [w for w in result.metrics["warnings"] if w.startswith("the run-rate baseline")]
    assert (
        f"its predictions sum to {totals['run_rate'] / totals['actual']:.2f} of the window's"
        in (note)
    )
