"""Train Model 1, Model 2 and the products model on many cutoffs, and evaluate them honestly.

``train`` builds training rows from every cutoff whose target window ends on or before
``as_of`` (each customer with a purchase before the cutoff is a row, zero spenders included),
tunes both stacks with :class:`~sklearn.model_selection.RandomizedSearchCV` over forward, purged
:class:`~retail_clv.models.tuning.CutoffSplit` folds, fits the products count model, and, when
the data covers ``[as_of, as_of + horizon)``, evaluates models and baselines on that window.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import polars as pl
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.metrics import r2_score
from sklearn.model_selection import ParameterSampler, RandomizedSearchCV

from retail_clv.errors import (
    NotEnoughDataError,
    SettingError,
    TrainingDivergedError,
    count,
    days,
)
from retail_clv.features import FEATURE_COLUMNS, training_frame
from retail_clv.features.build import PURCHASE_COLUMNS, check_columns
from retail_clv.features.dates import wall_clock
from retail_clv.models import metrics as M
from retail_clv.models.baselines import (
    bgnbd_gg_baseline,
    last_window_products_baseline,
    mean_baseline,
    run_rate_baseline,
)
from retail_clv.models.estimators import (
    LINEAR_FEATURES,
    N_JOBS,
    build_model1,
    build_model2,
    build_products_model,
    member_fit_steps,
)
from retail_clv.models.tuning import CutoffSplit, cutoff_days

logger = logging.getLogger(__name__)

Budget = Literal["quick", "default"]
Progress = Callable[[float, str], None]

#: Search budgets. ``quick`` is the demo (<= 60 s for both models on Online Retail II, 2 cores);
#: ``default`` is the full search (<= 10 minutes).
BUDGETS: dict[str, dict[str, Any]] = {
    "quick": {
        "cutoff_step_days": 28,
        "max_train_cutoffs": None,
        "n_iter": 1,
        "outer_splits": 2,
        "inner_splits": 2,
        "rf_trees": 40,
        "xgb_trees": 300,
        "xgb_seeds": 2,
    },
    "default": {
        "cutoff_step_days": 28,
        "max_train_cutoffs": None,
        "n_iter": 3,
        "outer_splits": 2,
        "inner_splits": 2,
        "rf_trees": 60,
        "xgb_trees": 300,
        "xgb_seeds": 3,
    },
}

#: Random-search spaces (prefix ``regressor__`` reaches into the stack).
SEARCH_SPACE_MODEL1: dict[str, list[Any]] = {
    "regressor__rf__model__min_samples_leaf": [5, 10, 20, 40],
    "regressor__rf__model__max_features": [0.3, 0.5, 0.8],
    "regressor__rf__model__max_depth": [8, 12, None],
    "regressor__ridge__model__alpha": [10.0, 100.0, 1000.0, 10000.0],
    "regressor__lasso__model__alpha": [1.0, 3.0, 10.0, 30.0],
}
SEARCH_SPACE_MODEL2: dict[str, list[Any]] = {
    **SEARCH_SPACE_MODEL1,
    "regressor__xgb__regressor__max_depth": [3, 4, 5],
    "regressor__xgb__regressor__learning_rate": [0.03, 0.05, 0.1],
    "regressor__xgb__regressor__min_child_weight": [1.0, 5.0, 20.0],
    "regressor__xgb__regressor__subsample": [0.7, 0.8, 0.9],
    "regressor__xgb__regressor__tweedie_variance_power": [1.5, 1.7, 1.9],
}

MIN_HISTORY_DAYS = 60


@dataclass
class TrainResult:
    """Everything a training run produces (the registry saves it; the CLI/API read it)."""

    model1: Any
    model2: Any
    products_model: Any
    feature_names: list[str]
    as_of: dt.date
    horizon_days: int
    metrics: dict[str, Any]
    holdout: pl.DataFrame
    best_params: dict[str, Any] = field(default_factory=dict)
    cv_scores: dict[str, Any] = field(default_factory=dict)
    feature_importance: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    bgnbd_params: dict[str, float] | None = None


def _no_training_spend(purchases: pl.DataFrame, as_of: dt.date) -> str:
    """Why every training target is 0: the message for :class:`NotEnoughDataError`."""
    days = (
        purchases.filter(pl.col("invoice_date").dt.date() < as_of)
        .group_by("customer_id")
        .agg(pl.col("invoice_date").dt.date().n_unique().alias("days"))
    )
    repeat = int((days["days"] > 1).sum())
    if repeat == 0:
        return (
            f"no customer bought on more than one day before {as_of} "
            f"({count(days.height, 'customer')}, one purchase day each), so no training window "
            "holds a repeat purchase to learn from."
        )
    return (
        f"no purchase falls in any training window before {as_of} (only {repeat:,} of "
        f"{count(days.height, 'customer')} bought on more than one day)."
    )


def training_cutoffs(
    first_date: dt.date,
    as_of: dt.date,
    horizon_days: int,
    step_days: int,
    max_cutoffs: int | None = None,
    min_history_days: int = MIN_HISTORY_DAYS,
) -> list[dt.date]:
    """List training cutoffs whose windows end on or before ``as_of``, newest at ``as_of - h``.

    Parameters
    ----------
    first_date : datetime.date
        Date of the first purchase in the data.
    as_of : datetime.date
        Evaluation cutoff; every training window ``[c, c + horizon)`` ends on or before it.
    horizon_days : int
        Window length.
    step_days : int
        Spacing between cutoffs.
    max_cutoffs : int or None
        Keep only the most recent ones.
    min_history_days : int, default 60
        First cutoff at least this long after ``first_date``.

    Returns
    -------
    list[datetime.date]
        Sorted cutoffs.
    """
    last = as_of - dt.timedelta(days=horizon_days)
    earliest = first_date + dt.timedelta(days=min_history_days)
    out: list[dt.date] = []
    c = last
    while c >= earliest and (max_cutoffs is None or len(out) < max_cutoffs):
        out.append(c)
        c -= dt.timedelta(days=step_days)
    return sorted(out)


def history_needed(budget: Budget, horizon_days: int) -> tuple[int, int]:
    """Training cutoffs a budget needs, and the days of purchases before the as-of they take.

    The cutoffs are :data:`BUDGETS` ``cutoff_step_days`` apart, the first
    :data:`MIN_HISTORY_DAYS` after the first purchase, the last one horizon before the as-of
    date; their number is what the budget's time-aware folds need (:func:`min_training_cutoffs`).
    """
    cfg = BUDGETS[budget]
    floor = max(cfg["outer_splits"], cfg["inner_splits"]) + 2
    needed = max(floor, min_training_cutoffs(cfg, horizon_days))
    return needed, MIN_HISTORY_DAYS + (needed - 1) * cfg["cutoff_step_days"] + horizon_days


def longest_horizon(
    budget: Budget, horizon_days: int, first: dt.date, last_as_of: Callable[[int], dt.date]
) -> int | None:
    """Return the longest horizon below ``horizon_days`` that trains on this history, if any.

    ``last_as_of(h)`` is the latest as-of (or backtest cutoff) date a horizon of ``h`` days
    allows; the history from ``first`` to it must hold what :func:`history_needed` asks.
    """
    for h in range(horizon_days - 1, 0, -1):
        if (last_as_of(h) - first).days >= history_needed(budget, h)[1]:
            return h
    return None


def check_max_train_cutoffs(
    cap: int | None,
    budget: Budget,
    horizon_days: int,
    name: str = "max_train_cutoffs",
    remedy: str = "Allow {needed} or more, or leave it unset to train on all history.",
) -> None:
    """Refuse a cap on the training cutoffs below what the budget's time-aware folds need.

    Parameters
    ----------
    cap : int or None
        At most this many training cutoffs, the newest; ``None`` keeps all history.
    budget : {"quick", "default"}
        Search budget.
    horizon_days : int
        Window length.
    name : str, default "max_train_cutoffs"
        How the caller's user sets the cap (``--max-train-cutoffs``, ``CLV_MAX_TRAIN_CUTOFFS``).
    remedy : str
        What that user can do, with ``{needed}`` for the number of cutoffs needed.

    Raises
    ------
    SettingError
        When ``cap`` is below :func:`history_needed`'s number of cutoffs.
    """
    if cap is None:
        return
    needed = history_needed(budget, horizon_days)[0]
    if cap < needed:
        raise SettingError(
            f"{name} {cap} is too few for the {budget} budget with a horizon of "
            f"{days(horizon_days)}: its time-aware folds need at least {needed} training cutoffs "
            f"({BUDGETS[budget]['cutoff_step_days']} days apart). " + remedy.format(needed=needed)
        )


def min_training_cutoffs(cfg: dict[str, Any], horizon_days: int) -> int:
    """Return the fewest training cutoffs with which every time-aware fold of a budget exists.

    The folds are purged (a training window must end before the test cutoffs), so a horizon
    longer than the cutoff step needs several cutoffs of history per fold. Rather than a
    formula, the exact splits are tried on evenly spaced cutoffs: the outer search folds
    (budgets with a search) and, in each of them and on all cutoffs, the stack's own forward
    folds (with its fallback to fewer folds).

    Parameters
    ----------
    cfg : dict
        A :data:`BUDGETS` entry.
    horizon_days : int
        Window length.

    Returns
    -------
    int
        The minimum number of cutoffs.
    """
    from retail_clv.models.estimators import TimeSeriesStackingRegressor

    step = int(cfg["cutoff_step_days"])
    inner = CutoffSplit(cfg["inner_splits"], horizon_days)

    def feasible(n: int) -> bool:
        days = np.arange(n, dtype=np.int64) * step
        try:
            subsets = [days]
            if cfg["n_iter"] > 1:
                outer = CutoffSplit(cfg["outer_splits"], horizon_days)
                subsets += [days[t] for t, _ in outer.split(np.zeros(n), groups=days)]
            for subset in subsets:
                frame = pd.DataFrame(index=pd.Index(subset))
                TimeSeriesStackingRegressor._forward_splits(inner, frame, np.zeros(subset.size))
        except NotEnoughDataError:
            return False
        return True

    n = 2
    while not feasible(n):
        n += 1
    return n


def unseen_season_note(
    train_cutoffs: Sequence[dt.date], as_of: dt.date, horizon_days: int
) -> str | None:
    """Say when most of the window to predict is a time of year the training history never held.

    The training history spans the first training cutoff to the end of the last training
    window. When it is shorter than a year, the window ``[as_of, as_of + horizon)`` can fall at
    a time of year the models never saw, whose seasonal effects they cannot learn. Days are
    compared by calendar day of the year (29 February counts as 28 February). The span is used,
    not the windows themselves: windows shorter than the cutoff step leave gaps every year.

    Parameters
    ----------
    train_cutoffs : Sequence[datetime.date]
        The run's training cutoffs; each window is ``[c, c + horizon)``.
    as_of : datetime.date
        Start of the predicted window.
    horizon_days : int
        Window length.

    Returns
    -------
    str or None
        A sentence when more than half of the window's days lie at a time of year outside the
        training history, else ``None``.
    """
    if not train_cutoffs:
        return None
    first = min(train_cutoffs)
    span = (max(train_cutoffs) - first).days + horizon_days
    if span >= 366:
        return None  # a year or more of history holds every day of the year

    def day_of_year(day: dt.date) -> tuple[int, int]:
        return (day.month, min(day.day, 28) if day.month == 2 else day.day)

    seen = {day_of_year(first + dt.timedelta(days=i)) for i in range(span)}
    window = [as_of + dt.timedelta(days=i) for i in range(horizon_days)]
    unseen = [d for d in window if day_of_year(d) not in seen]
    if 2 * len(unseen) <= len(window):
        return None
    end = as_of + dt.timedelta(days=horizon_days)
    last = first + dt.timedelta(days=span - 1)
    return (
        f"{len(unseen)} of the {horizon_days} days of [{as_of}, {end}) fall at a time of year "
        f"the training history ({first} to {last}, less than a year) "
        "never held: seasonal effects of that period, such as a holiday closure or peak, "
        "cannot be learned, and the predictions can be far off"
    )


def spend_levels(features: pl.DataFrame) -> dict[str, float | int]:
    """Describe how much a population's customers spend, to compare stores or dates.

    Counts the customers active in the year before the cutoff (``spend_365d`` > 0) and takes
    the median and 90th percentile of their yearly spend. A run records these for the
    population at its as-of date; scoring compares them with the scored population's
    (``models.scoring.scale_note``).

    Parameters
    ----------
    features : polars.DataFrame
        ``customer_features`` rows of one cutoff (at least ``spend_365d``).

    Returns
    -------
    dict
        ``customers``, ``active_customers``, ``spend_365d_median``, ``spend_365d_p90``
        (the last two 0.0 when nobody was active).
    """
    spend = features.get_column("spend_365d").fill_null(0.0).cast(pl.Float64).to_numpy()
    active = spend[spend > 0]
    return {
        "customers": features.height,
        "active_customers": int(active.size),
        "spend_365d_median": float(np.median(active)) if active.size else 0.0,
        "spend_365d_p90": float(np.quantile(active, 0.9)) if active.size else 0.0,
    }


#: Days without any purchase, before the as-of date, from which a run warns of a hole in the data.
GAP_DAYS = 60


def data_gap_note(sale_times: pl.Series, as_of: dt.date) -> str | None:
    """Say when the history before ``as_of`` has a long stretch without any purchase.

    A shop closed for months, or a missing export, leaves training windows in which nobody buys:
    the models learn those zeros as behaviour. The longest stretch between two purchase days
    of more than :data:`GAP_DAYS` days is named (Online Retail II's longest, the Christmas
    closure from 2009-12-23 to 2010-01-04, is 12 days).

    Parameters
    ----------
    sale_times : polars.Series
        ``invoice_date`` of every purchase line.
    as_of : datetime.date
        The run's as-of date (only the history before it is looked at).

    Returns
    -------
    str or None
        A sentence naming the longest gap, or ``None``.
    """
    days = sale_times.dt.date().unique().sort()
    days = days.filter(days < as_of)
    if days.len() < 2:
        return None
    gaps = days.diff().dt.total_days()
    longest = int(gaps.arg_max() or 0)
    length = int(gaps[longest] or 0)
    if length <= GAP_DAYS:
        return None
    before, after = days[longest - 1], days[longest]
    return (
        f"no purchase at all between {before} and {after} ({length} days): training windows "
        "in that stretch teach the models that nobody buys. If the shop was not closed then, "
        "a file is missing from the store (clv ingest-runs or GET /ingest-runs list what is "
        "there)"
    )


#: One customer holding more of the held-out window's spend variance than this gets a warning.
DOMINANT_SHARE = 0.5


def variance_concentration(actual: np.ndarray) -> dict[str, float]:
    """Share of the held-out window's spend variance held by its largest one and five customers.

    R² divides the squared errors by ``Σ (y − ȳ)²``; when one customer's term is most of that
    sum, R² mostly measures how that customer was predicted. On Online Retail II the largest
    customer holds 22–49% at the monthly protocol cutoffs and the five largest 64–86%.

    Parameters
    ----------
    actual : numpy.ndarray
        Spend of every customer of the population in the window.

    Returns
    -------
    dict
        ``top1`` and ``top5`` shares (0 when everybody spent the same).
    """
    terms = np.sort((actual - actual.mean()) ** 2)[::-1]
    total = float(terms.sum())
    if total <= 0:
        return {"top1": 0.0, "top5": 0.0}
    return {"top1": float(terms[0] / total), "top5": float(terms[:5].sum() / total)}


def dominant_customer_note(
    actual: np.ndarray, customer_ids: Sequence[str], as_of: dt.date, horizon_days: int
) -> str | None:
    """Say when one customer holds most of the held-out window's spend variance.

    Returns
    -------
    str or None
        A sentence when the largest customer's share exceeds :data:`DOMINANT_SHARE`.
    """
    shares = variance_concentration(actual)
    if shares["top1"] <= DOMINANT_SHARE:
        return None
    who = customer_ids[int(np.argmax((actual - actual.mean()) ** 2))]
    return (
        f"customer {who} holds {shares['top1']:.0%} of the spend variance of the held-out "
        f"window [{as_of}, {as_of + dt.timedelta(days=horizon_days)}) (the five largest "
        f"{shares['top5']:.0%}): R² there mostly measures how that one customer was predicted, "
        "so read it beside Gini, Spearman and MAE"
    )


#: A last day with fewer lines than this share of the usual day looks partly exported.
PARTIAL_DAY_SHARE = 0.5


def partial_last_day_note(sale_times: pl.Series, as_of: dt.date, horizon_days: int) -> str | None:
    """Say when the held-out window ends on a last day of the data that looks partly exported.

    A window ``[as_of, as_of + horizon)`` counts as covered when the data reaches its last day.
    Whether that day's sales are all there, the data only hints at: a last day with fewer than
    :data:`PARTIAL_DAY_SHARE` of the median lines of the sale days in the four weeks before it
    is taken as cut off (Online Retail II stops at 12:50 on 2011-12-09, with 611 lines against
    about 2,100-2,500 on the days before). The protocol's windows end the day before.

    Parameters
    ----------
    sale_times : polars.Series
        ``invoice_date`` of every purchase line.
    as_of : datetime.date
        Start of the held-out window.
    horizon_days : int
        Window length.

    Returns
    -------
    str or None
        A sentence when the window's last day is the data's last day and looks cut off.
    """
    days = sale_times.dt.date()
    last_day = as_of + dt.timedelta(days=horizon_days - 1)
    if days.max() != last_day:
        return None
    on_last = int((days == last_day).sum())
    before = days.filter((days < last_day) & (days >= last_day - dt.timedelta(days=28)))
    if before.len() == 0:
        return None
    usual = float(np.median(before.value_counts().get_column("count").to_numpy()))
    if on_last >= PARTIAL_DAY_SHARE * usual:
        return None
    last_sale = sale_times.max()
    assert isinstance(last_sale, dt.datetime)
    return (
        f"the held-out window [{as_of}, {as_of + dt.timedelta(days=horizon_days)}) ends on the "
        f"last day of the data, {last_day}, which holds {on_last:,} purchase lines (the last at "
        f"{last_sale:%H:%M}) against a median of {usual:,.0f} on the sale days of the four "
        "weeks before: if that day was exported only in part, the actual spend there is "
        "understated and the metrics with it; an as-of one day earlier "
        f"({as_of - dt.timedelta(days=1)}) avoids it"
    )


def same_predictions_note(preds: pl.DataFrame, model1: Any, model2: Any) -> str | None:
    """Say why Model 1 and Model 2 agree on every customer, when they do.

    It happens when both stacks' blends put all their weight on the learners they share, e.g. the
    Ridge on small or short stores: the two models are then one model, and the user should know.
    """
    p1 = preds["predicted_spend_30d_model1"].to_numpy()
    p2 = preds["predicted_spend_30d_model2"].to_numpy()
    if len(p1) == 0 or not np.allclose(p1, p2, rtol=1e-9, atol=1e-9):
        return None

    def kept(model: Any) -> str:
        blend = getattr(getattr(model, "regressor_", None), "blend_weights", None)
        if blend is None:
            return "no blend"
        weights = blend()
        return ", ".join(f"{k} {v:.2f}" for k, v in weights.items() if k != "intercept" and v > 0)

    return (
        "Model 1 and Model 2 give the same predictions for every customer: both blends put all "
        f"their weight on the learners the two stacks share (Model 1: {kept(model1)}; Model 2: "
        f"{kept(model2)}), so on this data Model 2's XGBoost did not help on the forward folds"
    )


_BASELINE_NAMES = {
    "mean": "the train mean",
    "run_rate": "the run-rate",
    "bgnbd_gg": "BG/NBD + Gamma-Gamma",
}


#: Below this many customers in the held-out window a run says its numbers are rough.
SMALL_POPULATION = 100


def short_run_rate_note(first: dt.date, as_of: dt.date, ratio: float) -> str | None:
    """Say so when the run-rate baseline divides less than a year of spend by 365 days.

    The baseline is the issue's naive run-rate, ``spend_365d × horizon / 365``: on a shop with
    less than a year of purchases before the as-of date it spreads a shorter history over a
    whole year, so it tends to run low (how low depends on when customers joined; ``ratio``,
    the sum of its predictions over the window's actual spend, says how low it ran), and a
    model's lead over it is partly that scaling. The models themselves see the
    tenure-adjusted ``run_rate_adj_30d``.
    """
    history = (as_of - first).days
    if history >= 365 or ratio >= 1:  # a year of history, or it did not run low here
        return None
    return (
        f"the run-rate baseline divides the last 365 days' spend by 365, and the store holds "
        f"only {history} days of purchases before {as_of}: it spreads them over a whole year, "
        f"and its predictions sum to {ratio:.2f} of the window's actual spend, so a model's "
        "lead over it is partly that scaling"
    )


def small_population_note(n_customers: int) -> str | None:
    """Say so when the held-out window has too few customers for its metrics to mean much.

    With a handful of customers one of them decides R², Gini and top-10% capture (a 5-customer
    shop read Gini 1.000 and R² −24), and the forests' bootstrap samples are tiny.
    """
    if n_customers >= SMALL_POPULATION:
        return None
    skipped = (
        f"; below {M.MIN_BOOTSTRAP_CUSTOMERS} the model − baseline intervals are not computed"
        if n_customers < M.MIN_BOOTSTRAP_CUSTOMERS
        else ""
    )
    return (
        f"only {count(n_customers, 'customer')} in the held-out window (fewer than "
        f"{SMALL_POPULATION}): one customer can decide R², Gini and top-10% capture at this "
        "size, so read the held-out numbers and the models as rough; more customers or more "
        f"history make them steadier{skipped}"
    )


def behind_baselines_notes(metrics: dict[str, Any]) -> list[str]:
    """Say which models are clearly behind a baseline on the held-out window (R², Gini).

    Clearly behind: more than :data:`BEHIND_MARGIN` below the train-mean baseline's R² (worse
    than predicting one number for everyone), or below the run-rate's or BG/NBD's with the 90%
    bootstrap interval of the gap entirely below zero; for Gini (the ranking), the same interval
    rule with the gap also more than :data:`BEHIND_MARGIN` (a healthy demo run was 0.003 behind
    BG/NBD with an interval just below zero), and a Gini of zero or less (no better than
    chance; a model predicting one number for everyone ranks nobody). The products model
    likewise, more than :data:`BEHIND_MARGIN` below its train-mean or last-window baseline's R²
    (it has no bootstrap interval). Runs without held-out metrics give no note.
    """
    notes = []
    models = metrics.get("models") or {}
    baselines = metrics.get("baselines") or {}
    gaps = metrics.get("vs_baselines") or {}
    for key, label in (("model1", "Model 1"), ("model2", "Model 2")):
        r2 = (models.get(key) or {}).get("r2")
        if r2 is None or not np.isfinite(r2):
            continue
        behind = []
        for name, base_label in _BASELINE_NAMES.items():
            base_r2 = (baselines.get(name) or {}).get("r2")
            if base_r2 is None or not np.isfinite(base_r2) or r2 >= base_r2:
                continue
            gap = ((gaps.get(key) or {}).get(name) or {}).get("r2") or {}
            if name == "mean":
                if r2 < base_r2 - BEHIND_MARGIN:
                    behind.append(f"{base_label}'s {base_r2:.3f}")
            elif gap.get("high") is not None and gap["high"] < 0:
                behind.append(f"{base_label}'s {base_r2:.3f}")
        if behind:
            notes.append(
                f"{label} is clearly behind simple baselines on the held-out window: R² "
                f"{r2:.3f} against {' and '.join(behind)}. On this data its spend predictions "
                "are less accurate than those baselines'; compare them in the model card (the "
                "dashboard's Models page) before relying on them"
            )
    for key, label in (("model1", "Model 1"), ("model2", "Model 2")):
        notes.extend(_ranking_notes(label, models.get(key) or {}, baselines, gaps.get(key) or {}))
    notes.extend(_products_behind_notes(metrics))
    return notes


def _ranking_notes(
    label: str, values: dict[str, Any], baselines: dict[str, Any], gaps: dict[str, Any]
) -> list[str]:
    """Return a model's Gini part of :func:`behind_baselines_notes` (at most one note)."""
    gini = values.get("gini")
    if gini is None or not np.isfinite(gini):
        return []
    if gini <= 0:
        spearman = values.get("spearman")
        # a constant prediction has no rank correlation (NaN, null in JSON) and Gini 0
        constant = spearman is None or not np.isfinite(spearman)
        what = (
            "it predicts the same spend for every customer"
            if constant
            else "its order of the customers is no better than chance"
        )
        return [
            f"{label} does not rank customers on the held-out window: Gini {gini:.3f}, {what}. "
            "On this data it cannot say who will spend more; do not pick customers by it"
        ]
    behind = [
        f"{base_label}'s {(baselines.get(name) or {}).get('gini', float('nan')):.3f}"
        for name, base_label in _BASELINE_NAMES.items()
        if name != "mean"  # one number for everyone: Gini 0, the case above
        and (gap := ((gaps.get(name) or {}).get("gini") or {})).get("high") is not None
        and gap["high"] < 0
        and gap.get("delta", 0.0) < -BEHIND_MARGIN  # a thousandth of Gini is no news either
    ]
    if not behind:
        return []
    return [
        f"{label} ranks customers clearly worse than simple baselines on the held-out window: "
        f"Gini {gini:.3f} against {' and '.join(behind)}. On this data those baselines order "
        "customers by coming spend better; compare them in the model card before picking "
        "customers by this model"
    ]


