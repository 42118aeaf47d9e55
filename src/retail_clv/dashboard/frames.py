"""Turn the API's JSON documents into tidy pandas DataFrames for tables and charts.

Pure functions only (no Streamlit, no HTTP), so the pages stay thin and the shaping is
unit-tested. Nothing here computes a prediction or a metric: the numbers come from the API.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

#: Columns (and order) of the downloadable predictions CSV — the same as ``clv predict``.
CSV_COLUMNS: list[str] = [
    "customer_id",
    "predicted_spend_30d_model1",
    "predicted_spend_30d_model2",
    "predicted_products_30d",
    "r2_model1",
    "r2_model2",
]

#: Columns of the predictions table (CSV columns plus the country).
PREDICTION_COLUMNS: list[str] = [CSV_COLUMNS[0], "country", *CSV_COLUMNS[1:]]

_NUMERIC_PREDICTION_COLUMNS = CSV_COLUMNS[1:]

#: Readable names of the models and baselines in the API's metrics document.
MODEL_LABELS: dict[str, str] = {
    "model1": "Model 1",
    "model2": "Model 2",
    "mean": "Baseline: mean",
    "run_rate": "Baseline: run rate",
    "bgnbd_gg": "Baseline: BG/NBD + Gamma-Gamma",
    "perfect": "Perfect ranking",
}

#: Metric keys shown side by side on the Models page, with their column titles.
METRIC_COLUMNS: dict[str, str] = {
    "r2": "R²",
    "mae": "MAE",
    "rmse": "RMSE",
    "gini": "Gini",
    "top10_capture": "Top-10% capture",
    "spearman": "Spearman",
}

# A cell starting with one of these is run as a formula by spreadsheet programs.
_FORMULA_PREFIX = r"^[=+\-@\t\r]"


def predictions_frame(predictions: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Build the predictions table from the API's ``predictions`` list.

    Parameters
    ----------
    predictions : sequence of mapping
        Items of ``POST /pipeline``'s ``predictions``.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`PREDICTION_COLUMNS` (missing ones filled with NA), ``customer_id``
        and ``country`` as text, the others as floats; sorted by Model 1's prediction,
        largest first.
    """
    frame = pd.DataFrame(list(predictions))
    for column in PREDICTION_COLUMNS:
        if column not in frame.columns:
            frame[column] = pd.NA
    frame = frame[PREDICTION_COLUMNS].copy()
    frame["customer_id"] = frame["customer_id"].astype("string")
    frame["country"] = frame["country"].astype("string")
    for column in _NUMERIC_PREDICTION_COLUMNS:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    return frame.sort_values(
        "predicted_spend_30d_model1", ascending=False, kind="stable", ignore_index=True
    )


def filter_predictions(frame: pd.DataFrame, query: str) -> pd.DataFrame:
    """Keep the rows whose customer id contains ``query`` (literal, case-insensitive).

    Parameters
    ----------
    frame : pandas.DataFrame
        A :func:`predictions_frame`.
    query : str
        Text typed in the search box; blank keeps every row.

    Returns
    -------
    pandas.DataFrame
        The matching rows.
    """
    query = query.strip()
    if not query:
        return frame
    mask = frame["customer_id"].str.contains(query, case=False, regex=False, na=False)
    return frame[mask.astype(bool)]


def neutralise_formulas(values: pd.Series) -> pd.Series:
    """Prefix text cells that a spreadsheet would run as a formula with a quote.

    Cells starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return become
    ``'=...`` (OWASP's CSV-injection advice); other cells are unchanged.

    Parameters
    ----------
    values : pandas.Series
        Text values.

    Returns
    -------
    pandas.Series
        The neutralised values.
    """
    text = values.astype("string")
    risky = text.str.contains(_FORMULA_PREFIX, regex=True, na=False).astype(bool)
    return text.where(~risky, "'" + text)


def csv_columns(horizon_days: int = 30) -> list[str]:
    """Name the download's columns for a run's horizon (as ``clv predict`` names them)."""
    return [c.replace("_30d", f"_{horizon_days}d") for c in CSV_COLUMNS]


def predictions_csv(frame: pd.DataFrame, horizon_days: int = 30) -> bytes:
    """Serialise predictions as the download CSV (columns :func:`csv_columns`, UTF-8).

    Parameters
    ----------
    frame : pandas.DataFrame
        A :func:`predictions_frame` (extra columns such as ``country`` are dropped).
    horizon_days : int, default 30
        The run's horizon, written into the column names like ``clv predict`` does
        (:data:`CSV_COLUMNS` at 30 days).

    Returns
    -------
    bytes
        The CSV, one row per customer in customer-id order, spend and products rounded to
        cents and R² to 4 decimals, text cells neutralised against formula injection: the
        same file ``clv predict`` and the API's ``text/csv`` answer write for these scores.
    """
    out = frame[CSV_COLUMNS].sort_values("customer_id", kind="stable").copy()
    for column in CSV_COLUMNS[1:]:
        out[column] = out[column].round(4 if column.startswith("r2_") else 2)
    out["customer_id"] = neutralise_formulas(out["customer_id"])
    out.columns = csv_columns(horizon_days)
    return out.to_csv(index=False, lineterminator="\n").encode("utf-8")


