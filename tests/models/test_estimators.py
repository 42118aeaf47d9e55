import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.ensemble import RandomForestRegressor, StackingRegressor
from sklearn.linear_model import LinearRegression, Ridge

from retail_clv.errors import NotEnoughDataError
from retail_clv.models.estimators import (
    ConvexBlendRegressor,
    ExposureOffsetRegressor,
    LevelMonotoneForest,
    NonNegativeRegressor,
    TimeSeriesStackingRegressor,
    build_model1,
    build_model2,
    build_products_model,
)
from retail_clv.models.tuning import CutoffSplit, cutoff_days


def _frame(n_cutoffs: int = 8, per: int = 30, step: int = 14, seed: int = 0):
    rng = np.random.default_rng(seed)
    days = np.repeat(15000 + step * np.arange(n_cutoffs), per)
    X = pd.DataFrame(
        {"a": rng.normal(size=days.size), "b": rng.normal(size=days.size)},
        index=pd.Index(days, name="cutoff_day"),
    )
    y = 3 * X["a"].to_numpy() + rng.normal(scale=0.1, size=days.size)
    return X, y


@settings(max_examples=60, deadline=None)
@given(
    n_cutoffs=st.integers(4, 30),
    step=st.integers(1, 40),
    horizon=st.integers(1, 60),
    n_splits=st.integers(1, 3),
)
def test_folds_never_train_on_a_window_that_reaches_the_test_cutoffs(
    n_cutoffs, step, horizon, n_splits
):
    days = np.repeat(15000 + step * np.arange(n_cutoffs), 3)
    cv = CutoffSplit(n_splits, horizon)
    try:
        folds = list(cv.split(np.zeros(days.size), groups=days))
    except NotEnoughDataError:
        # allowed only when the purge leaves a fold without training rows
        assert step * (n_cutoffs // (n_splits + 1)) < horizon or n_cutoffs < n_splits + 1
        return
    assert len(folds) == n_splits
    previous_test_start = -np.inf
    for train, test in folds:
        assert train.size and test.size
        assert days[train].max() + horizon <= days[test].min()
        assert np.intersect1d(train, test).size == 0
        assert days[test].min() > previous_test_start  # test blocks move forward in time
        previous_test_start = days[test].min()


def test_cutoff_split_reads_the_pandas_index_and_checks_history():
    X, _ = _frame(n_cutoffs=6, step=30)
    folds = list(CutoffSplit(2, 30).split(X))
    assert len(folds) == 2
    with pytest.raises(NotEnoughDataError, match="at least 4 distinct cutoffs"):
        list(CutoffSplit(3, 30).split(X.iloc[:60]))
    with pytest.raises(NotEnoughDataError, match="needs groups"):
        list(CutoffSplit(2, 30).split(np.zeros((10, 2))))


def test_cutoff_days_accepts_dates_and_ints():
    as_dates = np.array(["2011-01-01", "2011-01-15"], dtype="datetime64[D]")
    assert cutoff_days(as_dates).tolist() == [14975, 14989]
    assert cutoff_days([5, 6]).tolist() == [5, 6]


def test_time_series_stack_meta_learner_sees_only_forward_predictions():
    X, y = _frame(n_cutoffs=9, step=30)
    stack = TimeSeriesStackingRegressor(
        [("ridge", Ridge(alpha=0.1)), ("zero", Ridge(alpha=1e6))],
        final_estimator=LinearRegression(positive=True),
        cv=CutoffSplit(2, horizon_days=30),
    )
    assert isinstance(stack, StackingRegressor)
    stack.fit(X, y)
    # 9 cutoffs in 3 blocks of 3: the oldest block gets no out-of-fold prediction
    assert stack.oof_rows_ == 6 * 30
    w = stack.blend_weights()
    assert w["ridge"] > 0.9 and w["zero"] >= 0.0
    pred = stack.predict(X)
    assert np.corrcoef(pred, y)[0, 1] > 0.99
    clone(stack).set_params(ridge__alpha=2.0)  # behaves like a scikit-learn estimator


def test_stack_requires_cutoff_index():
    X, y = _frame()
    stack = TimeSeriesStackingRegressor([("lr", LinearRegression())], cv=CutoffSplit(2, 14))
    with pytest.raises(NotEnoughDataError, match="pandas DataFrame indexed by cutoff"):
        stack.fit(X.to_numpy(), y)


def test_non_negative_regressor_clips():
    X, y = _frame()
    model = NonNegativeRegressor(LinearRegression()).fit(X, y)
    assert (model.predict(X) >= 0).all()
    assert (LinearRegression().fit(X, y).predict(X) < 0).any()


@pytest.mark.parametrize(
    "builder, names",
    [
        (build_model1, ["rf", "ridge", "lasso"]),
        (build_model2, ["rf", "xgb", "ridge", "lasso"]),
    ],
)
def test_ensembles_have_the_specified_learners(builder, names):
    model = builder(horizon_days=30)
    stack = model.regressor
    assert isinstance(stack, StackingRegressor)
    assert [n for n, _ in stack.estimators] == names
    assert isinstance(stack.final_estimator, ConvexBlendRegressor)
    # selection and scaling live inside the linear learners' own pipelines
    for name in ("ridge", "lasso"):
        steps = stack.named_estimators[name].named_steps
        assert list(steps) == ["select", "impute", "scale", "model"]
        assert steps["model"].positive


def test_small_stacks_fit_and_predict_non_negative():
    X, y = _frame(n_cutoffs=9, step=30)
    y = np.abs(y)
    X["run_rate_adj_30d"] = np.abs(X["b"].to_numpy()) * 10  # XGBoost exposure, a level feature
    X["spend_365d"] = X["run_rate_adj_30d"] * 12  # the linear learners' input
    for builder in (build_model1, build_model2):
        model = builder(horizon_days=30).set_params(regressor__rf__model__n_estimators=5)
        if "xgb" in dict(model.regressor.estimators):
            model.set_params(regressor__xgb__regressor__n_estimators=10)
        pred = model.fit(X, y).predict(X)
        assert pred.shape == (X.shape[0],) and (pred >= 0).all()
    counts = np.random.default_rng(0).poisson(2, X.shape[0])
    prod = build_products_model().set_params(regressor__max_iter=20).fit(X, counts)
    assert (prod.predict(X) >= 0).all()


def test_convex_blend_weights_are_non_negative_and_sum_to_one():
    rng = np.random.default_rng(0)
    good = rng.gamma(1.0, 100.0, 500)
    y = good + rng.normal(0, 5, 500)
    P = np.column_stack([good, 2 * good, rng.normal(0, 50, 500)])
    blend = ConvexBlendRegressor().fit(P, y)
    assert blend.coef_.min() >= 0 and blend.coef_.sum() == pytest.approx(1.0)
    assert blend.coef_[0] > 0.95  # the unbiased learner, not the doubled one
    assert blend.intercept_ == 0.0
    assert np.allclose(blend.predict(P), P @ blend.coef_)
    # a free non-negative linear meta-learner would simply rescale the doubled learner
    free = LinearRegression(positive=True, fit_intercept=False).fit(P[:, 1:2], y)
    assert free.coef_[0] == pytest.approx(0.5, abs=0.02)


def test_convex_blend_matches_a_generic_constrained_solver():
    from scipy.optimize import minimize

    rng = np.random.default_rng(1)
    P = rng.gamma(1.0, 100.0, (2000, 4))
    y = P @ np.array([0.5, 0.3, 0.0, 0.2]) * 1.3 + rng.normal(0, 30, 2000)
    w = ConvexBlendRegressor().fit(P, y).coef_
    ref = minimize(
        lambda v: float(np.sum((y - P @ v) ** 2)) / 1e7,
        np.full(4, 0.25),
        bounds=[(0, 1)] * 4,
        constraints=[{"type": "eq", "fun": lambda v: v.sum() - 1}],
        method="SLSQP",
    ).x
    assert np.sum((y - P @ w) ** 2) <= np.sum((y - P @ ref) ** 2) * (1 + 1e-9)
    assert w == pytest.approx(ref, abs=1e-3)


def test_stack_falls_back_to_fewer_inner_folds_when_cutoffs_are_few():
    # 6 cutoffs 14 days apart, 30-day horizon: 2 purged folds leave the first fold empty,
    # one forward fold (test = last 3 cutoffs, train = the first) still works
    X, y = _frame(n_cutoffs=6, step=14)
    with pytest.raises(NotEnoughDataError):
        list(CutoffSplit(2, 30).split(X))
    stack = TimeSeriesStackingRegressor(
        [("ridge", Ridge(alpha=0.1))], final_estimator=ConvexBlendRegressor(), cv=CutoffSplit(2, 30)
    ).fit(X, y)
    assert stack.oof_rows_ == 3 * 30
    X1, y1 = _frame(n_cutoffs=2, step=14)
    with pytest.raises(NotEnoughDataError):
        TimeSeriesStackingRegressor([("ridge", Ridge())], cv=CutoffSplit(2, 30)).fit(X1, y1)


def _exposure_data(n: int = 4000, seed: int = 0):
    """Spend = exposure x exp(0.7 a) x noise: a multiplier learnable from small customers."""
    rng = np.random.default_rng(seed)
    s = rng.uniform(1.0, 100.0, n)
    a = rng.normal(size=n)
    X = pd.DataFrame({"a": a, "run_rate_adj_30d": s})
    y = s * np.exp(0.7 * a) * rng.gamma(4.0, 0.25, n)
    return X, y


def _xgb_tweedie(**kw):
    from xgboost import XGBRegressor

    params = dict(
        n_estimators=200, learning_rate=0.1, max_depth=3, objective="reg:tweedie", n_jobs=1
    )
    return XGBRegressor(**{**params, **kw})


def test_exposure_offset_scales_predictions_with_the_exposure_beyond_the_training_range():
    X, y = _exposure_data()
    model = ExposureOffsetRegressor(_xgb_tweedie()).fit(X, y)
    plain = _xgb_tweedie().fit(X, y)
    rows = pd.DataFrame({"a": [0.0, 0.0, 0.0], "run_rate_adj_30d": [50.0, 200.0, 20000.0]})
    p = model.predict(rows)
    # the learned multiplier is about exp(0.7 * 0) = 1 ...
    assert p[0] == pytest.approx(50.0, rel=0.25)
    # ... and beyond the training range (exposure <= 100) the trees see the same leaves, so
    # the prediction is exactly proportional to the exposure
    assert p[2] / p[1] == pytest.approx(100.0, rel=1e-4)  # float32 margins
    # a plain tree model cannot predict above the levels it saw in training
    assert plain.predict(rows)[2] < y.max() < p[2] / 10


def test_exposure_offset_floors_missing_and_tiny_exposures():
    X, y = _exposure_data(n=1500)
    model = ExposureOffsetRegressor(_xgb_tweedie(n_estimators=20), floor=1.0).fit(X, y)
    rows = pd.DataFrame({"a": [0.0, 0.0, 0.0], "run_rate_adj_30d": [np.nan, 0.0, 1.0]})
    p = model.predict(rows)
    assert np.isfinite(p).all() and (p > 0).all()
    # 0 and 1 reach the same leaves (both below every split) and the same floored margin
    assert p[1] == pytest.approx(p[2])


def test_exposure_offset_averages_its_seeds_and_clones():
    X, y = _exposure_data(n=1500)
    model = ExposureOffsetRegressor(
        _xgb_tweedie(n_estimators=20, subsample=0.7, random_state=3), n_seeds=3
    )
    cloned = clone(model).set_params(regressor__max_depth=2)
    assert cloned.get_params()["regressor__max_depth"] == 2 and cloned.n_seeds == 3
    model.fit(X, y)
    assert [e.get_params()["random_state"] for e in model.estimators_] == [3, 4, 5]
    margin = np.log(X["run_rate_adj_30d"].to_numpy())
    each = [e.predict(X, base_margin=margin) for e in model.estimators_]
    assert np.allclose(model.predict(X), np.mean(each, axis=0))
    assert not np.allclose(each[0], each[1])  # the seeds differ
    assert model.feature_importances_.shape == (2,)


def test_exposure_offset_refuses_an_identity_link_and_a_missing_column():
    X, y = _exposure_data(n=200)
    with pytest.raises(ValueError, match="log-link objective"):
        ExposureOffsetRegressor(_xgb_tweedie(objective="reg:squarederror")).fit(X, y)
    with pytest.raises(NotEnoughDataError, match="run_rate_adj_30d"):
        ExposureOffsetRegressor(_xgb_tweedie()).fit(X[["a"]], y)


def test_linear_learners_see_only_the_baseline_levels_with_non_negative_weights():
    rng = np.random.default_rng(0)
    n = 3000
    X = pd.DataFrame(
        {
            "spend_365d": rng.gamma(1.0, 1200.0, n),
            "bgnbd_gg_spend_30d": rng.gamma(1.0, 300.0, n),
            "spend_90d": rng.gamma(1.0, 300.0, n),  # a level feature, but not a linear input
            "recency_days": rng.uniform(1, 300, n),  # not a level feature
        },
        index=pd.Index(np.repeat(15000 + 28 * np.arange(6), n // 6), name="cutoff_day"),
    )
    # spend falls with bgnbd_gg_spend_30d in this toy data: a free model would use -1
    y = 0.2 * X["spend_365d"].to_numpy() - 0.3 * X["bgnbd_gg_spend_30d"].to_numpy() + 100.0
    y += 50 * np.sin(X["recency_days"].to_numpy()) + 0.5 * X["spend_90d"].to_numpy()
    for builder in (build_model1, build_model2):
        stack = builder(horizon_days=30).regressor
        for name in ("ridge", "lasso"):
            fitted = clone(stack.named_estimators[name]).fit(X, y)
            select = fitted.named_steps["select"]
            assert list(select.get_feature_names_out()) == [
                "level__spend_365d",
                "level__bgnbd_gg_spend_30d",
            ]
            coef = fitted.named_steps["model"].coef_
            assert coef.shape == (2,) and (coef >= 0).all() and coef[0] > 0
    with pytest.raises(NotEnoughDataError, match="spend-level feature"):
        clone(build_model1().regressor.named_estimators["ridge"]).fit(X[["recency_days"]], y)


def test_level_features_and_the_exposure_are_feature_columns():
    from retail_clv.features import FEATURE_COLUMNS
    from retail_clv.models.estimators import LEVEL_FEATURES, LINEAR_FEATURES

    assert set(LINEAR_FEATURES) <= set(LEVEL_FEATURES) <= set(FEATURE_COLUMNS)
    stack = build_model2().regressor
    assert stack.named_estimators["xgb"].exposure in FEATURE_COLUMNS


def _falling_level_data(n: int = 2400, seed: int = 0):
    """Spend that *falls* with spend_90d over most of its range: a free model would follow it."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "run_rate_adj_30d": rng.gamma(2.0, 50.0, n),
            "spend_90d": rng.uniform(0.0, 1000.0, n),
            "spend_365d": rng.gamma(2.0, 600.0, n),  # a level feature and a linear input
            "recency_days": rng.uniform(1.0, 300.0, n),  # not a level feature: unconstrained
        },
        index=pd.Index(np.repeat(15000 + 28 * np.arange(8), n // 8), name="cutoff_day"),
    )
    y = X["run_rate_adj_30d"].to_numpy() * (
        1.5 - X["spend_90d"].to_numpy() / 1000.0 + 0.5 * np.sin(X["recency_days"].to_numpy() / 30)
    )
    y += 0.02 * X["spend_365d"].to_numpy()
    return X, np.clip(y, 0.0, None)


def _along(X: pd.DataFrame, rows: int, column: str, grid: np.ndarray) -> pd.DataFrame:
    """``rows`` rows of ``X``, each repeated along ``grid`` values of ``column``."""
    base = X.iloc[:rows].reset_index(drop=True)
    out = base.loc[base.index.repeat(grid.size)].reset_index(drop=True)
    out[column] = np.tile(grid, rows)
    return out


def test_level_monotone_forest_never_falls_in_a_level_feature_and_keeps_its_params():
    X, y = _falling_level_data()
    forest = LevelMonotoneForest(n_estimators=20, min_samples_leaf=5, random_state=0)
    fitted = clone(forest).fit(X, y)
    assert fitted.get_params()["monotonic_cst"] is None  # derived per fit, then restored
    grid = np.linspace(0.0, 1000.0, 41)
    pred = fitted.predict(_along(X, 30, "spend_90d", grid)).reshape(30, grid.size)
    assert (np.diff(pred, axis=1) >= -1e-9).all()
    # the same forest without the constraint does follow the falling toy relation
    free = RandomForestRegressor(n_estimators=20, min_samples_leaf=5, random_state=0).fit(X, y)
    free_pred = free.predict(_along(X, 30, "spend_90d", grid)).reshape(30, grid.size)
    assert (np.diff(free_pred, axis=1) < -1e-6).any()
    # the non-level feature stays free
    rec = fitted.predict(_along(X, 30, "recency_days", np.linspace(1, 300, 41))).reshape(30, 41)
    assert (np.diff(rec, axis=1) < -1e-6).any()
    with pytest.raises(ValueError, match="leave it None"):
        clone(forest).set_params(monotonic_cst=[1, 1, 0]).fit(X, y)


@pytest.mark.parametrize("builder", [build_model1, build_model2])
def test_both_models_never_predict_less_when_a_spend_level_rises(builder):
    X, y = _falling_level_data()
    model = builder(horizon_days=30).set_params(regressor__rf__model__n_estimators=10)
    if "xgb" in dict(model.regressor.estimators):
        model.set_params(regressor__xgb__regressor__n_estimators=30)
    model.fit(X, y)
    for column, top in (("spend_90d", 1000.0), ("run_rate_adj_30d", 600.0), ("spend_365d", 6000.0)):
        grid = np.linspace(0.0, top, 31)
        pred = model.predict(_along(X, 40, column, grid)).reshape(40, grid.size)
        assert (np.diff(pred, axis=1) >= -1e-6 * (1 + np.abs(pred[:, 1:]))).all(), column


def test_exposure_offset_monotone_constraints_apply_by_name_to_the_columns_present():
    X, y = _falling_level_data()
    model = ExposureOffsetRegressor(
        _xgb_tweedie(n_estimators=60), increasing=("spend_90d", "not_a_column")
    ).fit(X, y)
    assert model.estimators_[0].get_params()["monotone_constraints"] == {"spend_90d": 1}
    assert model.regressor.get_params()["monotone_constraints"] is None  # not mutated
    grid = np.linspace(0.0, 1000.0, 31)
    pred = model.predict(_along(X, 30, "spend_90d", grid)).reshape(30, grid.size)
    assert (np.diff(pred, axis=1) >= -1e-6 * pred[:, 1:]).all()
    free = ExposureOffsetRegressor(_xgb_tweedie(n_estimators=60)).fit(X, y)
    free_pred = free.predict(_along(X, 30, "spend_90d", grid)).reshape(30, grid.size)
    assert (np.diff(free_pred, axis=1) < 0).any()


def test_exposure_offset_refuses_to_return_predictions_that_are_not_finite():
    from retail_clv.errors import TrainingDivergedError

    X, y = _exposure_data(n=1500)
    model = ExposureOffsetRegressor(_xgb_tweedie(n_estimators=20)).fit(X, y)
    # an exposure beyond float32 (XGBoost's margin type) gives an infinite prediction: the
    # same thing a booster that ran away during training gives
    rows = pd.DataFrame({"a": [0.0, 0.0], "run_rate_adj_30d": [50.0, 1e39]})
    with pytest.raises(TrainingDivergedError, match=r"gave 1 of 2 predictions that are not finite"):
        model.predict(rows)
    assert np.isfinite(model.predict(rows.head(1))).all()