#: How far below a baseline a model must be for :func:`behind_baselines_notes`: on R² where
#: there is no bootstrap interval (the train mean, the products model's baselines), and on Gini
#: beside the interval (a gap of a few thousandths can have one just below zero): a thousandth
#: is no news.
BEHIND_MARGIN = 0.01


def _products_behind_notes(metrics: dict[str, Any]) -> list[str]:
    """Return the products model's part of :func:`behind_baselines_notes`."""
    r2 = ((metrics.get("models") or {}).get("products") or {}).get("r2")
    if r2 is None or not np.isfinite(r2):
        return []
    baselines = metrics.get("products_baselines") or {}
    behind = [
        f"the {label} baseline's {base_r2:.3f}"
        for name, label in (("mean", "train mean"), ("last_window", "last-window"))
        if (base_r2 := (baselines.get(name) or {}).get("r2")) is not None
        and np.isfinite(base_r2)
        and r2 < base_r2 - BEHIND_MARGIN
    ]
    if not behind:
        return []
    return [
        f"The products model is behind simple baselines on the held-out window: R² {r2:.3f} "
        f"against {' and '.join(behind)}. On this data its predicted numbers of products are "
        "less accurate than those baselines'; compare them in the model card before relying "
        "on them"
    ]


def model_input(frame: pl.DataFrame, feature_names: Sequence[str]) -> pd.DataFrame:
    """Model input: the feature columns, indexed by the cutoff (day number) for the splitters."""
    X = frame.select(list(feature_names)).to_pandas()
    X.index = pd.Index(cutoff_days(frame["cutoff"].to_numpy()), name="cutoff_day")
    return X


