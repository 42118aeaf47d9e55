"""Altair chart builders: pure functions from DataFrames (see ``frames.py``) to charts.

Charts embed their data, so each builder keeps it small: histograms are binned here in
pandas/NumPy, and the scatter plot draws at most :data:`MAX_POINTS` customers (the largest
predictions plus a fixed random sample, said so in its subtitle).
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from retail_clv.dashboard.formatting import DEFAULT_CURRENCY
from retail_clv.errors import count

#: Largest number of points drawn in a scatter plot (Altair embeds the data in the page).
MAX_POINTS = 4000
#: Customers with the largest predictions always drawn in a sampled scatter plot (per model).
KEEP_TOP = 50

MODEL_COLUMNS = {
    "Model 1": "predicted_spend_30d_model1",
    "Model 2": "predicted_spend_30d_model2",
}

_HEIGHT = 300

#: What the builders return: a single, layered or faceted Altair chart.
AnyChart = alt.Chart | alt.LayerChart | alt.FacetChart


def _money(currency: str) -> str:
    return f" ({currency})" if currency else ""


def rejection_reasons_chart(reasons: pd.DataFrame) -> AnyChart:
    """Horizontal bar chart of rejected rows per reason.

    Parameters
    ----------
    reasons : pandas.DataFrame
        Columns ``reason`` and ``rows`` (:func:`frames.reason_frame`).

    Returns
    -------
    altair.Chart
        One bar per reason, longest first, labelled with its count.
    """
    base = alt.Chart(reasons).encode(
        y=alt.Y(
            "reason:N", sort="-x", title=None, axis=alt.Axis(labelLimit=260, labelOverlap=False)
        ),
        x=alt.X("rows:Q", title="Rejected rows"),
        tooltip=[alt.Tooltip("reason:N", title="Reason"), alt.Tooltip("rows:Q", format=",")],
    )
    bars = base.mark_bar(color="#d62728")
    labels = base.mark_text(align="left", dx=3).encode(text=alt.Text("rows:Q", format=","))
    return (bars + labels).properties(title="Why rows were rejected", height=alt.Step(24))


def spend_histogram_frame(
    predictions: pd.DataFrame, column: str, bins: int = 30, clip_quantile: float = 0.99
) -> pd.DataFrame:
    """Bin predicted spend for a histogram (the long tail is folded into the last bar).

    Parameters
    ----------
    predictions : pandas.DataFrame
        Predictions table.
    column : str
        Column to bin, e.g. ``"predicted_spend_30d_model1"``.
    bins : int, default 30
        Number of bins.
    clip_quantile : float, default 0.99
        Values above this quantile are counted in the last bin so the few biggest
        customers do not squash the chart.

    Returns
    -------
    pandas.DataFrame
        Columns ``bin_start``, ``bin_end``, ``customers``; the counts sum to the number of
        non-missing values.
    """
    values = predictions[column].dropna().to_numpy(dtype=float)
    if values.size == 0:
        return pd.DataFrame({"bin_start": [], "bin_end": [], "customers": []})
    upper = float(np.quantile(values, clip_quantile))
    lower = float(values.min())
    if upper <= lower:
        upper = lower + 1.0
    counts, edges = np.histogram(np.clip(values, lower, upper), bins=bins, range=(lower, upper))
    return pd.DataFrame({"bin_start": edges[:-1], "bin_end": edges[1:], "customers": counts})


def spend_distribution_chart(
    predictions: pd.DataFrame, column: str, currency: str = DEFAULT_CURRENCY
) -> AnyChart:
    """Histogram of predicted 30-day spend per customer.

    Parameters
    ----------
    predictions : pandas.DataFrame
        Predictions table.
    column : str
        Which model's prediction to plot.
    currency : str, default "£"
        Currency symbol for the axis title.

    Returns
    -------
    altair.Chart
        Bars of customers per spend bin (top 1% folded into the last bar).
    """
    hist = spend_histogram_frame(predictions, column)
    return (
        alt.Chart(hist)
        .mark_bar()
        .encode(
            x=alt.X("bin_start:Q", bin="binned", title=f"Predicted 30-day spend{_money(currency)}"),
            x2="bin_end:Q",
            y=alt.Y("customers:Q", title="Customers"),
            tooltip=[
                alt.Tooltip("bin_start:Q", format=",.2f", title="From"),
                alt.Tooltip("bin_end:Q", format=",.2f", title="To"),
                alt.Tooltip("customers:Q", format=","),
            ],
        )
        .properties(
            title="Distribution of predicted 30-day spend (top 1% in the last bar)",
            height=_HEIGHT,
        )
    )


def top_customers_chart(
    predictions: pd.DataFrame, column: str, n: int = 20, currency: str = DEFAULT_CURRENCY
) -> AnyChart:
    """Bar chart of the ``n`` customers with the largest predicted spend.

    Parameters
    ----------
    predictions : pandas.DataFrame
        Predictions table.
    column : str
        Which model's prediction ranks the customers.
    n : int, default 20
        Number of customers.
    currency : str, default "£"
        Currency symbol for the axis title.

    Returns
    -------
    altair.Chart
        One bar per customer, largest first.
    """
    top = predictions.nlargest(n, column)[["customer_id", "country", column]].rename(
        columns={column: "spend"}
    )
    top["customer_id"] = top["customer_id"].astype(str)
    top["country"] = top["country"].astype(str)
    return (
        alt.Chart(top)
        .mark_bar()
        .encode(
            y=alt.Y(
                "customer_id:N",
                sort="-x",
                title="Customer",
                axis=alt.Axis(labelOverlap=False, labelLimit=160),
            ),
            x=alt.X("spend:Q", title=f"Predicted 30-day spend{_money(currency)}"),
            tooltip=[
                alt.Tooltip("customer_id:N", title="Customer"),
                alt.Tooltip("country:N", title="Country"),
                alt.Tooltip("spend:Q", format=",.2f", title="Predicted spend"),
            ],
        )
        .properties(
            title=f"Top {count(n, 'customer')} by predicted spend",
            height=alt.Step(16),
        )
    )


def model_scatter_chart(predictions: pd.DataFrame, currency: str = DEFAULT_CURRENCY) -> AnyChart:
    """Scatter plot of Model 1's against Model 2's prediction, one point per customer.

    Parameters
    ----------
    predictions : pandas.DataFrame
        Predictions table.
    currency : str, default "£"
        Currency symbol for the axis titles.

    Returns
    -------
    altair.Chart
        Points plus the y = x diagonal; at most :data:`MAX_POINTS` customers. When there
        are more, the :data:`KEEP_TOP` largest of each model are kept and the rest is a
        seeded random sample (said in the subtitle).
    """
    points = predictions[["customer_id", *MODEL_COLUMNS.values()]].dropna()
    subtitle = "Each point is a customer; dashed line: both models agree"
    if len(points) > MAX_POINTS:
        subtitle = (
            f"{MAX_POINTS:,} of {len(points):,} customers: the {KEEP_TOP} largest of each "
            "model plus a random sample"
        )
        columns = list(MODEL_COLUMNS.values())
        top = pd.concat([points.nlargest(KEEP_TOP, c) for c in columns]).drop_duplicates()
        rest = points.drop(index=top.index)
        points = pd.concat([top, rest.sample(MAX_POINTS - len(top), random_state=0)])
    points = points.assign(customer_id=points["customer_id"].astype(str))
    top = float(points[list(MODEL_COLUMNS.values())].to_numpy().max()) if len(points) else 1.0
    diagonal = pd.DataFrame({"a": [0.0, top], "b": [0.0, top]})
    scatter = (
        alt.Chart(points)
        .mark_circle(size=28, opacity=0.55)
        .encode(
            x=alt.X("predicted_spend_30d_model1:Q", title=f"Model 1{_money(currency)}"),
            y=alt.Y("predicted_spend_30d_model2:Q", title=f"Model 2{_money(currency)}"),
            tooltip=[
                alt.Tooltip("customer_id:N", title="Customer"),
                alt.Tooltip("predicted_spend_30d_model1:Q", format=",.2f", title="Model 1"),
                alt.Tooltip("predicted_spend_30d_model2:Q", format=",.2f", title="Model 2"),
            ],
        )
    )
    line = alt.Chart(diagonal).mark_line(color="grey", strokeDash=[4, 4]).encode(x="a:Q", y="b:Q")
    title = alt.TitleParams("Model 1 vs Model 2", subtitle=subtitle, anchor="start")
    return (line + scatter).properties(title=title, height=_HEIGHT)


def country_spend_chart(
    predictions: pd.DataFrame, column: str, n: int = 15, currency: str = DEFAULT_CURRENCY
) -> AnyChart:
    """Bar chart of total predicted spend per country (the ``n`` largest countries).

    Parameters
    ----------
    predictions : pandas.DataFrame
        Predictions table with a ``country`` column.
    column : str
        Which model's prediction to sum.
    n : int, default 15
        Number of countries shown.
    currency : str, default "£"
        Currency symbol for the axis title.

    Returns
    -------
    altair.Chart
        One bar per country with the total and the number of customers in the tooltip.
    """
    by_country = (
        predictions.assign(country=predictions["country"].astype(str).fillna("Unknown"))
        .groupby("country", as_index=False)
        .agg(spend=(column, "sum"), customers=("customer_id", "count"))
        .nlargest(n, "spend")
    )
    return (
        alt.Chart(by_country)
        .mark_bar(color="#2ca02c")
        .encode(
            y=alt.Y(
                "country:N",
                sort="-x",
                title=None,
                axis=alt.Axis(labelLimit=200, labelOverlap=False),
            ),
            x=alt.X("spend:Q", title=f"Total predicted 30-day spend{_money(currency)}"),
            tooltip=[
                alt.Tooltip("country:N", title="Country"),
                alt.Tooltip("spend:Q", format=",.2f", title="Predicted spend"),
                alt.Tooltip("customers:Q", format=",", title="Customers"),
            ],
        )
        .properties(title="Predicted spend by country", height=alt.Step(18))
    )


def history_chart(history: pd.DataFrame, currency: str = DEFAULT_CURRENCY) -> AnyChart:
    """Monthly spend of one customer (bars) with the number of orders in the tooltip.

    Parameters
    ----------
    history : pandas.DataFrame
        Columns ``month`` (datetime), ``spend``, ``orders`` (:func:`frames.history_frame`).
    currency : str, default "£"
        Currency symbol for the axis title.

    Returns
    -------
    altair.Chart
        One bar per month.
    """
    return (
        alt.Chart(history)
        .mark_bar()
        .encode(
            x=alt.X("yearmonth(month):T", title="Month"),
            y=alt.Y("spend:Q", title=f"Spend{_money(currency)}"),
            tooltip=[
                alt.Tooltip("yearmonth(month):T", title="Month"),
                alt.Tooltip("spend:Q", format=",.2f", title="Spend"),
                alt.Tooltip("orders:Q", format=",", title="Orders"),
            ],
        )
        .properties(title="Spend per month", height=_HEIGHT)
    )


def calibration_chart(calibration: pd.DataFrame, currency: str = DEFAULT_CURRENCY) -> AnyChart:
    """Decile calibration: mean predicted vs mean actual spend per decile, per model.

    Parameters
    ----------
    calibration : pandas.DataFrame
        Columns ``model``, ``decile``, ``series``, ``mean_spend``
        (:func:`frames.calibration_frame`).
    currency : str, default "£"
        Currency symbol for the axis title.

    Returns
    -------
    altair.Chart
        Lines with points, one panel per model (predicted vs actual by decile).
    """
    return (
        alt.Chart(calibration)
        .mark_line(point=True)
        .encode(
            x=alt.X(
                "decile:O",
                title="Decile of predicted spend (1 = highest)",
                axis=alt.Axis(labelAngle=0),
            ),
            y=alt.Y("mean_spend:Q", title=f"Mean 30-day spend{_money(currency)}"),
            color=alt.Color("series:N", title=None),
            tooltip=[
                alt.Tooltip("model:N"),
                alt.Tooltip("decile:O"),
                alt.Tooltip("series:N"),
                alt.Tooltip("mean_spend:Q", format=",.2f", title="Mean spend"),
            ],
        )
        .properties(width=260, height=220)
        .facet(column=alt.Column("model:N", title=None))
        .properties(title="Decile calibration (holdout)")
    )


def gain_curve_chart(gain: pd.DataFrame) -> AnyChart:
    """Cumulative gain: share of next-30-day spend captured by the top share of customers.

    Parameters
    ----------
    gain : pandas.DataFrame
        Columns ``model``, ``fraction_customers``, ``fraction_spend``
        (:func:`frames.gain_frame`).

    Returns
    -------
    altair.Chart
        One line per model plus the random-targeting diagonal.
    """
    diagonal = pd.DataFrame({"x": [0.0, 1.0], "y": [0.0, 1.0]})
    lines = (
        alt.Chart(gain)
        .mark_line()
        .encode(
            x=alt.X(
                "fraction_customers:Q",
                title="Share of customers (ranked)",
                axis=alt.Axis(format="%"),
            ),
            y=alt.Y("fraction_spend:Q", title="Share of actual spend", axis=alt.Axis(format="%")),
            color=alt.Color("model:N", title=None),
            tooltip=[
                alt.Tooltip("model:N"),
                alt.Tooltip("fraction_customers:Q", format=".1%", title="Customers"),
                alt.Tooltip("fraction_spend:Q", format=".1%", title="Spend"),
            ],
        )
    )
    random = alt.Chart(diagonal).mark_line(color="grey", strokeDash=[4, 4]).encode(x="x:Q", y="y:Q")
    return (random + lines).properties(title="Gain curve (holdout)", height=_HEIGHT)


def feature_importance_chart(importance: pd.DataFrame, n: int = 20) -> AnyChart:
    """Bar chart of the ``n`` most important features.

    Parameters
    ----------
    importance : pandas.DataFrame
        Columns ``feature`` and ``importance`` (:func:`frames.importance_frame`).
    n : int, default 20
        Number of features shown.

    Returns
    -------
    altair.Chart
        One bar per feature, most important first.
    """
    top = importance.nlargest(n, "importance")
    return (
        alt.Chart(top)
        .mark_bar(color="#9467bd")
        .encode(
            y=alt.Y(
                "feature:N",
                sort="-x",
                title=None,
                axis=alt.Axis(labelLimit=220, labelOverlap=False),
            ),
            x=alt.X("importance:Q", title="Importance"),
            tooltip=[alt.Tooltip("feature:N"), alt.Tooltip("importance:Q", format=".4f")],
        )
        .properties(title="Feature importance", height=alt.Step(18))
    )
