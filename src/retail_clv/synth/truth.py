r"""Ground truth of the synthetic retailer and "fraction of the achievable R²".

The generator writes ``PATH.truth.parquet`` next to the raw file, one row per customer, for one
*truth window* :math:`[c, c+h)` (default: the last 30 days of the simulated period). Columns:

- latent values: ``lambda_per_day``, ``p_dropout``, ``nu``, ``expected_order_value``
  (:math:`p_{gg}/\nu`), ``basket_mean``, ``repertoire_size``, ``post_prob``, ``segment``;
- ``first_purchase``, ``death_at`` (time of the purchase after which the customer dropped out,
  null if alive at the end), ``alive_at_cutoff``, ``in_population`` (first purchase before the
  cutoff: the customers a model can score), ``orders_before_cutoff``, ``spend_before_cutoff``;
- the **oracle** (expectation given the latent truth, an upper bound no model can beat in
  expectation): ``oracle_expected_orders``, ``oracle_expected_spend``,
  ``oracle_expected_products`` (distinct stock codes, non-product codes such as POST included);
- in the ``bgnbd`` process, the **Bayes-optimal** prediction from the observable history
  :math:`(x, t_x, T)` and the observed order values with the *true* population parameters:
  ``bayes_expected_orders``, ``bayes_expected_spend`` (null in the realistic process);
- what actually happened in the window: ``actual_orders``, ``actual_spend``,
  ``actual_products`` (from the clean purchase lines written to the raw file).

Oracle. A customer alive at :math:`c` with rate :math:`\lambda` and dropout :math:`p` makes
:math:`N=\min(M, K)` purchases in the window, :math:`M\sim\mathrm{Poisson}(\mu)`,
:math:`\mu=\lambda\,(U(c+h)-U(c))` (operational time, see :mod:`retail_clv.synth.process`),
:math:`K\sim\mathrm{Geometric}(p)`. Hence

.. math::

    E[N] = \frac{1-e^{-p\mu}}{p}, \qquad
    E[\phi^N] = 1-(1-\phi)\,\frac{1-e^{-\mu(1-y)}}{1-y},\quad y=\phi(1-p),

expected spend :math:`E[N]\,p_{gg}/\nu`, and expected distinct products
:math:`R\,(1-E[\psi^N]) + (1-E[(1-\pi_{post})^N]) + (1-E[(1-\pi_M)^N])` with :math:`\psi` the
per-order miss probability of a repertoire item. A customer whose first purchase falls inside the
window gets one certain order plus the above from that time on; a dead or not-yet-arrived
customer gets 0.

Bayes-optimal (``bgnbd``): BG/NBD conditional expectation (Fader, Hardie & Lee 2005, eq. 10)

.. math::

    E[Y(t)\mid x,t_x,T] = \frac{\frac{a+b+x-1}{a-1}\left[1 - {}_2F_1\!\left(r+x, a-1;
    a+b+x-1; \frac{-t}{\alpha+T}\right)\right]}{1+\delta_{x>0}\frac{a}{b+x-1}
    \left(\frac{\alpha+T}{\alpha+t_x}\right)^{r+x}}

(the Euler-transformed form of the published hypergeometric term, numerically stable), times
the Gamma-Gamma posterior mean order value from all :math:`n=x+1` observed orders with total
:math:`S`: :math:`p_{gg}(\gamma+S)/(p_{gg}n+q-1)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np
import polars as pl
from scipy.special import hyp2f1

__all__ = [
    "AchievableR2",
    "achievable_r2",
    "bgnbd_conditional_expected_transactions",
    "bg_pgf",
    "fraction_of_achievable_r2",
    "gamma_gamma_conditional_value",
    "oracle_r2",
    "read_truth",
]


def bg_pgf(phi: np.ndarray | float, mu: np.ndarray, p: np.ndarray) -> np.ndarray:
    r"""Probability generating function :math:`E[\phi^N]` of :math:`N=\min(M,K)`.

    Parameters
    ----------
    phi : array_like
        Argument in :math:`[0, 1]`.
    mu : numpy.ndarray
        Poisson mean of :math:`M` (purchase rate times operational window length).
    p : numpy.ndarray
        Dropout probability; :math:`K\sim\mathrm{Geometric}(p)` on :math:`\{1, 2, \dots\}`.

    Returns
    -------
    numpy.ndarray
        :math:`E[\phi^N]`.
    """
    phi = np.asarray(phi, dtype=np.float64)
    y = phi * (1.0 - p)
    one_minus_y = 1.0 - y
    safe = np.where(one_minus_y > 1e-12, one_minus_y, 1.0)
    ratio = np.where(one_minus_y > 1e-12, -np.expm1(-mu * one_minus_y) / safe, mu)
    return 1.0 - (1.0 - phi) * ratio


def expected_transactions(mu: np.ndarray, p: np.ndarray) -> np.ndarray:
    r"""Return :math:`E[N]=(1-e^{-p\mu})/p`, the purchases of a customer alive at the start."""
    p_safe = np.maximum(p, 1e-300)
    return np.where(p > 1e-12, -np.expm1(-p * mu) / p_safe, mu)


def bgnbd_conditional_expected_transactions(
    t: float,
    x: np.ndarray,
    t_x: np.ndarray,
    big_t: np.ndarray,
    r: float,
    alpha: float,
    a: float,
    b: float,
) -> np.ndarray:
    """BG/NBD expected number of purchases in ``(T, T + t]`` given the history ``(x, t_x, T)``.

    Parameters
    ----------
    t : float
        Window length (same unit as ``alpha``, ``t_x`` and ``T``).
    x : numpy.ndarray
        Number of repeat purchases observed.
    t_x : numpy.ndarray
        Time of the last purchase since the first one.
    big_t : numpy.ndarray
        Time since the first purchase at the start of the window.
    r, alpha, a, b : float
        Population parameters (``alpha`` is the rate of the Gamma, ``a > 1``).

    Returns
    -------
    numpy.ndarray
        Conditional expectation (Fader, Hardie & Lee 2005, eq. 10).
    """
    if a <= 1:
        raise ValueError("the BG/NBD conditional expectation needs a > 1")
    x = np.asarray(x, dtype=np.float64)
    t_x = np.asarray(t_x, dtype=np.float64)
    big_t = np.asarray(big_t, dtype=np.float64)
    hyp = hyp2f1(r + x, a - 1.0, a + b + x - 1.0, -t / (alpha + big_t))
    numerator = (a + b + x - 1.0) / (a - 1.0) * (1.0 - hyp)
    log_ratio = (r + x) * (np.log(alpha + big_t) - np.log(alpha + t_x))
    denominator = 1.0 + np.where(
        x > 0, a / np.maximum(b + x - 1.0, 1e-12) * np.exp(np.minimum(log_ratio, 700.0)), 0.0
    )
    return numerator / denominator


def gamma_gamma_conditional_value(
    n_orders: np.ndarray, total_value: np.ndarray, p: float, q: float, gamma: float
) -> np.ndarray:
    """Gamma-Gamma posterior mean order value given ``n`` observed orders summing to ``S``.

    Parameters
    ----------
    n_orders : numpy.ndarray
        Number of observed orders (all of them, the first one included).
    total_value : numpy.ndarray
        Sum of their values.
    p, q, gamma : float
        Population parameters (``q > 1``).

    Returns
    -------
    numpy.ndarray
        ``p * (gamma + S) / (p * n + q - 1)``.
    """
    n = np.asarray(n_orders, dtype=np.float64)
    s = np.asarray(total_value, dtype=np.float64)
    return p * (gamma + s) / (p * n + q - 1.0)


def read_truth(path: str) -> pl.DataFrame:
    """Read a ``*.truth.parquet`` file written by the generator.

    Parameters
    ----------
    path : str
        Path of the truth file.

    Returns
    -------
    polars.DataFrame
        One row per customer (see the module docstring for the columns).
    """
    return pl.read_parquet(path)


# ---------------------------------------------------------------------------------------------
# Fraction of the achievable R²
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AchievableR2:
    """A model's R² on the truth window next to the oracle's (and Bayes-optimal's) R².

    ``fraction`` = ``model_r2 / oracle_r2``: 1.0 means the model is as good as knowing every
    customer's latent parameters. ``fraction_of_bayes`` (``bgnbd`` only) compares with the best
    possible prediction from observable history, the fairer yardstick.
    """

    model_r2: float
    oracle_r2: float
    bayes_r2: float | None
    fraction: float
    fraction_of_bayes: float | None
    n_customers: int
    n_missing_predictions: int

    def to_dict(self) -> dict[str, float | int | None]:
        """JSON-safe dictionary."""
        return asdict(self)


def _r2(y: np.ndarray, p: np.ndarray) -> float:
    ss_res = float(np.sum((y - p) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")


#: target -> (actual column, oracle column, Bayes-optimal column or None)
TARGETS: dict[str, tuple[str, str, str | None]] = {
    "spend": ("actual_spend", "oracle_expected_spend", "bayes_expected_spend"),
    "products": ("actual_products", "oracle_expected_products", None),
}


def _population(truth: pl.DataFrame, actual: pl.DataFrame | None, target: str) -> pl.DataFrame:
    """Return the customers a model scores at the cutoff: ``_actual, _oracle, _bayes``."""
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}: use 'spend' or 'products'")
    actual_col, oracle_col, bayes_col = TARGETS[target]
    pop = truth.filter(pl.col("in_population")).select(
        "customer_id",
        pl.col(actual_col).cast(pl.Float64).alias("_actual"),
        pl.col(oracle_col).alias("_oracle"),
        (pl.col(bayes_col) if bayes_col else pl.lit(None, dtype=pl.Float64)).alias("_bayes"),
    )
    if actual is None:
        return pop
    if "customer_id" not in actual.columns or len(actual.columns) != 2:
        raise ValueError(f"actual must have two columns: customer_id and the actual {target}")
    value = next(c for c in actual.columns if c != "customer_id")
    return (
        pop.drop("_actual")
        .join(
            actual.select(
                pl.col("customer_id").cast(pl.Utf8),
                pl.col(value).cast(pl.Float64).alias("_actual"),
            ),
            on="customer_id",
            how="left",
        )
        .with_columns(pl.col("_actual").fill_null(0.0))
    )


def oracle_r2(
    truth: pl.DataFrame, actual: pl.DataFrame | None = None, target: str = "spend"
) -> float:
    """R² of the oracle expectation against the actual window outcome.

    Parameters
    ----------
    truth : polars.DataFrame
        Frame from :func:`read_truth`.
    actual : polars.DataFrame, optional
        ``customer_id`` plus one column of the actual outcome in the truth window (e.g. from
        ``retail_clv.features.targets``); default: the truth's own ``actual_*`` column.
    target : str
        ``spend`` (default) or ``products`` (distinct stock codes).

    Returns
    -------
    float
        The R² on the customers with a purchase before the cutoff.
    """
    pop = _population(truth, actual, target)
    return _r2(pop["_actual"].to_numpy(), pop["_oracle"].to_numpy())


def fraction_of_achievable_r2(
    model_r2: float,
    truth: pl.DataFrame,
    actual: pl.DataFrame | None = None,
    target: str = "spend",
) -> float:
    """Model R² divided by the oracle R² on the same window and population.

    Parameters
    ----------
    model_r2 : float
        R² of the model's predictions in the truth window (population: customers with a
        purchase before the cutoff).
    truth : polars.DataFrame
        Frame from :func:`read_truth`.
    actual : polars.DataFrame, optional
        See :func:`oracle_r2`.
    target : str
        ``spend`` (default) or ``products``.

    Returns
    -------
    float
        ``model_r2 / oracle_r2``.
    """
    return model_r2 / oracle_r2(truth, actual, target)


def achievable_r2(
    truth: pl.DataFrame,
    predictions: pl.DataFrame | Mapping[str, float],
    actual: pl.DataFrame | None = None,
    target: str = "spend",
) -> AchievableR2:
    """Score predictions against the truth window: model, oracle and Bayes-optimal R².

    Parameters
    ----------
    truth : polars.DataFrame
        Frame from :func:`read_truth`; its window (``cutoff``, ``horizon_days``) must be the one
        the predictions were made for.
    predictions : polars.DataFrame or mapping
        ``customer_id`` plus one numeric column of predictions, or ``{customer_id: value}``.
        Customers of the population without a prediction count as predicted 0.
    actual : polars.DataFrame, optional
        See :func:`oracle_r2`.
    target : str
        ``spend`` (default) or ``products`` (no Bayes-optimal value for products).

    Returns
    -------
    AchievableR2
        The R² values and ``fraction = model_r2 / oracle_r2``.

    Examples
    --------
    >>> truth = read_truth("data/demo/online_retail_synthetic.csv.truth.parquet")  # doctest: +SKIP
    >>> achievable_r2(truth, preds.select("customer_id", "pred")).fraction  # doctest: +SKIP
    """
    if isinstance(predictions, Mapping):
        predictions = pl.DataFrame(
            {"customer_id": list(predictions), "predicted": list(predictions.values())}
        )
    if "customer_id" not in predictions.columns or len(predictions.columns) != 2:
        raise ValueError(
            f"predictions must have two columns: customer_id and the predicted {target}"
        )
    value = next(c for c in predictions.columns if c != "customer_id")
    pop = _population(truth, actual, target)
    joined = pop.join(
        predictions.select(
            pl.col("customer_id").cast(pl.Utf8),
            pl.col(value).cast(pl.Float64).alias("_predicted"),
        ),
        on="customer_id",
        how="left",
    )
    n_missing = int(joined["_predicted"].null_count())
    y = joined["_actual"].to_numpy()
    model_r2 = _r2(y, joined["_predicted"].fill_null(0.0).to_numpy())
    o_r2 = _r2(y, joined["_oracle"].to_numpy())
    bayes = joined["_bayes"]
    b_r2 = _r2(y, bayes.to_numpy()) if bayes.null_count() == 0 and len(bayes) else None
    return AchievableR2(
        model_r2=model_r2,
        oracle_r2=o_r2,
        bayes_r2=b_r2,
        fraction=model_r2 / o_r2,
        fraction_of_bayes=None if b_r2 is None else model_r2 / b_r2,
        n_customers=joined.height,
        n_missing_predictions=n_missing,
    )
