"""Baselines reported beside the models: train-mean, naive run-rate, BG/NBD + Gamma-Gamma.

For the number of products: the train mean and the last window (distinct products bought in the
``horizon_days`` before the cutoff).

BG/NBD + Gamma-Gamma uses ``lifetimes`` (maximum likelihood with a small L2 penalizer). MLE is
the same point estimate PyMC-Marketing's ``fit(method="map")`` returns with flat priors, and it
avoids a PyMC/PyTensor install and C compilation on the 2-core CI; see ``docs/models.md``. The
fit can fail (non-convergence, degenerate data): :func:`bgnbd_gg_baseline` then returns a
result with ``ok=False`` and the reason, never a silent number.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from retail_clv.features.bgnbd import fit_bgnbd_gg, fit_failure_reason, rfm_summary
from retail_clv.features.targets import targets

logger = logging.getLogger(__name__)

__all__ = [
    "BaselineResult",
    "bgnbd_gg_baseline",
    "last_window_products_baseline",
    "mean_baseline",
    "rfm_summary",
    "run_rate_baseline",
]


def mean_baseline(train_spend: Any, n: int) -> np.ndarray:
    """Predict the mean window spend of the training rows for everybody.

    Parameters
    ----------
    train_spend : array-like
        Targets of the training rows (zeros included).
    n : int
        Number of customers to predict.

    Returns
    -------
    numpy.ndarray
        ``n`` copies of the training mean.
    """
    return np.full(n, float(np.mean(np.asarray(train_spend, dtype=float))))


def run_rate_baseline(spend_365d: Any, horizon_days: int = 30) -> np.ndarray:
    """Predict ``spend in the last 365 days * horizon / 365``.

    Parameters
    ----------
    spend_365d : array-like
        Spend in the 365 days before the cutoff.
    horizon_days : int, default 30
        Window length.

    Returns
    -------
    numpy.ndarray
        Run-rate predictions.
    """
    return np.asarray(spend_365d, dtype=float) * horizon_days / 365.0


def last_window_products_baseline(
    purchases: pl.DataFrame, cutoff: dt.date, customer_ids: Any, horizon_days: int = 30
) -> np.ndarray:
    """Predict the number of distinct products each customer bought in the last window.

    The naive persistence forecast for the products target: distinct stock codes bought in
    ``[cutoff - horizon_days, cutoff)``, 0 for customers who bought nothing then.

    Parameters
    ----------
    purchases : pl.DataFrame
        Valid purchase lines (``customer_id, invoice, stock_code, quantity, price,
        invoice_date``).
    cutoff : datetime.date
        Start of the predicted window.
    customer_ids : array-like
        Customers to predict, in output order.
    horizon_days : int, default 30
        Window length.

    Returns
    -------
    numpy.ndarray
        Counts aligned with ``customer_ids``.
    """
    # the previous window's products target (features.targets), the same count as the models'
    last = targets(purchases, cutoff - dt.timedelta(days=horizon_days), horizon_days)
    order = pl.DataFrame({"customer_id": list(customer_ids)}, schema={"customer_id": pl.Utf8})
    joined = order.join(last, on="customer_id", how="left", maintain_order="left")
    return joined["n_products"].fill_null(0).to_numpy().astype(float)


@dataclass
class BaselineResult:
    """Outcome of a model-based baseline: predictions, or why there are none."""

    ok: bool
    predictions: np.ndarray | None = None
    reason: str | None = None
    params: dict[str, float] = field(default_factory=dict)


def bgnbd_gg_baseline(
    purchases: pl.DataFrame,
    cutoff: dt.date,
    customer_ids: Any,
    horizon_days: int = 30,
    penalizer: float = 0.001,
) -> BaselineResult:
    """Fit BG/NBD + Gamma-Gamma on data before ``cutoff`` and predict spend in the window.

    Prediction = expected purchases in ``horizon_days`` (BG/NBD) x expected spend per purchase
    (Gamma-Gamma conditional mean; the population mean for customers without a repeat).

    Parameters
    ----------
    purchases : pl.DataFrame
        Valid purchase lines.
    cutoff : datetime.date
        End of the observation period and start of the window.
    customer_ids : array-like
        Customers to predict, in output order.
    horizon_days : int, default 30
        Window length.
    penalizer : float, default 0.001
        L2 penalizer of both fits (stabilises the MLE).

    Returns
    -------
    BaselineResult
        Predictions aligned with ``customer_ids``, or ``ok=False`` with the failure reason.
    """
    try:
        summary = rfm_summary(purchases, cutoff)
        order = pl.DataFrame({"customer_id": list(customer_ids)}, schema={"customer_id": pl.Utf8})
        summary = order.join(
            summary, on="customer_id", how="left", maintain_order="left"
        ).fill_null(0.0)
        fit = fit_bgnbd_gg(summary, horizon_days=horizon_days, penalizer=penalizer)
        pred = fit.expected_spend
        if not np.all(np.isfinite(pred)):
            return BaselineResult(False, reason="BG/NBD + Gamma-Gamma gave non-finite predictions")
        return BaselineResult(True, np.clip(pred, 0.0, None), params=fit.params)
    except Exception as exc:  # the baseline must never crash a training run
        reason = fit_failure_reason(exc)
        logger.warning("BG/NBD + Gamma-Gamma baseline failed: %s", reason)
        return BaselineResult(False, reason=reason)
