"""The two stacking ensembles (Model 1, Model 2), the products count model, and their parts.

Why a :class:`TimeSeriesStackingRegressor` and not a plain ``StackingRegressor``: the stack's
meta-learner is fitted on out-of-fold predictions of the base learners. scikit-learn obtains
them with ``cross_val_predict``, which requires the folds to partition the rows, so every row,
including the oldest cutoffs, must be predicted by a model trained on *other* rows; with
forward-in-time folds that is impossible, and with k-fold the base learners would be trained on
later windows to predict earlier ones (look-ahead), which over-rates the flexible learners in
the blend. This subclass keeps everything else of ``StackingRegressor`` (``clone``,
``set_params``, ``transform``, ``predict``, ``named_estimators_``) and changes only ``fit``:

1. every base learner is fitted on all rows (as in scikit-learn) and used at predict time;
2. out-of-fold predictions come from forward, purged :class:`CutoffSplit` folds over the
   cutoffs found in ``X.index`` (rows of the oldest block have none and are left out);
3. the final estimator (default ``LinearRegression(positive=True)``: non-negative blending
   weights plus an intercept) is fitted on the rows that have out-of-fold predictions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    HistGradientBoostingRegressor,
    RandomForestRegressor,
    StackingRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Lasso, LinearRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import Bunch, _safe_indexing
from sklearn.utils.validation import check_is_fitted
from xgboost import XGBRegressor

from retail_clv.errors import NotEnoughDataError, TrainingDivergedError
from retail_clv.models.tuning import CutoffSplit

#: Default CPU threads of the forest and XGBoost (``train(n_jobs=...)``, ``CLV_N_JOBS``).
N_JOBS = 2

#: Told, before each base-learner fit of a stack, which one starts (``"XGBoost, inner fold 1 of
#: 2"``), when set: ``training.train`` sets it so the progress bar moves during a model's fit.
#: A context variable, not an estimator parameter, so it is never pickled into a model run and
#: each thread (the API's training job) sees only its own.
MEMBER_FIT_STEP: ContextVar[Callable[[str], None] | None] = ContextVar(
    "retail_clv_member_fit_step", default=None
)

#: How the progress messages name the stack members.
MEMBER_NAMES = {"rf": "forest", "xgb": "XGBoost", "ridge": "Ridge", "lasso": "Lasso"}


@contextmanager
def member_fit_steps(hook: Callable[[str], None] | None) -> Iterator[None]:
    """Tell ``hook`` about each stack member's fit inside the block (:data:`MEMBER_FIT_STEP`)."""
    token = MEMBER_FIT_STEP.set(hook)
    try:
        yield
    finally:
        MEMBER_FIT_STEP.reset(token)


