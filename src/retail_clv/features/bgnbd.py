"""BG/NBD + Gamma-Gamma quantities per cutoff, as features (fitted on data before the cutoff).

For each cutoff, a BG/NBD model (``lifetimes.BetaGeoFitter``) and a Gamma-Gamma model are
fitted by penalised maximum likelihood on the RFM summary of the purchases strictly before the
cutoff, then evaluated for every customer. The fit uses nothing on or after the cutoff, so the
features obey the same leakage rule as the others. One fit per cutoff (a loop over cutoffs,
not over customers); on Online Retail II a fit takes well under a second. When a fit fails
(too few repeat buyers, no convergence) that cutoff's values are null and the learners impute
them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import logging
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import polars as pl

from retail_clv.errors import NotEnoughDataError
from retail_clv.features.dates import wall_clock
from retail_clv.features.money import line_milli, to_currency

logger = logging.getLogger(__name__)

#: Feature columns added by :func:`bgnbd_features` (horizon fixed at 30 days).
BGNBD_COLUMNS: list[str] = ["bgnbd_purchases_30d", "bgnbd_p_alive", "bgnbd_gg_spend_30d"]
_HORIZON = 30
PENALIZER = 0.001


def rfm_summary(purchases: pl.DataFrame, cutoff: dt.date) -> pl.DataFrame:
    """Compute the BG/NBD summary (in days) from purchases strictly before ``cutoff``.

    Repeat purchases are counted on distinct purchase days, as in ``lifetimes``.

    Parameters
    ----------
    purchases : pl.DataFrame
        Valid purchase lines.
    cutoff : datetime.date
        End of the observation period (exclusive).

    Returns
    -------
    pl.DataFrame
        ``customer_id, frequency, recency, T, monetary_value`` (monetary = mean spend per repeat
        purchase day, 0 without repeats).
    """
    end = dt.datetime.combine(cutoff, dt.time())
    daily = (
        wall_clock(purchases)
        .filter(pl.col("invoice_date") < end)
        .with_columns(
            pl.col("customer_id").cast(pl.Utf8),  # the text ids features and targets use
            day=pl.col("invoice_date").dt.date(),
            amount=line_milli(),
        )
        .group_by(["customer_id", "day"])
        .agg(to_currency(pl.col("amount").sum()))  # exact integer sums (features/money.py)
        .sort(["customer_id", "day"])
    )
    first = pl.col("day").min()
    return (
        daily.with_columns(is_first=pl.col("day") == pl.col("day").min().over("customer_id"))
        .group_by("customer_id")
        .agg(
            frequency=(pl.len() - 1).cast(pl.Float64),
            recency=(pl.col("day").max() - first).dt.total_days().cast(pl.Float64),
            T=(pl.lit(cutoff) - first).dt.total_days().cast(pl.Float64),
            repeat_spend=pl.col("amount").filter(~pl.col("is_first")).sum(),
        )
        .with_columns(
            monetary_value=pl.when(pl.col("frequency") > 0)
            .then(pl.col("repeat_spend") / pl.col("frequency"))
            .otherwise(0.0)
        )
        .drop("repeat_spend")
        .sort("customer_id")
    )


@dataclass(frozen=True)
class BgnbdGgFit:
    """Per-customer BG/NBD + Gamma-Gamma quantities of one fit, aligned with the summary rows."""

    expected_purchases: np.ndarray
    p_alive: np.ndarray
    average_value: np.ndarray
    params: dict[str, float]

    @property
    def expected_spend(self) -> np.ndarray:
        """Expected spend over the horizon: expected purchases times expected order value."""
        return self.expected_purchases * self.average_value


def fit_failure_reason(exc: Exception) -> str:
    """Say why a BG/NBD + Gamma-Gamma fit failed, in the user's terms.

    ``lifetimes`` says "Try adding a larger penalizer", an option retail-clv does not expose;
    the cause is nearly always too few repeat buyers for the model's four parameters.
    """
    if type(exc).__name__ == "ConvergenceError":
        return "the fit did not converge: too few repeat buyers, or too little history"
    if isinstance(exc, NotEnoughDataError):
        return str(exc)
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence ``lifetimes``: it print()s the optimiser state when a fit does not converge."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


#: Each fit is tried with the penalizer, then 10, 100 and 1000 times it, until one converges
#: with finite values. On Online Retail II, at 25 cutoffs 28 days apart from 2010-01-30 plus
#: 2010-12-09, the BG/NBD fit at 0.001 failed at 7 (all in 2010) and gave infinite or undefined
#: expectations at 2 more: those cutoffs' features were imputed, and a store's forecasts could
#: flip from one day to the next as the fit failed or not. The failures are fits whose optimum
#: lies on the boundary (dropout ``a`` → 0 with four months of history: nobody seen leaving
#: yet), which a larger penalizer keeps inside.
PENALIZER_STEPS = (1.0, 10.0, 100.0, 1000.0)
#: Below this many repeat buyers only the given penalizer is tried: a larger one would make the
#: penalty, not the few customers, decide the fit (with none, the model is not identified).
MIN_REPEAT_BUYERS_TO_RETRY = 10


def _first_converging(
    fit: Callable[[float], tuple[np.ndarray, ...]], penalizer: float, repeat_buyers: int
) -> tuple[tuple[np.ndarray, ...], float]:
    """Run ``fit`` with rising penalizers (:data:`PENALIZER_STEPS`); re-raise the last error.

    With fewer than :data:`MIN_REPEAT_BUYERS_TO_RETRY` repeat buyers only ``penalizer`` is tried.
    """
    error: Exception | None = None
    steps = PENALIZER_STEPS if repeat_buyers >= MIN_REPEAT_BUYERS_TO_RETRY else (1.0,)
    for step in steps:
        try:
            values = fit(penalizer * step)
        except Exception as exc:  # noqa: BLE001  (lifetimes and SciPy raise several types)
            error = exc
            continue
        if all(np.all(np.isfinite(v)) for v in values):
            return values, penalizer * step
        error = FloatingPointError("the fit gave infinite or undefined values")
    assert error is not None
    raise error


def fit_bgnbd(
    summary: pl.DataFrame, horizon_days: float = _HORIZON, penalizer: float = PENALIZER
) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Fit BG/NBD (``lifetimes``, penalised MLE) on an RFM summary.

    The penalizer is raised tenfold, up to three times, when a fit does not converge or gives
    non-finite values (:data:`PENALIZER_STEPS`), given at least
    :data:`MIN_REPEAT_BUYERS_TO_RETRY` repeat buyers.

    Returns
    -------
    tuple
        Expected purchases in ``horizon_days`` and P(alive) per row, and the parameters
        (``bgnbd_r``, ``bgnbd_alpha``, ``bgnbd_a``, ``bgnbd_b``, ``bgnbd_penalizer``). Raises
        what ``lifetimes`` raised at the last penalizer when every fit fails.
    """
    from lifetimes import BetaGeoFitter

    pdf = summary.to_pandas()
    params: dict[str, float] = {}

    def fit(coef: float) -> tuple[np.ndarray, ...]:
        with _quiet():
            bgf = BetaGeoFitter(penalizer_coef=coef)
            bgf.fit(pdf["frequency"], pdf["recency"], pdf["T"])
            expected = bgf.conditional_expected_number_of_purchases_up_to_time(
                horizon_days, pdf["frequency"], pdf["recency"], pdf["T"]
            ).to_numpy(dtype=float)
            alive = np.asarray(
                bgf.conditional_probability_alive(pdf["frequency"], pdf["recency"], pdf["T"]),
                dtype=float,
            )
        params.clear()
        params.update({f"bgnbd_{k}": float(v) for k, v in bgf.params_.items()})
        return expected, alive

    repeat_buyers = int((pdf["frequency"] > 0).sum())
    if repeat_buyers == 0:
        raise NotEnoughDataError("no customer has a repeat purchase day: BG/NBD cannot be fitted")
    (expected, alive), used = _first_converging(fit, penalizer, repeat_buyers)
    return expected, alive, params | {"bgnbd_penalizer": used}