def predict_frame(
    model1: Any,
    model2: Any,
    products_model: Any,
    features: pl.DataFrame,
    feature_names: Sequence[str],
) -> pl.DataFrame:
    """Predict spend (both models) and distinct products for every row of a feature frame.

    Parameters
    ----------
    model1, model2, products_model : estimator
        Fitted models taking a pandas DataFrame with columns ``feature_names``.
    features : pl.DataFrame
        Output of :func:`retail_clv.features.customer_features` (one cutoff).
    feature_names : Sequence[str]
        Model inputs, in training order.

    Returns
    -------
    pl.DataFrame
        ``customer_id, predicted_spend_30d_model1, predicted_spend_30d_model2,
        predicted_products_30d`` (never negative).
    """
    missing = [c for c in feature_names if c not in features.columns]
    if missing:
        raise NotEnoughDataError(f"feature frame lacks column(s): {', '.join(missing)}")
    X = features.select(list(feature_names)).to_pandas()

    def _pred(model: Any) -> np.ndarray:
        if X.shape[0] == 0:
            return np.zeros(0)
        return np.clip(np.asarray(model.predict(X), dtype=float), 0.0, None)

    return pl.DataFrame(
        {
            "customer_id": features["customer_id"].cast(pl.Utf8),
            "predicted_spend_30d_model1": _pred(model1),
            "predicted_spend_30d_model2": _pred(model2),
            "predicted_products_30d": _pred(products_model),
        }
    )