class TimeSeriesStackingRegressor(StackingRegressor):
    """``StackingRegressor`` whose meta-learner sees only forward-in-time predictions.

    Parameters
    ----------
    estimators : list of (str, estimator)
        Base learners.
    final_estimator : estimator, default None
        Meta-learner; ``None`` means ``LinearRegression(positive=True)``.
    cv : CutoffSplit, default None
        Splitter used for the out-of-fold predictions; ``None`` means ``CutoffSplit(3)``. The
        cutoffs are read from the pandas index of ``X`` (int day numbers or dates).
    n_jobs : int, default None
        Kept for compatibility; base learners parallelise themselves.
    passthrough : bool, default False
        Also give the original features to the meta-learner.
    verbose : int, default 0
        Verbosity.
    """

    def __init__(
        self,
        estimators: list[tuple[str, Any]],
        final_estimator: Any = None,
        *,
        cv: Any = None,
        n_jobs: int | None = None,
        passthrough: bool = False,
        verbose: int = 0,
    ) -> None:
        super().__init__(
            estimators,
            final_estimator=final_estimator,
            cv=cv,
            n_jobs=n_jobs,
            passthrough=passthrough,
            verbose=verbose,
        )

    def fit(self, X: Any, y: Any, **fit_params: Any) -> TimeSeriesStackingRegressor:
        """Fit the base learners on all rows and the meta-learner on forward OOF predictions.

        Parameters
        ----------
        X : pandas.DataFrame
            Features; its index holds the cutoff of each row.
        y : array-like
            Target.
        **fit_params : dict
            Unused (no sample weights).

        Returns
        -------
        TimeSeriesStackingRegressor
            The fitted estimator.
        """
        if not isinstance(X, pd.DataFrame):
            raise NotEnoughDataError(
                "TimeSeriesStackingRegressor.fit needs a pandas DataFrame indexed by cutoff"
            )
        y_arr = np.asarray(y, dtype=float)
        names, all_estimators = self._validate_estimators()
        active = [(n, e) for n, e in zip(names, all_estimators, strict=True) if e != "drop"]
        self.final_estimator_ = clone(
            LinearRegression(positive=True)
            if self.final_estimator is None
            else self.final_estimator
        )
        cv = CutoffSplit(3) if self.cv is None else self.cv
        splits = self._forward_splits(cv, X, y_arr)

        step = MEMBER_FIT_STEP.get()

        def starting(name: str, where: str) -> None:
            if step is not None:
                step(f"{MEMBER_NAMES.get(name, name)}, {where}")

        self.estimators_ = []
        for name, est in active:
            starting(name, "all rows")
            self.estimators_.append(clone(est).fit(X, y_arr))
        self.named_estimators_ = Bunch()
        for (name, _), fitted in zip(active, self.estimators_, strict=True):
            self.named_estimators_[name] = fitted
        for name, est in zip(names, all_estimators, strict=True):
            if est == "drop":
                self.named_estimators_[name] = "drop"
        self.stack_method_ = ["predict"] * len(self.estimators_)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)

        oof = np.full((X.shape[0], len(active)), np.nan)
        for k, (train_idx, test_idx) in enumerate(splits, start=1):
            X_tr = _safe_indexing(X, train_idx)
            X_te = _safe_indexing(X, test_idx)
            for j, (name, est) in enumerate(active):
                starting(name, f"inner fold {k} of {len(splits)}")
                oof[test_idx, j] = clone(est).fit(X_tr, y_arr[train_idx]).predict(X_te)
        rows = np.flatnonzero(~np.isnan(oof).any(axis=1))
        if rows.size == 0:
            raise NotEnoughDataError("no out-of-fold prediction to fit the stacking meta-learner")
        X_meta = self._concatenate_predictions(
            _safe_indexing(X, rows), [oof[rows, j] for j in range(len(active))]
        )
        self.final_estimator_.fit(X_meta, y_arr[rows])
        self.oof_rows_ = rows.size
        # kept for diagnostics (compare meta-learners on the same base predictions)
        self.oof_predictions_ = oof[rows].astype(np.float32)
        self.oof_target_ = y_arr[rows].astype(np.float32)
        return self

    @staticmethod
    def _forward_splits(cv: Any, X: pd.DataFrame, y: np.ndarray) -> list[Any]:
        """Split ``X`` by its cutoff index; with too few cutoffs, fall back to fewer folds.

        Inside a search fold the stack may see only a handful of cutoffs, too few for every
        purged fold to keep a training row; one forward fold is still honest.
        """
        groups = X.index.to_numpy()
        n_splits = int(getattr(cv, "n_splits", 1))
        for n in range(n_splits, 0, -1):
            candidate = (
                cv if n == n_splits else CutoffSplit(n, cv.horizon_days, cv.max_test_cutoffs)
            )
            try:
                return list(candidate.split(X, y, groups=groups))
            except NotEnoughDataError:
                if n == 1:
                    raise
        return []  # unreachable: n_splits >= 1

    def blend_weights(self) -> dict[str, float]:
        """Return the meta-learner's coefficient per base learner (linear meta-learners only).

        Returns
        -------
        dict[str, float]
            Base-learner name to weight, plus ``intercept``.
        """
        check_is_fitted(self)
        coef = np.ravel(getattr(self.final_estimator_, "coef_", []))
        names = [n for n, e in self.estimators if e != "drop"]
        out = {n: float(c) for n, c in zip(names, coef[: len(names)], strict=False)}
        out["intercept"] = float(np.ravel(getattr(self.final_estimator_, "intercept_", [0.0]))[0])
        return out