def reason_frame(reason_counts: Mapping[str, int]) -> pd.DataFrame:
    """Tabulate rejection reasons, most frequent first.

    Parameters
    ----------
    reason_counts : mapping of str to int
        ``report.reason_counts`` of the API (a row may count under several reasons).

    Returns
    -------
    pandas.DataFrame
        Columns ``reason`` (text) and ``rows`` (int); reasons with zero rows are dropped.
    """
    frame = pd.DataFrame(
        {"reason": list(reason_counts.keys()), "rows": list(reason_counts.values())}
    ).astype({"reason": "string", "rows": "int64"})
    frame = frame[frame["rows"] > 0]
    return frame.sort_values(["rows", "reason"], ascending=[False, True], ignore_index=True)


def rejected_sample_frame(sample: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Tabulate the sample of rejected rows, reasons first.

    Parameters
    ----------
    sample : sequence of mapping
        ``rejected_sample`` of ``POST /pipeline``: ``row_number, reasons, raw_*...``.

    Returns
    -------
    pandas.DataFrame
        ``row_number`` and ``reasons`` (``|`` replaced by ``, ``) first, then the raw
        values with their ``raw_`` prefix removed; ``source_file`` and all-empty columns
        are dropped.
    """
    frame = pd.DataFrame(list(sample))
    if frame.empty:
        return pd.DataFrame({"row_number": [], "reasons": []})
    # the server-side path of the upload says nothing to the user; empty columns neither
    frame = frame.drop(columns=["source_file"], errors="ignore").dropna(axis=1, how="all")
    if "reasons" in frame.columns:
        frame["reasons"] = frame["reasons"].astype("string").str.replace("|", ", ", regex=False)
    first = [c for c in ("row_number", "reasons") if c in frame.columns]
    rest = [c for c in frame.columns if c not in first]
    frame = frame[first + rest]
    return frame.rename(columns={c: c.removeprefix("raw_") for c in rest})


#: Column titles of the store's ingest runs table (Full Pipeline page).
INGEST_RUN_COLUMNS: dict[str, str] = {
    "run_id": "Run",
    "source_file": "File",
    "started_at": "Started (UTC)",
    "status": "Status",
    "rows_read": "Rows read",
    "rows_loaded": "Loaded",
    "rows_rejected": "Rejected",
    "rows_duplicate": "Duplicates",
}


def ingest_runs_frame(runs: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Tabulate the store's ingest runs, in the API's order (newest first).

    Parameters
    ----------
    runs : sequence of mapping
        ``runs`` of ``GET /ingest-runs``.

    Returns
    -------
    pandas.DataFrame
        The columns of :data:`INGEST_RUN_COLUMNS`, with their titles; the start time is cut to
        the second (``YYYY-MM-DD HH:MM:SS``).
    """
    frame = pd.DataFrame(list(runs), columns=list(INGEST_RUN_COLUMNS))
    frame["started_at"] = frame["started_at"].astype("string").str.replace("T", " ").str[:19]
    return frame.rename(columns=INGEST_RUN_COLUMNS)


def metrics_frame(metrics: Mapping[str, Any]) -> pd.DataFrame:
    """Put the spend models' and the baselines' metrics side by side.

    Parameters
    ----------
    metrics : mapping
        The metrics document of a run (``models`` and ``baselines`` sections).

    Returns
    -------
    pandas.DataFrame
        One row per model (Model 1, Model 2, then the baselines), a ``Model`` column and
        one column per entry of :data:`METRIC_COLUMNS` (NaN where the API gave none).
    """
    rows: list[dict[str, Any]] = []
    sections = [(key, metrics.get("models", {}).get(key)) for key in ("model1", "model2")] + list(
        (metrics.get("baselines") or {}).items()
    )
    for key, values in sections:
        if not isinstance(values, Mapping):
            continue
        row: dict[str, Any] = {"Model": MODEL_LABELS.get(key, key)}
        for metric, title in METRIC_COLUMNS.items():
            value = values.get(metric)
            row[title] = float(value) if isinstance(value, int | float) else float("nan")
        rows.append(row)
    return pd.DataFrame(rows, columns=["Model", *METRIC_COLUMNS.values()])


def gaps_frame(metrics: Mapping[str, Any]) -> pd.DataFrame:
    """Each model's R² and Gini difference to each baseline, with its 90% bootstrap interval.

    Parameters
    ----------
    metrics : mapping
        The metrics document of a run; its ``vs_baselines`` section (absent from runs trained
        before the intervals existed) gives ``{model: {baseline: {"r2": gap, "gini": gap}}}``.

    Returns
    -------
    pandas.DataFrame
        Columns ``Comparison``, ``R² difference``, ``R² interval``, ``Gini difference``,
        ``Gini interval`` (intervals as text, e.g. ``-0.054 … +0.150``); empty without data.
    """
    columns = ["Comparison", "R² difference", "R² interval", "Gini difference", "Gini interval"]
    rows: list[dict[str, Any]] = []
    section = metrics.get("vs_baselines")
    for model, by_baseline in section.items() if isinstance(section, Mapping) else []:
        if not isinstance(by_baseline, Mapping):
            continue
        for baseline, gaps in by_baseline.items():
            try:
                r2, gini = gaps["r2"], gaps["gini"]
                row = {
                    "Comparison": f"{MODEL_LABELS.get(model, model)} − "
                    f"{str(MODEL_LABELS.get(baseline, baseline)).removeprefix('Baseline: ')}",
                    "R² difference": float(r2["delta"]),
                    "R² interval": f"{float(r2['low']):+.3f} … {float(r2['high']):+.3f}",
                    "Gini difference": float(gini["delta"]),
                    "Gini interval": f"{float(gini['low']):+.3f} … {float(gini['high']):+.3f}",
                }
            except (KeyError, TypeError, ValueError):
                continue  # a malformed entry is skipped, never a crash of the page
            rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def calibration_frame(metrics: Mapping[str, Any]) -> pd.DataFrame:
    """Reshape the decile calibration tables into long form for a chart.

    Parameters
    ----------
    metrics : mapping
        The metrics document of a run (``calibration`` section).

    Returns
    -------
    pandas.DataFrame
        Columns ``model`` (label), ``decile``, ``series`` (``"Predicted"``/``"Actual"``),
        ``mean_spend``.
    """
    frames = []
    for key, table in (metrics.get("calibration") or {}).items():
        part = pd.DataFrame(list(table))
        if part.empty:
            continue
        part["model"] = MODEL_LABELS.get(key, key)
        frames.append(part)
    if not frames:
        return pd.DataFrame(columns=["model", "decile", "series", "mean_spend"])
    wide = pd.concat(frames, ignore_index=True)
    long = wide.melt(
        id_vars=["model", "decile"],
        value_vars=["mean_predicted", "mean_actual"],
        var_name="series",
        value_name="mean_spend",
    )
    long["series"] = long["series"].map({"mean_predicted": "Predicted", "mean_actual": "Actual"})
    return long


def gain_frame(metrics: Mapping[str, Any]) -> pd.DataFrame:
    """Reshape the gain curves into long form for a chart.

    Parameters
    ----------
    metrics : mapping
        The metrics document of a run (``gain_curve`` section).

    Returns
    -------
    pandas.DataFrame
        Columns ``model`` (label), ``fraction_customers``, ``fraction_spend``.
    """
    frames = []
    for key, points in (metrics.get("gain_curve") or {}).items():
        part = pd.DataFrame(list(points))
        if part.empty:
            continue
        part["model"] = MODEL_LABELS.get(key, key)
        frames.append(part[["model", "fraction_customers", "fraction_spend"]])
    if not frames:
        return pd.DataFrame(columns=["model", "fraction_customers", "fraction_spend"])
    return pd.concat(frames, ignore_index=True)


def importance_frame(feature_importance: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Tabulate feature importances, largest first.

    Parameters
    ----------
    feature_importance : sequence of mapping
        ``feature_importance`` of a run: ``{"feature", "importance"}`` items.

    Returns
    -------
    pandas.DataFrame
        Columns ``feature`` and ``importance``.
    """
    frame = pd.DataFrame(list(feature_importance), columns=["feature", "importance"])
    frame["importance"] = pd.to_numeric(frame["importance"], errors="coerce")
    return frame.sort_values("importance", ascending=False, ignore_index=True)


def history_frame(history: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Tabulate a customer's monthly history.

    Parameters
    ----------
    history : sequence of mapping
        ``history`` of ``GET /customers/{id}``: ``{"month": "2011-01", "spend", "orders"}``.

    Returns
    -------
    pandas.DataFrame
        Columns ``month`` (first day of the month, datetime), ``spend``, ``orders``.
    """
    frame = pd.DataFrame(list(history), columns=["month", "spend", "orders"])
    frame["month"] = pd.to_datetime(frame["month"], format="%Y-%m")
    frame["spend"] = pd.to_numeric(frame["spend"], errors="coerce")
    frame["orders"] = pd.to_numeric(frame["orders"], errors="coerce")
    return frame.sort_values("month", ignore_index=True)


def features_frame(features: Mapping[str, Any]) -> pd.DataFrame:
    """Tabulate a customer's features in the API's order.

    Parameters
    ----------
    features : mapping of str to value
        ``features`` of ``GET /customers/{id}/features``.

    Returns
    -------
    pandas.DataFrame
        Columns ``feature`` and ``value`` (text, so mixed types display cleanly).
    """
    return pd.DataFrame(
        {
            "feature": list(features.keys()),
            "value": [_display_value(v) for v in features.values()],
        }
    )


def _display_value(value: Any) -> str:
    """Render one feature value for display (floats to 4 significant decimals)."""
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.2f}"
    return "" if value is None else str(value)