def fit_gamma_gamma(
    summary: pl.DataFrame, penalizer: float = PENALIZER
) -> tuple[np.ndarray, dict[str, float]]:
    """Fit Gamma-Gamma (``lifetimes``, penalised MLE) on the repeat buyers of an RFM summary.

    Spend per purchase day is divided by its median over the repeat buyers before the fit and
    the expected values multiplied back. On the raw currency the scale parameter ``v`` would be
    in the hundreds, where the L2 penalizer (meant for parameters near 1) dominates it: on
    Online Retail II the unscaled fit ended with ``q`` < 1, for which the model's expected
    value of a customer without repeats, ``p·v / (q − 1)``, is negative, or stopped with
    SciPy's "precision loss" on small stores.

    Returns
    -------
    tuple
        Expected spend per purchase day per row (the population mean for rows without a repeat)
        and the parameters (``gg_p``, ``gg_q``, ``gg_v`` in units of ``gg_scale``, ``gg_scale``
        and ``gg_penalizer``; the penalizer rises as in :func:`fit_bgnbd`). Raises what
        ``lifetimes`` raised at the last penalizer when every fit fails.
    """
    from lifetimes import GammaGammaFitter

    pdf = summary.to_pandas()
    repeat = pdf[(pdf["frequency"] > 0) & (pdf["monetary_value"] > 0)]
    scale = float(np.median(repeat["monetary_value"])) if len(repeat) else 1.0
    params: dict[str, float] = {}

    def fit(coef: float) -> tuple[np.ndarray, ...]:
        with _quiet():
            ggf = GammaGammaFitter(penalizer_coef=coef)
            ggf.fit(repeat["frequency"], repeat["monetary_value"] / scale)
            value = ggf.conditional_expected_average_profit(
                pdf["frequency"], pdf["monetary_value"] / scale
            ).to_numpy(dtype=float)
        params.clear()
        params.update({f"gg_{k}": float(v) for k, v in ggf.params_.items()})
        return (value,)

    if len(repeat) == 0:
        raise NotEnoughDataError(
            "no customer has a repeat purchase day: Gamma-Gamma cannot be fitted"
        )
    (value,), used = _first_converging(fit, penalizer, len(repeat))
    return value * scale, params | {"gg_scale": scale, "gg_penalizer": used}