class ConvexBlendRegressor(RegressorMixin, BaseEstimator):
    """Meta-learner: weights >= 0 that sum to 1, no intercept (a convex mix of the learners).

    Unlike a free linear meta-learner it cannot re-scale the base predictions; with forward
    stacking, where out-of-fold predictions come from models trained on fewer and older
    cutoffs than the final ones, a free scale learned there need not hold at predict time.
    """

    def fit(self, X: Any, y: Any) -> ConvexBlendRegressor:
        """Solve min ||y - X w||^2 subject to w >= 0, sum(w) = 1, exactly.

        With k <= 6 learners every support set is enumerated: on each, the equality-constrained
        least squares has a closed form (KKT system); the best feasible one is the optimum.

        Parameters
        ----------
        X : array-like of shape (n, k)
            Base-learner predictions.
        y : array-like of shape (n,)
            Target.

        Returns
        -------
        ConvexBlendRegressor
            The fitted blend (``coef_``, ``intercept_ = 0``).
        """
        from itertools import combinations

        P = np.asarray(X, dtype=float)
        t = np.asarray(y, dtype=float)
        k = P.shape[1]
        if k > 6:
            raise ValueError(f"ConvexBlendRegressor enumerates supports; got {k} > 6 learners")
        scale = float(np.trace(P.T @ P)) / k or 1.0  # keeps the KKT system well conditioned
        A = P.T @ P / scale
        b = P.T @ t / scale
        best_w, best_loss = np.full(k, 1.0 / k), np.inf
        for size in range(1, k + 1):
            for support in combinations(range(k), size):
                idx = list(support)
                kkt = np.zeros((size + 1, size + 1))
                kkt[:size, :size] = 2.0 * A[np.ix_(idx, idx)]
                kkt[:size, size] = 1.0
                kkt[size, :size] = 1.0
                rhs = np.concatenate([2.0 * b[idx], [1.0]])
                try:
                    sol = np.linalg.solve(kkt, rhs)[:size]
                except np.linalg.LinAlgError:  # collinear learners: minimum-norm solution
                    sol = np.linalg.lstsq(kkt, rhs, rcond=None)[0][:size]
                if np.any(sol < -1e-9):
                    continue
                w = np.zeros(k)
                w[idx] = np.clip(sol, 0.0, None)
                w /= w.sum()
                loss = float(np.sum((t - P @ w) ** 2))
                if loss < best_loss:
                    best_w, best_loss = w, loss
        self.coef_ = best_w
        self.intercept_ = 0.0
        self.n_features_in_ = k
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Return the convex mix of the base predictions.

        Parameters
        ----------
        X : array-like of shape (n, k)
            Base-learner predictions.

        Returns
        -------
        numpy.ndarray
            Blended predictions.
        """
        check_is_fitted(self)
        return np.asarray(X, dtype=float) @ self.coef_


class NonNegativeRegressor(RegressorMixin, BaseEstimator):
    """Wrap a regressor so its predictions are clipped at 0 (spend and counts are never < 0).

    Parameters
    ----------
    regressor : estimator
        The wrapped regressor.
    """

    def __init__(self, regressor: Any) -> None:
        self.regressor = regressor

    def fit(self, X: Any, y: Any) -> NonNegativeRegressor:
        """Fit the wrapped regressor.

        Parameters
        ----------
        X : pandas.DataFrame
            Features (index = cutoff, kept for the stacking splitter).
        y : array-like
            Target.

        Returns
        -------
        NonNegativeRegressor
            The fitted wrapper.
        """
        self.regressor_ = clone(self.regressor).fit(X, y)
        if hasattr(self.regressor_, "feature_names_in_"):
            self.feature_names_in_ = self.regressor_.feature_names_in_
        self.n_features_in_ = getattr(self.regressor_, "n_features_in_", None)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predict and clip at 0.

        Parameters
        ----------
        X : pandas.DataFrame
            Features.

        Returns
        -------
        numpy.ndarray
            Non-negative predictions.
        """
        check_is_fitted(self)
        return np.clip(np.asarray(self.regressor_.predict(X), dtype=float), 0.0, None)


