"""Evaluation metrics for spend predictions: fit, ranking, concentration and calibration.

All functions take 1-D array-likes of equal length (``y_true`` actual spend, ``y_pred``
predictions) and return plain Python floats / lists so results serialise to JSON directly.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

ArrayLike = npt.ArrayLike


def _pair(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=float).ravel()
    p = np.asarray(y_pred, dtype=float).ravel()
    if y.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in length: {y.size} != {p.size}")
    if y.size == 0:
        raise ValueError("cannot evaluate an empty set of predictions")
    return y, p


def r2(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Coefficient of determination ``1 - SS_res / SS_tot`` (``nan`` when ``y_true`` is constant).

    Parameters
    ----------
    y_true, y_pred : array-like
        Actual and predicted values.

    Returns
    -------
    float
        R².
    """
    y, p = _pair(y_true, y_pred)
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    if ss_tot == 0.0:
        return math.nan
    return 1.0 - float(np.sum((y - p) ** 2)) / ss_tot


def mae(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean absolute error.

    Parameters
    ----------
    y_true, y_pred : array-like
        Actual and predicted values.

    Returns
    -------
    float
        MAE.
    """
    y, p = _pair(y_true, y_pred)
    return float(np.mean(np.abs(y - p)))


def rmse(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Root mean squared error.

    Parameters
    ----------
    y_true, y_pred : array-like
        Actual and predicted values.

    Returns
    -------
    float
        RMSE.
    """
    y, p = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((y - p) ** 2)))


def spearman(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Spearman rank correlation (average ranks for ties; ``nan`` if either side is constant).

    Parameters
    ----------
    y_true, y_pred : array-like
        Actual and predicted values.

    Returns
    -------
    float
        Spearman's rho.
    """
    y, p = _pair(y_true, y_pred)
    if np.all(y == y[0]) or np.all(p == p[0]):
        return math.nan
    return float(stats.spearmanr(y, p).statistic)


def _ranked_spend(y: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Actual spend ordered by descending score, ties replaced by their group mean.

    Averaging within tied scores gives the expected gain curve under a random tie order, so a
    constant prediction gets a Gini of exactly 0 and no ordering luck.
    """
    uniq, inverse = np.unique(-score, return_inverse=True)
    inverse = inverse.ravel()
    sums = np.bincount(inverse, weights=y, minlength=uniq.size)
    counts = np.bincount(inverse, minlength=uniq.size)
    smoothed = (sums / counts)[inverse]
    return smoothed[np.argsort(inverse, kind="stable")]


def _gini(ranked: np.ndarray) -> float:
    """Area between the gain curve of spend in ``ranked`` order and the diagonal (trapezoids)."""
    n = ranked.size
    gains = np.concatenate([[0.0], np.cumsum(ranked) / ranked.sum()])
    x = np.linspace(0.0, 1.0, n + 1)
    area = float(np.sum((gains[1:] + gains[:-1]) / 2.0 * np.diff(x)))
    return area - 0.5


def normalized_gini(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Compute the normalized Gini: gain-curve area over the diagonal / the perfect order's.

    Customers are sorted by descending prediction; the gain curve is the cumulative share of
    actual spend against the share of customers. Ties in the prediction are broken
    by averaging (the expected curve under a random order of tied customers), so a constant
    prediction scores exactly 0.

    Parameters
    ----------
    y_true, y_pred : array-like
        Actual (non-negative) and predicted values.

    Returns
    -------
    float
        1 for a perfect ordering, about 0 for a random one; ``nan`` when total spend is 0.
    """
    y, p = _pair(y_true, y_pred)
    if y.sum() <= 0:
        return math.nan
    return _gini(_ranked_spend(y, p)) / _gini(_ranked_spend(y, y))


def top_capture(y_true: ArrayLike, y_pred: ArrayLike, fraction: float = 0.1) -> float:
    """Share of actual spend bought by the ``fraction`` of customers with the highest predictions.

    Parameters
    ----------
    y_true, y_pred : array-like
        Actual and predicted values.
    fraction : float, default 0.1
        Share of customers kept (``ceil(fraction * n)`` customers; tied predictions at the
        boundary contribute their group's mean spend).

    Returns
    -------
    float
        Captured share of the total actual spend (``nan`` when it is 0).
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    y, p = _pair(y_true, y_pred)
    total = y.sum()
    if total <= 0:
        return math.nan
    k = math.ceil(fraction * y.size)
    return float(_ranked_spend(y, p)[:k].sum() / total)


def decile_calibration(
    y_true: ArrayLike, y_pred: ArrayLike, bins: int = 10
) -> list[dict[str, Any]]:
    """Mean predicted vs mean actual per predicted decile (decile 1 = highest predictions).

    Parameters
    ----------
    y_true, y_pred : array-like
        Actual and predicted values.
    bins : int, default 10
        Number of equal-count groups.

    Returns
    -------
    list[dict]
        ``{"decile", "mean_predicted", "mean_actual", "n"}`` per group.
    """
    y, p = _pair(y_true, y_pred)
    order = np.argsort(-p, kind="stable")
    groups = np.array_split(order, bins)
    return [
        {
            "decile": i + 1,
            "mean_predicted": float(p[g].mean()) if g.size else math.nan,
            "mean_actual": float(y[g].mean()) if g.size else math.nan,
            "n": int(g.size),
        }
        for i, g in enumerate(groups)
    ]


def gain_curve(y_true: ArrayLike, y_pred: ArrayLike, points: int = 21) -> list[dict[str, float]]:
    """Cumulative share of actual spend against share of customers, ranked by prediction.

    Parameters
    ----------
    y_true, y_pred : array-like
        Actual and predicted values.
    points : int, default 21
        Number of evenly spaced customer fractions from 0 to 1.

    Returns
    -------
    list[dict]
        ``{"fraction_customers", "fraction_spend"}`` points.
    """
    y, p = _pair(y_true, y_pred)
    total = y.sum()
    cum = np.concatenate([[0.0], np.cumsum(_ranked_spend(y, p))])
    fractions = np.linspace(0.0, 1.0, points)
    idx = np.round(fractions * y.size).astype(int)
    share = cum[idx] / total if total > 0 else np.zeros_like(fractions)
    return [
        {"fraction_customers": float(f), "fraction_spend": float(s)}
        for f, s in zip(fractions, share, strict=True)
    ]


def evaluate(y_true: ArrayLike, y_pred: ArrayLike) -> dict[str, float]:
    """All point metrics of a spend prediction.

    Parameters
    ----------
    y_true, y_pred : array-like
        Actual and predicted values.

    Returns
    -------
    dict
        ``r2, mae, rmse, spearman, gini, top10_capture``.
    """
    return {
        "r2": r2(y_true, y_pred),
        "mae": mae(y_true, y_pred),
        "rmse": rmse(y_true, y_pred),
        "spearman": spearman(y_true, y_pred),
        "gini": normalized_gini(y_true, y_pred),
        "top10_capture": top_capture(y_true, y_pred, 0.1),
    }