def failed_search_note(label: str, scores: dict[str, Any]) -> str | None:
    """Say which hyper-parameter candidates a model's search skipped because they diverged.

    Parameters
    ----------
    label : str
        The model's name in the message ("Model 2").
    scores : dict
        The search record ``_fit_search`` returns (``failed_candidates``, ``n_candidates``,
        ``failure``).

    Returns
    -------
    str or None
        The warning, or None when no candidate failed (or no search ran).
    """
    failed = scores.get("failed_candidates") or []
    if not failed:
        return None
    listed = "; ".join(_listed(params) for params in failed)
    return (
        f"{label}'s hyper-parameter search skipped {len(failed)} of "
        f"{scores.get('n_candidates', '?')} candidates whose predictions on a forward fold were "
        f"not finite numbers ({scores.get('failure') or 'no reason recorded'}): {listed}. The "
        "best of the others was kept"
    )


def _listed(params: dict[str, Any]) -> str:
    """``xgb.learning_rate 0.1, ridge.alpha 10`` (one candidate, for messages)."""
    return ", ".join(f"{_short_name(key)} {value}" for key, value in params.items())


def _short_name(key: str) -> str:
    """``regressor__xgb__regressor__learning_rate`` -> ``xgb.learning_rate`` (for messages)."""
    return ".".join(part for part in key.split("__") if part not in ("regressor", "model"))