#: XGBoost objectives whose margin is the log of the mean (so an offset multiplies the mean).
LOG_LINK_OBJECTIVES = ("reg:tweedie", "count:poisson", "reg:gamma")


class ExposureOffsetRegressor(RegressorMixin, BaseEstimator):
    """A log-link XGBoost model of spend relative to an exposure: ``exposure × exp(f(x))``.

    The exposure is a feature column (default ``run_rate_adj_30d``, the customer's tenure-adjusted
    run-rate), floored at ``floor`` and passed to XGBoost as ``base_margin = log(exposure)``: the
    actuarial offset. The trees then learn a *multiplier* on the customer's own rate (recency,
    rhythm, season, churn risk) instead of the spend level itself. Patterns learned on the many
    small customers carry over to the few wholesale ones, whose level comes from their own
    history; a plain tree model can only predict levels it saw in its leaves, and under-predicted
    the large buyers at most validation cutoffs (docs/models.md, "Exposure offset").

    With a Tweedie objective of power ``p`` this is exactly the Tweedie deviance of the raw spend
    under a log link with the offset, so the loss is still the one on raw spend.

    Parameters
    ----------
    regressor : xgboost.XGBRegressor
        Unfitted model with a log-link objective (:data:`LOG_LINK_OBJECTIVES`).
    exposure : str, default "run_rate_adj_30d"
        Feature column holding the exposure.
    floor : float, default 1.0
        Lower bound of the exposure (customers with no spend in the last year get ``floor``).
    n_seeds : int, default 1
        Fit this many copies with seeds ``random_state + i`` and average them (variance
        reduction; each copy sees all rows).
    increasing : tuple of str, default ()
        Features in which ``f`` must be non-decreasing (XGBoost ``monotone_constraints``, set
        by name on each copy for the columns present; replaces any constraints of
        ``regressor``). With the exposure among them, the prediction ``exposure × exp(f(x))``
        is non-decreasing in each of them.
    """

    def __init__(
        self,
        regressor: Any,
        exposure: str = "run_rate_adj_30d",
        floor: float = 1.0,
        n_seeds: int = 1,
        increasing: tuple[str, ...] = (),
    ) -> None:
        self.regressor = regressor
        self.exposure = exposure
        self.floor = floor
        self.n_seeds = n_seeds
        self.increasing = increasing

    def _margin(self, X: Any) -> np.ndarray:
        if not isinstance(X, pd.DataFrame) or self.exposure not in X.columns:
            raise NotEnoughDataError(
                f"ExposureOffsetRegressor needs a DataFrame with the column {self.exposure!r}"
            )
        values = pd.to_numeric(X[self.exposure], errors="coerce").to_numpy(dtype=float)
        return np.log(np.clip(np.nan_to_num(values, nan=self.floor), self.floor, None))

    def fit(self, X: Any, y: Any) -> ExposureOffsetRegressor:
        """Fit ``n_seeds`` copies of the regressor with the log-exposure as base margin.

        Parameters
        ----------
        X : pandas.DataFrame
            Features, including the exposure column.
        y : array-like
            Non-negative target.

        Returns
        -------
        ExposureOffsetRegressor
            The fitted model.

        Raises
        ------
        ValueError
            When the regressor's objective has no log link.
        """
        objective = self.regressor.get_params().get("objective")
        if objective not in LOG_LINK_OBJECTIVES:
            raise ValueError(
                f"ExposureOffsetRegressor needs a log-link objective "
                f"({', '.join(LOG_LINK_OBJECTIVES)}), got {objective!r}"
            )
        if self.n_seeds < 1:
            raise ValueError(f"n_seeds must be >= 1, got {self.n_seeds}")
        margin = self._margin(X)
        seed = self.regressor.get_params().get("random_state") or 0
        base = clone(self.regressor)
        if self.increasing:
            base.set_params(
                monotone_constraints={c: 1 for c in self.increasing if c in X.columns} or None
            )
        self.estimators_ = [
            clone(base)
            .set_params(random_state=seed + i)
            .fit(X, np.asarray(y, dtype=float), base_margin=margin)
            for i in range(self.n_seeds)
        ]
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Return ``exposure × exp(f(x))``, averaged over the seeds.

        Parameters
        ----------
        X : pandas.DataFrame
            Features, including the exposure column.

        Returns
        -------
        numpy.ndarray
            Predicted spend (positive).

        Raises
        ------
        TrainingDivergedError
            When a prediction is not a finite number: the boosting ran away (seen with Tweedie
            power 1.9, learning rate 0.1 and ``min_child_weight`` 1 on a 28,000-customer store),
            or an exposure beyond float32 overflowed.
        """
        check_is_fitted(self)
        margin = self._margin(X)
        predicted = np.mean(
            [np.asarray(e.predict(X, base_margin=margin), dtype=float) for e in self.estimators_],
            axis=0,
        )
        bad = int(np.count_nonzero(~np.isfinite(predicted)))
        if bad:
            params = self.regressor.get_params()
            settings = ", ".join(
                f"{key} {params.get(key)}"
                for key in (
                    "tweedie_variance_power",
                    "learning_rate",
                    "max_depth",
                    "min_child_weight",
                )
            )
            raise TrainingDivergedError(
                f"the XGBoost learner gave {bad:,} of {predicted.size:,} predictions that are "
                f"not finite numbers ({settings}): a fit that ran away, or inputs far beyond "
                "the training data"
            )
        return predicted

    @property
    def feature_importances_(self) -> np.ndarray:
        """Mean of the copies' normalised feature importances."""
        check_is_fitted(self)
        return np.mean(
            [np.asarray(e.feature_importances_, dtype=float) for e in self.estimators_], axis=0
        )


