"""Honest backtests: train on windows ending by a cutoff, evaluate on the window after it."""

from __future__ import annotations

import datetime as dt
import logging
import math
import operator
import time
from typing import Any

import polars as pl

from retail_clv.errors import NotEnoughDataError, days
from retail_clv.models.estimators import N_JOBS
from retail_clv.models.training import Budget, Progress, history_needed, longest_horizon, train

logger = logging.getLogger(__name__)

#: The public protocol's test cutoff and the earlier cutoffs of the rolling check.
PROTOCOL_CUTOFF = dt.date(2011, 11, 9)
ROLLING_CUTOFFS: tuple[dt.date, ...] = (
    dt.date(2011, 5, 9),
    dt.date(2011, 6, 9),
    dt.date(2011, 7, 9),
    dt.date(2011, 8, 9),
    dt.date(2011, 9, 9),
    dt.date(2011, 10, 9),
)
_JSON_KEYS = ("cutoff", "horizon_days", "n_customers", "models", "baselines")


def _clean(value: Any) -> Any:
    """Replace NaN/inf by None, recursively, so the result is strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _cutoff_span(first: dt.date, last: dt.date, budget: Budget, h: int) -> tuple[dt.date, dt.date]:
    """Return the earliest and latest cutoffs a store allows with this budget and horizon.

    From the first purchase plus ``training.history_needed`` days, to the last day whose
    window of ``h`` days ends with the last purchase (``last − h + 1``).
    """
    return first + dt.timedelta(days=history_needed(budget, h)[1]), _latest(last, h)


def _latest(last: dt.date, h: int) -> dt.date:
    return last - dt.timedelta(days=h - 1)


def _cutoff_range(first: dt.date, last: dt.date, budget: Budget, horizon_days: int) -> str:
    """Say which cutoffs this store allows (:func:`_cutoff_span`), or what would give one.

    When none fits, the quick budget or a shorter horizon is named only if it would give one.
    """
    earliest, latest = _cutoff_span(first, last, budget, horizon_days)
    if earliest <= latest:
        return f" (this store allows {earliest} to {latest} with the {budget} budget)"
    ways = ["add history"]
    if budget != "quick" and operator.le(*_cutoff_span(first, last, "quick", horizon_days)):
        ways.append("use --budget quick")
    shorter = longest_horizon(budget, horizon_days, first, lambda h: _latest(last, h))
    if shorter is not None:
        ways.append(f"use a --horizon of {shorter} days or less")
    return (
        f" (no cutoff fits this store with the {budget} budget and a {horizon_days}-day "
        f"horizon: {', or '.join(ways)})"
    )


def backtest(
    purchases: pl.DataFrame,
    cancellations: pl.DataFrame | None,
    cutoff: dt.date,
    horizon_days: int = 30,
    budget: Budget = "default",
    progress: Progress | None = None,
    n_jobs: int = N_JOBS,
    max_train_cutoffs: int | None = None,
) -> dict[str, Any]:
    """Train on windows ending on or before ``cutoff``; evaluate on ``[cutoff, cutoff + h)``.

    Parameters
    ----------
    purchases, cancellations : pl.DataFrame
        Store frames (``read_purchases`` / ``read_cancellations`` columns).
    cutoff : datetime.date
        Test cutoff.
    horizon_days : int, default 30
        Window length.
    budget : {"quick", "default"}, default "default"
        Search budget.
    progress : callable, optional
        ``progress(fraction, message)``.
    n_jobs : int, default 2
        CPU threads of the forest and XGBoost.
    max_train_cutoffs : int, optional
        Train on at most this many cutoffs, the newest (default: all history).

    Returns
    -------
    dict
        The metrics dict of :func:`retail_clv.models.training.train` (``cutoff, horizon_days,
        n_customers, models, baselines, calibration, gain_curve, buyer_share, vs_baselines``)
        plus ``seconds``, ``budget`` and ``blend_weights``; NaN values become ``None``.

    Raises
    ------
    NotEnoughDataError
        When the data does not cover the test window or lacks history.
    """
    first, last = purchases["invoice_date"].min(), purchases["invoice_date"].max()
    if not isinstance(first, dt.datetime) or not isinstance(last, dt.datetime):
        raise NotEnoughDataError("the store holds no dated purchases: nothing to backtest")
    earliest, latest = _cutoff_span(first.date(), last.date(), budget, horizon_days)
    allowed = _cutoff_range(first.date(), last.date(), budget, horizon_days)
    if cutoff > latest:
        raise NotEnoughDataError(
            f"the data ends on {last.date()}: it does not cover the test window [{cutoff}, "
            f"{cutoff} + {days(horizon_days)}); choose an earlier --cutoff" + allowed
        )
    if first.date() >= cutoff:
        raise NotEnoughDataError(
            f"the data starts on {first.date()}: there is no history before the cutoff "
            f"{cutoff}; choose a later --cutoff" + allowed
        )
    if cutoff < earliest:
        raise NotEnoughDataError(
            f"too little history before the cutoff {cutoff}: the {budget} budget with a "
            f"{horizon_days}-day horizon trains on {history_needed(budget, horizon_days)[1]} "
            f"days of purchases before it, and the data starts on {first.date()}; choose a "
            f"later --cutoff" + allowed
        )
    start = time.perf_counter()
    result = train(
        purchases,
        cancellations,
        cutoff,
        horizon_days,
        budget,
        progress,
        n_jobs=n_jobs,
        date_name="cutoff",
        max_train_cutoffs=max_train_cutoffs,
    )
    out = dict(result.metrics)
    out["seconds"] = time.perf_counter() - start
    out["budget"] = budget
    out["blend_weights"] = result.config.get("blend_weights")
    out["best_params"] = result.best_params
    return _clean(out)


def summary_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Flatten a backtest result into one row per model / baseline (for tables).

    Parameters
    ----------
    result : dict
        Output of :func:`backtest`.

    Returns
    -------
    list[dict]
        ``{"cutoff", "name", "kind", "r2", "mae", "rmse", "spearman", "gini",
        "top10_capture", "failed"}`` rows.
    """
    rows = []
    for kind in ("models", "baselines"):
        for name, m in (result.get(kind) or {}).items():
            if name == "products":
                continue
            rows.append(
                {
                    "cutoff": result["cutoff"],
                    "name": name,
                    "kind": kind[:-1],
                    **{
                        k: m.get(k)
                        for k in ("r2", "mae", "rmse", "spearman", "gini", "top10_capture")
                    },
                    "failed": m.get("reason") if m.get("failed") else None,
                }
            )
    return rows