def fit_bgnbd_gg(
    summary: pl.DataFrame, horizon_days: float = _HORIZON, penalizer: float = PENALIZER
) -> BgnbdGgFit:
    """Fit BG/NBD and Gamma-Gamma (:func:`fit_bgnbd`, :func:`fit_gamma_gamma`) on a summary.

    Parameters
    ----------
    summary : pl.DataFrame
        Output of :func:`rfm_summary` (``frequency, recency, T, monetary_value``).
    horizon_days : float, default 30
        Horizon of the expected number of purchases.
    penalizer : float, default 0.001
        L2 penalizer of both fits (stabilises the MLE).

    Returns
    -------
    BgnbdGgFit
        Expected purchases, P(alive) and expected order value per row, and the fitted parameters.
        Raises whatever ``lifetimes`` raises when a fit fails; callers decide what that means.
    """
    expected, alive, params = fit_bgnbd(summary, horizon_days, penalizer)
    value, gg_params = fit_gamma_gamma(summary, penalizer)
    return BgnbdGgFit(expected, alive, value, params | gg_params)


def bgnbd_features(purchases: pl.DataFrame, cutoffs: list[dt.date]) -> pl.DataFrame:
    """Compute BG/NBD expected purchases, P(alive) and expected spend (30 days) per cutoff.

    Parameters
    ----------
    purchases : pl.DataFrame
        Valid purchase lines (``customer_id, quantity, price, invoice_date``).
    cutoffs : list[datetime.date]
        Cutoffs; each is fitted on the purchases strictly before it.

    Returns
    -------
    pl.DataFrame
        ``customer_id, cutoff`` and :data:`BGNBD_COLUMNS` (Float64; null where a fit failed or
        gave non-finite values).
    """
    parts = []
    failures: list[tuple[dt.date, str, str, list[str]]] = []
    for cutoff in cutoffs:
        summary = rfm_summary(purchases, cutoff)
        if summary.height == 0:
            continue
        values = {c: np.full(summary.height, np.nan) for c in BGNBD_COLUMNS}
        # a failed fit must not stop feature building; BG/NBD's columns stand without Gamma-Gamma
        model, unavailable = "BG/NBD", BGNBD_COLUMNS
        try:
            expected, alive, _ = fit_bgnbd(summary)
            values["bgnbd_purchases_30d"], values["bgnbd_p_alive"] = expected, alive
            model, unavailable = "Gamma-Gamma", ["bgnbd_gg_spend_30d"]
            value, _ = fit_gamma_gamma(summary)
            values["bgnbd_gg_spend_30d"] = expected * value
        except Exception as exc:
            failures.append((cutoff, model, fit_failure_reason(exc), list(unavailable)))
        part = summary.select("customer_id").with_columns(
            cutoff=pl.lit(cutoff, dtype=pl.Date),
            **{c: pl.Series(values[c], dtype=pl.Float64) for c in BGNBD_COLUMNS},
        )
        parts.append(part)
    # one line per model, not one per cutoff (a store of one-time buyers fails at every one)
    for model in ("BG/NBD", "Gamma-Gamma"):
        failed = [f for f in failures if f[1] == model]
        if failed:
            first, _, reason, unavailable = failed[0]
            logger.info(
                "%s fit failed at %d of %d cutoffs (%s%s; first reason: %s): %s imputed by "
                "the models",
                model,
                len(failed),
                len(cutoffs),
                first,
                f" … {failed[-1][0]}" if len(failed) > 1 else "",
                reason,
                ", ".join(unavailable),
            )
    if not parts:
        return pl.DataFrame(
            schema={
                "customer_id": pl.Utf8,
                "cutoff": pl.Date,
                **dict.fromkeys(BGNBD_COLUMNS, pl.Float64),
            }
        )
    out = pl.concat(parts)
    return out.with_columns(
        [
            pl.when(pl.col(c).is_finite()).then(pl.col(c)).otherwise(None).alias(c)
            for c in BGNBD_COLUMNS
        ]
    )