#: The customer's spend *level* (run-rates, BG/NBD + Gamma-Gamma expected spend, recent and
#: same-season spend): both stacks are non-decreasing in each of these, the other features fixed
#: (monotone constraints on the forest and the XGBoost; docs/models.md, "Monotone in spend
#: levels").
LEVEL_FEATURES: tuple[str, ...] = (
    "run_rate_adj_30d",
    "bgnbd_gg_spend_30d",
    "spend_365d",
    "spend_180d",
    "spend_90d",
    "spend_30d",
    "spend_same_30d_last_year",
)

#: What the linear learners see: the levels of the two classical baselines, the last year's
#: spend (the run-rate's numerator) and the BG/NBD + Gamma-Gamma expected spend. With
#: non-negative coefficients they are a learned, regularised blend of the baselines, the part of
#: each stack that can extrapolate a large customer's level; the tree learners model everything
#: else. On all 34 features they ranked customers poorly (Gini 0.70-0.75 vs 0.79), and on all
#: seven level features the short-window spends took weight that did not carry over to later
#: windows (docs/models.md, "Linear learners on level features").
LINEAR_FEATURES: tuple[str, ...] = ("spend_365d", "bgnbd_gg_spend_30d")


def level_columns(X: Any) -> list[str]:
    """Return the :data:`LINEAR_FEATURES` of ``X`` (the linear learners' column selector).

    Parameters
    ----------
    X : pandas.DataFrame
        Model input.

    Returns
    -------
    list[str]
        The linear learners' features present in ``X``, in :data:`LINEAR_FEATURES` order.

    Raises
    ------
    NotEnoughDataError
        When ``X`` has none of them.
    """
    present = [c for c in LINEAR_FEATURES if c in getattr(X, "columns", ())]
    if not present:
        raise NotEnoughDataError(
            "the linear learners need at least one spend-level feature "
            f"({', '.join(LINEAR_FEATURES)}); none is in the model input"
        )
    return present