class _DivergenceGuard(RegressorMixin, BaseEstimator):
    """Search-time wrapper: a fit or prediction that diverges is remembered, not raised.

    :class:`TrainingDivergedError` (an XGBoost that ran away, raised when it predicts, also
    inside a stack's own fit) marks the candidate ``diverged_`` and its predictions NaN, which
    :class:`_R2UnlessDiverged` scores NaN; every other error still ends the search, as before.

    Parameters
    ----------
    estimator : estimator
        The model whose hyper-parameters are searched (``estimator__...`` in the space).
    """

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator

    def fit(self, X: Any, y: Any) -> _DivergenceGuard:
        """Fit a clone of the estimator, or remember why it diverged."""
        self.diverged_: str | None = None
        try:
            self.estimator_ = clone(self.estimator).fit(X, y)
        except TrainingDivergedError as exc:
            self.estimator_ = None
            self.diverged_ = str(exc)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predict, or return NaN for every row when the fit or this prediction diverged."""
        if self.estimator_ is not None and self.diverged_ is None:
            try:
                return np.asarray(self.estimator_.predict(X), dtype=float)
            except TrainingDivergedError as exc:
                self.diverged_ = str(exc)
        return np.full(len(X), np.nan)


class _R2UnlessDiverged:
    """R² scorer that scores a diverged candidate NaN and keeps the first reason (``first_reason``).

    The search calls it once after each candidate's fit on a fold (one fit at a time, in this
    process), so ``on_scored(n)``, when given, is told how many fold fits are done: the
    progress bar moves during a search of several minutes.
    """

    def __init__(self, on_scored: Callable[[int], None] | None = None) -> None:
        self.first_reason: str | None = None  # the messages name the first divergence only
        self.scored = 0
        self.on_scored = on_scored

    def __call__(self, estimator: _DivergenceGuard, X: Any, y: Any) -> float:
        predicted = estimator.predict(X)
        self.scored += 1
        if self.on_scored is not None:
            self.on_scored(self.scored)
        if estimator.diverged_ is not None:
            self.first_reason = self.first_reason or estimator.diverged_
            return float("nan")
        return float(r2_score(y, predicted))


class _AllCandidatesFailed(Exception):
    """Raised by :func:`_best_finite` when no search candidate has a finite score."""


def _best_finite(cv_results: dict[str, Any]) -> int:
    """Return the index of the best search candidate among those with a finite mean score.

    ``RandomizedSearchCV``'s own choice would refit a failed candidate when every score is NaN.
    """
    means = np.asarray(cv_results["mean_test_score"], dtype=float)
    if not np.isfinite(means).any():
        raise _AllCandidatesFailed
    return int(np.nanargmax(np.where(np.isfinite(means), means, np.nan)))


def _plain_params(params: dict[str, Any]) -> dict[str, Any]:
    """Return hyper-parameters as JSON values (numbers, text, None; others as text)."""
    return {
        k: (v if isinstance(v, int | float | str) or v is None else str(v))
        for k, v in params.items()
    }


def _finite_or_none(value: Any) -> float | None:
    """Return the value as a float, or None where it is NaN or infinite (strict JSON)."""
    number = float(value)
    return number if np.isfinite(number) else None


def _fit_search(
    name: str,
    estimator: Any,
    space: dict[str, list[Any]],
    X: pd.DataFrame,
    y: np.ndarray,
    cfg: dict[str, Any],
    horizon_days: int,
    seed: int,
    progress: Progress | None = None,
    span: tuple[float, float] = (0.0, 1.0),
) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """Run the randomized search over forward folds (or a plain fit when n_iter <= 1).

    A candidate that diverges on a fold (:class:`TrainingDivergedError`: predictions that are
    not finite numbers) scores NaN and is skipped: the best of the others is kept, and
    ``failed_candidates`` and ``failure`` of the returned scores say which and why. Any other
    error ends the search, as it always did. When every candidate diverges, or the chosen one
    diverges when refitted on all rows, :class:`TrainingDivergedError` says so in one line.
    ``progress(fraction, message)``, when given, is called before each fold fit of the search
    and before the refit, with fractions inside ``span``.
    """
    start = time.perf_counter()
    quick_advice = "train with --budget quick, whose validated settings need no search"
    if cfg["n_iter"] <= 1:
        try:
            fitted = estimator.fit(X, y)
        except TrainingDivergedError as exc:
            raise TrainingDivergedError(f"{name} could not be trained: {exc}") from None
        return fitted, {}, {"search": "none (budget)", "seconds": time.perf_counter() - start}
    lo, hi = span
    # what each step of the bar stands for (a space smaller than n_iter is searched whole)
    fold_fits = len(ParameterSampler(space, cfg["n_iter"], random_state=seed)) * cfg["outer_splits"]

    def fitting(done: int) -> None:  # the next fold fit starts, ``done`` are scored
        if progress is not None and done < fold_fits:
            progress(
                lo + (hi - lo) * done / (fold_fits + 1),
                f"tuning {name} · search fit {done + 1} of {fold_fits}",
            )

    def refit(cv_results: dict[str, Any]) -> int:
        best = _best_finite(cv_results)
        if progress is not None:
            progress(
                lo + (hi - lo) * fold_fits / (fold_fits + 1),
                f"tuning {name} · refitting the best candidate on all training rows",
            )
        return best

    scorer = _R2UnlessDiverged(fitting)
    fitting(0)
    search = RandomizedSearchCV(
        _DivergenceGuard(estimator),
        {f"estimator__{key}": values for key, values in space.items()},
        n_iter=cfg["n_iter"],
        scoring=scorer,
        cv=CutoffSplit(cfg["outer_splits"], horizon_days),
        refit=refit,
        random_state=seed,
        n_jobs=1,
        error_score="raise",
    )
    try:
        search.fit(X, y, groups=X.index.to_numpy())
    except _AllCandidatesFailed:
        raise TrainingDivergedError(
            f"every candidate of {name}'s hyper-parameter search diverged on the forward folds "
            f"({scorer.first_reason or 'no reason recorded'}); {quick_advice}"
        ) from None
    if search.best_estimator_.diverged_ is not None:
        raise TrainingDivergedError(
            f"{name}'s chosen hyper-parameters diverged when refitted on all training rows "
            f"({search.best_estimator_.diverged_}); {quick_advice}"
        )
    res = search.cv_results_
    params = [
        _plain_params({key.removeprefix("estimator__"): v for key, v in candidate.items()})
        for candidate in res["params"]
    ]
    failed = [
        candidate
        for candidate, score in zip(params, res["mean_test_score"], strict=True)
        if not np.isfinite(score)
    ]
    if failed:
        logger.warning(
            "%s: %d of %d search candidates diverged on the forward folds and were skipped: "
            "%s (first: %s)",
            name,
            len(failed),
            len(params),
            "; ".join(_listed(candidate) for candidate in failed),
            scorer.first_reason or "no reason recorded",
        )
    scores = {
        "search": "RandomizedSearchCV over CutoffSplit",
        "best_score_r2": float(res["mean_test_score"][search.best_index_]),
        "mean_test_r2": [_finite_or_none(v) for v in res["mean_test_score"]],
        "std_test_r2": [_finite_or_none(v) for v in res["std_test_score"]],
        "failed_candidates": failed,
        "failure": scorer.first_reason,
        "n_candidates": len(params),
        "seconds": time.perf_counter() - start,
    }
    best = params[search.best_index_]
    logger.info("%s: best CV R2 %.3f with %s", name, scores["best_score_r2"], best)
    return search.best_estimator_.estimator_, best, scores


def _set_sizes(model: Any, cfg: dict[str, Any], n_jobs: int = N_JOBS) -> Any:
    params = {
        "regressor__rf__model__n_estimators": cfg["rf_trees"],
        "regressor__rf__model__n_jobs": n_jobs,
    }
    if "xgb" in dict(model.regressor.estimators):
        params["regressor__xgb__regressor__n_estimators"] = cfg["xgb_trees"]
        params["regressor__xgb__regressor__n_jobs"] = n_jobs
        params["regressor__xgb__n_seeds"] = cfg["xgb_seeds"]
    return model.set_params(**params)


def _count_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """MAE, Spearman and R² of a products (count) prediction."""
    return {
        "mae": M.mae(actual, predicted),
        "spearman": M.spearman(actual, predicted),
        "r2": M.r2(actual, predicted),
    }


def _feature_importance(model2: Any, feature_names: Sequence[str]) -> list[dict[str, Any]]:
    """Impurity importance of Model 2's forest and XGBoost gain share, averaged."""
    stack = model2.regressor_
    parts = []
    rf = stack.named_estimators_["rf"].named_steps["model"]
    parts.append(np.asarray(rf.feature_importances_, dtype=float))
    if "xgb" in stack.named_estimators_:
        parts.append(np.asarray(stack.named_estimators_["xgb"].feature_importances_, dtype=float))
    imp = np.mean([p / p.sum() if p.sum() > 0 else p for p in parts], axis=0)
    order = np.argsort(-imp)
    return [{"feature": feature_names[i], "importance": float(imp[i])} for i in order]