def _linear(model: Any) -> Pipeline:
    """Select the linear learners' features, impute (median), scale, then the linear learner.

    Every step is fitted inside each fold, so no statistic leaks across folds.
    """
    return Pipeline(
        [
            ("select", ColumnTransformer([("level", "passthrough", level_columns)])),
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("scale", StandardScaler()),
            ("model", model),
        ]
    )


def _ridge() -> Ridge:
    # positive=True: a customer's predicted spend never falls as one of their spend levels rises
    return Ridge(alpha=1000.0, positive=True)


def _lasso() -> Lasso:
    # precompute=True: coordinate descent on the small Gram matrix instead of the n x p data;
    # on 150k heavy-tailed rows this is the difference between minutes and ms. alpha 10 on
    # standardised LINEAR_FEATURES, non-negative coefficients (docs/models.md).
    return Lasso(alpha=10.0, positive=True, precompute=True, max_iter=5000, tol=1e-4)


class LevelMonotoneForest(RandomForestRegressor):
    """A ``RandomForestRegressor`` whose prediction never falls as a spend-level feature rises.

    scikit-learn's ``monotonic_cst`` is positional. This subclass derives it at fit time from
    the column names of ``X`` (+1 for each :data:`LEVEL_FEATURES` column, 0 elsewhere), so the
    same learner fits any feature subset, and restores the parameter afterwards (``clone`` and
    ``get_params`` see what was set). Fit it on a DataFrame; without column names no feature is
    constrained. Each tree enforces the constraint exactly, so their average does too.

    Why: a customer who spent more (same recency, rhythm, season, ...) should never be
    predicted to spend less. Alone, on the six validation cutoffs, this prior raised the forest's
    Gini at every cutoff (mean +0.011), mean R² +0.006 (docs/models.md, "Monotone in spend
    levels").
    """

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> LevelMonotoneForest:
        """Fit the forest with ``monotonic_cst`` derived from the columns of ``X``.

        Parameters
        ----------
        X : pandas.DataFrame
            Features (no missing values: impute first).
        y : array-like
            Target.
        sample_weight : array-like, optional
            Row weights.

        Returns
        -------
        LevelMonotoneForest
            The fitted forest.

        Raises
        ------
        ValueError
            When ``monotonic_cst`` was set by hand (the constraint comes from the columns).
        """
        if self.get_params()["monotonic_cst"] is not None:
            raise ValueError("LevelMonotoneForest sets monotonic_cst itself; leave it None")
        columns = list(getattr(X, "columns", ()))
        self.monotonic_cst = [1 if c in LEVEL_FEATURES else 0 for c in columns] or None
        try:
            return super().fit(X, y, sample_weight=sample_weight)
        finally:
            self.monotonic_cst = None


def _forest(random_state: int) -> Pipeline:
    # pandas output keeps the column names the forest's monotone constraint is derived from
    impute = SimpleImputer(strategy="median", keep_empty_features=True).set_output(
        transform="pandas"
    )
    return Pipeline(
        [
            ("impute", impute),
            (
                "model",
                LevelMonotoneForest(
                    n_estimators=100,
                    min_samples_leaf=10,
                    max_features=0.5,
                    max_samples=0.3,
                    n_jobs=N_JOBS,
                    random_state=random_state,
                ),
            ),
        ]
    )


def xgb_tweedie(random_state: int = 0, **overrides: Any) -> XGBRegressor:
    """Build the XGBoost Tweedie learner of Model 2 (without its offset), with optional overrides.

    Parameters
    ----------
    random_state : int, default 0
        Seed.
    **overrides : Any
        XGBoost parameters replacing the defaults (used by ``benchmarks/bench_learners.py``).

    Returns
    -------
    xgboost.XGBRegressor
        Unfitted model.
    """
    params: dict[str, Any] = {
        "n_estimators": 300,
        "learning_rate": 0.05,
        "max_depth": 4,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "min_child_weight": 5.0,
        "objective": "reg:tweedie",
        "tweedie_variance_power": 1.7,
        "n_jobs": N_JOBS,
        "random_state": random_state,
        "verbosity": 0,
    }
    return XGBRegressor(**{**params, **overrides})


def _xgb(random_state: int, n_seeds: int = 1) -> ExposureOffsetRegressor:
    # Tweedie (log link) with the run-rate as exposure offset, power 1.7: best mean R2 over the
    # six validation cutoffs 2011-05-09 ... 2011-10-09 (docs/models.md, "Exposure offset").
    # The search may still change the power and the tree shape, not the link.
    # Non-decreasing in the spend levels, like the forest and the linear learners, so the whole
    # stack is (docs/models.md, "Monotone in spend levels").
    return ExposureOffsetRegressor(
        xgb_tweedie(random_state),
        exposure="run_rate_adj_30d",
        n_seeds=n_seeds,
        increasing=LEVEL_FEATURES,
    )


def _clipped_stack(
    estimators: list[tuple[str, Any]], horizon_days: int, inner_splits: int
) -> NonNegativeRegressor:
    """Forward-stacked convex blend of ``estimators``, clipped at 0 (both models' shell)."""
    stack = TimeSeriesStackingRegressor(
        estimators=estimators,
        final_estimator=ConvexBlendRegressor(),
        cv=CutoffSplit(inner_splits, horizon_days),
    )
    return NonNegativeRegressor(stack)


def build_model1(
    horizon_days: int = 30, inner_splits: int = 2, random_state: int = 0
) -> NonNegativeRegressor:
    """Build Model 1: stacking of Random Forest + Ridge + Lasso, clipped at 0.

    Parameters
    ----------
    horizon_days : int, default 30
        Window length, used by the stack's time-aware inner folds.
    inner_splits : int, default 2
        Folds of the stack's inner :class:`CutoffSplit`.
    random_state : int, default 0
        Seed of the forest.

    Returns
    -------
    NonNegativeRegressor
        Unfitted ``NonNegativeRegressor(TimeSeriesStackingRegressor(...))``; hyperparameters are
        reachable as ``regressor__rf__model__max_depth`` etc.
    """
    return _clipped_stack(
        [
            ("rf", _forest(random_state)),
            ("ridge", _linear(_ridge())),
            ("lasso", _linear(_lasso())),
        ],
        horizon_days,
        inner_splits,
    )


def build_model2(
    horizon_days: int = 30, inner_splits: int = 2, random_state: int = 0
) -> NonNegativeRegressor:
    """Build Model 2: stacking of Random Forest + XGBoost + Ridge + Lasso, clipped at 0.

    Parameters
    ----------
    horizon_days : int, default 30
        Window length, used by the stack's time-aware inner folds.
    inner_splits : int, default 2
        Folds of the stack's inner :class:`CutoffSplit`.
    random_state : int, default 0
        Seed of the forest and of XGBoost.

    Returns
    -------
    NonNegativeRegressor
        Unfitted ``NonNegativeRegressor(TimeSeriesStackingRegressor(...))``.
    """
    return _clipped_stack(
        [
            ("rf", _forest(random_state)),
            ("xgb", _xgb(random_state)),
            ("ridge", _linear(_ridge())),
            ("lasso", _linear(_lasso())),
        ],
        horizon_days,
        inner_splits,
    )


def build_products_model(random_state: int = 0) -> NonNegativeRegressor:
    """Build the products model: gradient boosting with a Poisson loss on the distinct-count.

    Parameters
    ----------
    random_state : int, default 0
        Seed.

    Returns
    -------
    NonNegativeRegressor
        Unfitted count model (missing values handled natively).
    """
    return NonNegativeRegressor(
        HistGradientBoostingRegressor(
            loss="poisson",
            learning_rate=0.05,
            max_iter=300,
            max_leaf_nodes=31,
            min_samples_leaf=40,
            l2_regularization=1.0,
            early_stopping=False,
            random_state=random_state,
        )
    )