def train(
    purchases: pl.DataFrame,
    cancellations: pl.DataFrame | None,
    as_of: dt.date,
    horizon_days: int = 30,
    budget: Budget = "default",
    progress: Progress | None = None,
    random_state: int = 0,
    n_jobs: int = N_JOBS,
    date_name: str = "as-of date",
    max_train_cutoffs: int | None = None,
) -> TrainResult:
    """Fit Model 1, Model 2 and the products model; evaluate them and the baselines.

    Parameters
    ----------
    purchases : pl.DataFrame
        Valid purchase lines (``retail_clv.store.queries.read_purchases`` columns).
    cancellations : pl.DataFrame or None
        Cancellation lines (``read_cancellations`` columns).
    as_of : datetime.date
        Training windows end on or before this date; evaluation window ``[as_of, as_of + h)``.
    horizon_days : int, default 30
        Window length.
    budget : {"quick", "default"}, default "default"
        Search budget (see :data:`BUDGETS`).
    progress : callable, optional
        Called as ``progress(fraction, message)`` between steps.
    random_state : int, default 0
        Seed of the learners and of the search.
    n_jobs : int, default 2
        CPU threads of the forest and XGBoost (``CLV_N_JOBS`` in the command line and API);
        results do not depend on it beyond floating-point rounding.
    date_name : str, default "as-of date"
        How the caller's user names ``as_of`` in messages (``clv backtest`` says "cutoff").
    max_train_cutoffs : int, optional
        Train on at most this many cutoffs, the newest (``--max-train-cutoffs``,
        ``CLV_MAX_TRAIN_CUTOFFS``). Training time and memory grow with customers × cutoffs;
        the default, all history, is what validated best on Online Retail II. Features still
        use all purchases before each kept cutoff.

    Returns
    -------
    TrainResult
        Fitted models, metrics (empty ``models``/``baselines`` when the window is not covered by
        the data; ``vs_baselines`` holds each model's R² and Gini gap to the run-rate and
        BG/NBD baselines with 90% customer-bootstrap intervals), holdout predictions, search
        results, importances and the run config.

    Raises
    ------
    NotEnoughDataError
        When the history before ``as_of`` is too short to build training cutoffs.
    SettingError
        When ``max_train_cutoffs`` is below what the budget's folds need.
    """
    if budget not in BUDGETS:
        raise ValueError(f"unknown budget {budget!r}; use one of {', '.join(BUDGETS)}")
    check_max_train_cutoffs(max_train_cutoffs, budget, horizon_days)
    check_columns(purchases, PURCHASE_COLUMNS, "purchases")
    if purchases.height == 0:
        raise NotEnoughDataError("no purchase to train on")
    purchases = wall_clock(purchases)  # local time, as the store keeps it
    if cancellations is not None:
        cancellations = wall_clock(cancellations)
    if isinstance(as_of, dt.datetime):
        as_of = as_of.date()
    cfg = dict(BUDGETS[budget])
    if max_train_cutoffs is not None:
        cfg["max_train_cutoffs"] = max_train_cutoffs
    t0 = time.perf_counter()

    stage = (0.0, "")  # the last step reported, which each stack member's fit details

    def report(fraction: float, message: str) -> None:
        nonlocal stage
        stage = (fraction, message)
        logger.debug("[%3.0f%%] %s", 100 * fraction, message)
        if progress is not None:
            progress(fraction, message)

    def member_step(step: str) -> None:
        if progress is not None:
            progress(stage[0], f"{stage[1]} · {step}")

    first_date = purchases["invoice_date"].min()
    last_date = purchases["invoice_date"].max()
    assert isinstance(first_date, dt.datetime) and isinstance(last_date, dt.datetime)
    cutoffs = training_cutoffs(
        first_date.date(), as_of, horizon_days, cfg["cutoff_step_days"], cfg["max_train_cutoffs"]
    )

    needed, min_days = history_needed(budget, horizon_days)
    if len(cutoffs) < needed:
        quick = history_needed("quick", horizon_days)[0]
        hint = (
            f" The quick budget (--budget quick) needs only {quick} and can train on this data."
            if budget != "quick" and len(cutoffs) >= quick
            else ""
        )
        raise NotEnoughDataError(
            f"too little history before the {date_name} {as_of}: the {budget} budget trains on "
            f"at least {needed} cutoffs {cfg['cutoff_step_days']} days apart, the first "
            f"{MIN_HISTORY_DAYS} days after the first purchase ({first_date.date()}) and the "
            f"last {days(horizon_days)} before {as_of}, so that its time-aware folds each hold "
            f"whole windows; that takes {min_days} days of purchases before the {date_name}, "
            f"and the store has {(as_of - first_date.date()).days} ({len(cutoffs)} cutoff(s) "
            f"fit). Use a later {date_name} inside the data, a shorter horizon or more "
            f"history.{hint}"
        )
    report(0.02, f"building features for {len(cutoffs)} training cutoffs and {as_of}")
    frame = training_frame(purchases, cancellations, [*cutoffs, as_of], horizon_days)
    train_rows = frame.filter(pl.col("cutoff") < as_of)
    test_rows = frame.filter(pl.col("cutoff") == as_of)
    if train_rows.height == 0 or float(train_rows["spend"].sum()) <= 0:
        raise NotEnoughDataError(_no_training_spend(purchases, as_of))
    feature_names = list(FEATURE_COLUMNS)
    X = model_input(train_rows, feature_names)
    y = train_rows["spend"].to_numpy().astype(float)
    y_products = train_rows["n_products"].to_numpy().astype(float)
    logger.info("training rows: %d from %d cutoffs", X.shape[0], len(cutoffs))

    with member_fit_steps(member_step):  # the bar moves during each model's fit
        stacks = (
            ("Model 1", "RF + Ridge + Lasso", build_model1, SEARCH_SPACE_MODEL1, (0.10, 0.45)),
            (
                "Model 2",
                "RF + XGBoost + Ridge + Lasso",
                build_model2,
                SEARCH_SPACE_MODEL2,
                (0.45, 0.80),
            ),
        )
        searched = []
        for name, members, build, space, span in stacks:
            report(span[0], f"tuning {name} ({members} stack)")
            stack = _set_sizes(build(horizon_days, cfg["inner_splits"], random_state), cfg, n_jobs)
            searched.append(
                _fit_search(name, stack, space, X, y, cfg, horizon_days, random_state, report, span)
            )
        (model1, best1, cv1), (model2, best2, cv2) = searched
        report(0.80, "fitting the products model (Poisson gradient boosting)")
        products_model = build_products_model(random_state).fit(X, y_products)

    covered = last_date.date() >= as_of + dt.timedelta(days=horizon_days - 1)
    report(0.88, "evaluating models and baselines" if covered else "scoring as-of features")
    preds = predict_frame(model1, model2, products_model, test_rows, feature_names)
    n = test_rows.height
    holdout = pl.DataFrame(
        {
            "customer_id": test_rows["customer_id"],
            "actual_spend": test_rows["spend"]
            if covered
            else pl.Series([None] * n, dtype=pl.Float64),
            "actual_products": test_rows["n_products"]
            if covered
            else pl.Series([None] * n, dtype=pl.Int64),
            "pred_model1": preds["predicted_spend_30d_model1"],
            "pred_model2": preds["predicted_spend_30d_model2"],
            "pred_products": preds["predicted_products_30d"],
            "pred_mean": mean_baseline(y, n),
            "pred_run_rate": run_rate_baseline(test_rows["spend_365d"].to_numpy(), horizon_days),
        }
    )
    bg = bgnbd_gg_baseline(purchases, as_of, test_rows["customer_id"].to_list(), horizon_days)
    holdout = holdout.with_columns(
        pred_bgnbd_gg=pl.Series(bg.predictions if bg.ok else [None] * n, dtype=pl.Float64)
    )
    metrics: dict[str, Any] = {
        "cutoff": as_of.isoformat(),
        "horizon_days": horizon_days,
        "n_customers": n,
        "evaluated": bool(covered and n > 0),
        "warnings": [
            note
            for note in [
                unseen_season_note(cutoffs, as_of, horizon_days),
                small_population_note(n) if covered else None,
                data_gap_note(purchases["invoice_date"], as_of),
                same_predictions_note(preds, model1, model2),
                partial_last_day_note(purchases["invoice_date"], as_of, horizon_days)
                if covered
                else None,
                failed_search_note("Model 1", cv1),
                failed_search_note("Model 2", cv2),
            ]
            if note is not None
        ],
        "models": {},
        "baselines": {},
        "calibration": {},
        "gain_curve": {},
    }
    if covered and n > 0:
        actual = holdout["actual_spend"].to_numpy()
        metrics["buyer_share"] = float(np.mean(actual > 0))
        metrics["variance_concentration"] = variance_concentration(actual)
        dominant = dominant_customer_note(
            actual, holdout["customer_id"].to_list(), as_of, horizon_days
        )
        metrics["warnings"].extend([dominant] if dominant else [])
        if not np.any(actual > 0):
            metrics["warnings"].append(
                f"nobody bought in the held-out window [{as_of}, "
                f"{as_of + dt.timedelta(days=horizon_days)}): R², Gini, Spearman and top-10% "
                "capture are undefined there (shown as n/a), so this run cannot be judged; "
                "train with an --as-of whose window holds purchases"
            )
        for key in ("model1", "model2"):
            pred = holdout[f"pred_{key}"].to_numpy()
            metrics["models"][key] = M.evaluate(actual, pred)
            metrics["calibration"][key] = M.decile_calibration(actual, pred)
            metrics["gain_curve"][key] = M.gain_curve(actual, pred)
        metrics["gain_curve"]["perfect"] = M.gain_curve(actual, actual)
        ap = holdout["actual_products"].to_numpy().astype(float)
        pp = holdout["pred_products"].to_numpy()
        metrics["models"]["products"] = _count_metrics(ap, pp)
        metrics["products_baselines"] = {
            "mean": _count_metrics(ap, mean_baseline(y_products, n)),
            "last_window": _count_metrics(
                ap,
                last_window_products_baseline(
                    purchases, as_of, test_rows["customer_id"].to_list(), horizon_days
                ),
            ),
        }
        metrics["baselines"]["mean"] = M.evaluate(actual, holdout["pred_mean"].to_numpy())
        # the working classical baselines; each model is compared with each of them below
        compared = {"run_rate": holdout["pred_run_rate"].to_numpy()}
        if bg.ok and bg.predictions is not None:
            compared["bgnbd_gg"] = np.asarray(bg.predictions, dtype=float)
        for name, pred in compared.items():
            metrics["baselines"][name] = M.evaluate(actual, pred)
        if "bgnbd_gg" not in compared:
            metrics["baselines"]["bgnbd_gg"] = {"failed": True, "reason": bg.reason}
        # the window's total spend and each method's sum of predictions (a revenue forecast
        # built on the sums is off by their ratio: Model 2 about 0.8 at 2011-11-09)
        metrics["totals"] = {
            "actual": float(actual.sum()),
            **{key: float(holdout[f"pred_{key}"].sum()) for key in ("model1", "model2")},
            **{name: float(np.sum(pred)) for name, pred in compared.items()},
        }
        short = (
            short_run_rate_note(
                first_date.date(),
                as_of,
                metrics["totals"]["run_rate"] / metrics["totals"]["actual"],
            )
            if metrics["totals"]["actual"] > 0
            else None
        )
        metrics["warnings"].extend([short] if short else [])
        # each model against each working classical baseline, with customer-bootstrap intervals
        metrics["vs_baselines"] = M.compare_to_baselines(
            actual,
            {key: holdout[f"pred_{key}"].to_numpy() for key in ("model1", "model2")},
            compared,
        )
        metrics["warnings"].extend(behind_baselines_notes(metrics))
    elif not bg.ok:
        metrics["baselines"]["bgnbd_gg"] = {"failed": True, "reason": bg.reason}

    config = {
        "budget": budget,
        **cfg,
        "horizon_days": horizon_days,
        "as_of": as_of.isoformat(),
        "train_cutoffs": [c.isoformat() for c in cutoffs],
        "train_rows": int(X.shape[0]),
        # what the as-of population spends, for the scale check at scoring (scoring.scale_note)
        "spend_levels": spend_levels(test_rows),
        "target": "raw spend; RF squared error on all features, Ridge/Lasso squared error on "
        f"{', '.join(LINEAR_FEATURES)} with non-negative weights, XGBoost Tweedie (log link) "
        "with log(run-rate) as exposure offset; predictions clipped at 0",
        "meta_learner": "ConvexBlendRegressor (weights >= 0, sum 1) on forward out-of-fold "
        "predictions",
        "random_state": random_state,
        "n_jobs": n_jobs,
        "blend_weights": {
            "model1": model1.regressor_.blend_weights(),
            "model2": model2.regressor_.blend_weights(),
        },
        "seconds": time.perf_counter() - t0,
    }
    report(1.0, f"done in {config['seconds']:.0f} s")
    return TrainResult(
        model1=model1,
        model2=model2,
        products_model=products_model,
        feature_names=feature_names,
        as_of=as_of,
        horizon_days=horizon_days,
        metrics=metrics,
        holdout=holdout,
        best_params={"model1": best1, "model2": best2},
        cv_scores={"model1": cv1, "model2": cv2},
        feature_importance=_feature_importance(model2, feature_names),
        config=config,
        bgnbd_params=bg.params if bg.ok else None,
    )
