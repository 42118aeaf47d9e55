"""Model card of a training run: Markdown plus PNG plots, rendered from the run's metadata.

Everything here is a pure function of the ``metadata.json`` dict written by
:func:`retail_clv.models.registry.save_run` (metrics in the ``clv backtest --json`` shape), so a
card can be re-rendered from any saved run. Plots are drawn with matplotlib's object API on
the Agg canvas (no pyplot, no global backend switch), which is safe in servers and threads.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from retail_clv.errors import count, days

__all__ = [
    "CARD_FILE",
    "PLOT_FILES",
    "metrics_rows",
    "render_model_card",
    "write_model_card",
    "write_plots",
]

CARD_FILE = "model_card.md"

#: Plot kind -> file name inside the run directory.
PLOT_FILES: dict[str, str] = {
    "calibration": "calibration.png",
    "gain_curve": "gain_curve.png",
    "feature_importance": "feature_importance.png",
    "model_vs_baseline": "model_vs_baseline.png",
}

#: (group in the metrics dict, key, label) in display order.
_ROWS: list[tuple[str, str, str]] = [
    ("models", "model1", "Model 1"),
    ("models", "model2", "Model 2"),
    ("baselines", "mean", "Baseline: train mean"),
    ("baselines", "run_rate", "Baseline: run-rate (365 d)"),
    ("baselines", "bgnbd_gg", "Baseline: BG/NBD + Gamma-Gamma"),
]
_METRIC_COLUMNS: list[tuple[str, str]] = [
    ("r2", "R²"),
    ("mae", "MAE"),
    ("rmse", "RMSE"),
    ("spearman", "Spearman"),
    ("gini", "Gini"),
    ("top10_capture", "Top-10% capture"),
]
_TOP_FEATURES = 15


def _fmt(value: Any, digits: int = 3) -> str:
    """Format a number for a Markdown table (``n/a`` for missing or non-finite)."""
    if value is None or isinstance(value, bool):
        return "n/a"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(number):
        return "n/a"
    if number.is_integer() and abs(number) >= 1000:
        return f"{int(number):,}"
    return f"{number:,.{digits}f}"


def _window(as_of: Any, horizon: Any) -> str:
    """Return ``[as_of, as_of + horizon)`` with the end date spelled out when possible."""
    try:
        start = dt.date.fromisoformat(str(as_of))
        end = start + dt.timedelta(days=int(horizon))
    except (TypeError, ValueError):
        return f"[{as_of}, {as_of} + {horizon} days)"
    return f"[{start.isoformat()}, {end.isoformat()})"


def _escape(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def metrics_rows(metrics: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Flatten a metrics dict into one row per model / baseline, in display order.

    Parameters
    ----------
    metrics : dict or None
        Held-out metrics in the ``clv backtest --json`` shape.

    Returns
    -------
    list of dict
        ``{"key", "label", "r2", "mae", "rmse", "spearman", "gini", "top10_capture",
        "failed_reason"}`` for every model or baseline present in ``metrics``; a baseline that
        could not be fitted (``{"failed": True, "reason": ...}``) has ``None`` metrics and its
        reason in ``failed_reason``.
    """
    rows: list[dict[str, Any]] = []
    for group, key, label in _ROWS:
        values = ((metrics or {}).get(group) or {}).get(key)
        if not values:
            continue
        failed = bool(values.get("failed"))
        rows.append(
            {
                "key": key,
                "label": f"{label} (failed)" if failed else label,
                **{m: None if failed else values.get(m) for m, _ in _METRIC_COLUMNS},
                "failed_reason": values.get("reason") if failed else None,
            }
        )
    return rows


_GAP_LABELS = {
    "model1": "Model 1",
    "model2": "Model 2",
    "run_rate": "run-rate",
    "bgnbd_gg": "BG/NBD + Gamma-Gamma",
}


def _customers(n: Any) -> str:
    """``"1 customer"``, ``"5,714 customers"``; ``"n/a customers"`` when unknown."""
    return f"{_fmt(n, 0)} customers" if n is None else count(int(n), "customer")


def _interval(gap: Mapping[str, Any]) -> str:
    return f"{gap['delta']:+.3f} [{gap['low']:+.3f}, {gap['high']:+.3f}]"


def gap_rows(metrics: Mapping[str, Any] | None) -> list[tuple[str, str, str]]:
    """Each model's R² and Gini gap to each baseline, with its 90% bootstrap interval.

    Parameters
    ----------
    metrics : dict or None
        Held-out metrics with a ``vs_baselines`` block
        (:func:`retail_clv.models.metrics.compare_to_baselines`).

    Returns
    -------
    list of (str, str, str)
        ``("Model 2 − run-rate", "+0.078 [-0.054, +0.150]", "+0.022 [+0.016, +0.028]")``
        rows; empty when the run has no such block.
    """
    rows = []
    for model, by_baseline in ((metrics or {}).get("vs_baselines") or {}).items():
        for baseline, gaps in by_baseline.items():
            label = f"{_GAP_LABELS.get(model, model)} − {_GAP_LABELS.get(baseline, baseline)}"
            rows.append((label, _interval(gaps["r2"]), _interval(gaps["gini"])))
    return rows


def totals_line(metrics: Mapping[str, Any] | None) -> str | None:
    """Word the window's total spend against each model's and classical baseline's sum.

    Returns
    -------
    str or None
        ``None`` for runs without ``totals`` (not evaluated, or saved before they were kept).
    """
    totals = (metrics or {}).get("totals") or {}
    actual = totals.get("actual")
    if not actual:
        return None
    parts = [
        f"{label} {_fmt(totals[key], 0)} ({float(totals[key]) / float(actual):.2f}×)"
        for key, label in (
            ("model1", "Model 1"),
            ("model2", "Model 2"),
            ("run_rate", "run-rate"),
            ("bgnbd_gg", "BG/NBD + Gamma-Gamma"),
        )
        if totals.get(key) is not None
    ]
    return (
        f"Total spend in the window: {_fmt(actual, 0)}; sum of the predictions: "
        + ", ".join(parts)
        + ". A revenue forecast built on the sums is off by these ratios."
    )


def products_lines(metrics: Mapping[str, Any] | None) -> list[str]:
    """One line for the products model's metrics and one for its baselines (none if absent).

    Parameters
    ----------
    metrics : mapping or None
        A run's or a backtest's metrics (``models.products``, ``products_baselines``).

    Returns
    -------
    list of str
        ``"Products model: mae …, spearman …, r2 …"`` and ``"Products baselines: mean (…),
        last window (…)"``; a constant baseline's Spearman is ``n/a``.
    """
    metrics = metrics or {}
    products = (metrics.get("models") or {}).get("products")
    if not products:
        return []

    def listed(values: Mapping[str, Any]) -> str:
        return ", ".join(f"{k} {_fmt(v)}" for k, v in values.items())

    lines = [f"Products model: {listed(products)}"]
    baselines = metrics.get("products_baselines") or {}
    if baselines:
        parts = [f"{name.replace('_', ' ')} ({listed(v)})" for name, v in baselines.items()]
        lines.append("Products baselines: " + "; ".join(parts))
    return lines


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def render_model_card(metadata: Mapping[str, Any], plots: Mapping[str, str] | None = None) -> str:
    """Render the Markdown model card of a run.

    Parameters
    ----------
    metadata : dict
        The run's ``metadata.json`` content.
    plots : dict, optional
        Plot kind -> file name of the PNGs written next to the card (see :data:`PLOT_FILES`);
        only those given are referenced.

    Returns
    -------
    str
        The Markdown text.
    """
    plots = dict(plots or {})
    metrics = metadata.get("metrics") or {}
    config = metadata.get("config") or {}
    fingerprint = metadata.get("data_fingerprint") or {}
    versions = metadata.get("library_versions") or {}
    git = metadata.get("git") or {}
    horizon = metadata.get("horizon_days")
    as_of = metadata.get("as_of")
    lines: list[str] = [f"# Model card — run `{metadata.get('run_id')}`", ""]

    lines += [
        "Predicts each customer's spend (Model 1 and Model 2, two stacking ensembles) and "
        f"number of distinct products (products model) in the {horizon} days after a cutoff "
        "date, from their purchase history strictly before it.",
        "",
        "## Run",
        "",
        f"- Trained at (UTC): {metadata.get('trained_at')}",
        f"- As-of date: {as_of} — training windows end on or before it; the held-out window "
        f"is {_window(as_of, horizon)}",
        f"- Horizon: {days(int(horizon)) if horizon is not None else 'n/a'}",
        f"- Search budget: {config.get('budget', 'n/a')}",
        f"- Git commit: {git.get('commit') or 'unknown'}"
        + (" (uncommitted changes)" if git.get("dirty") else ""),
        "- Libraries: " + ", ".join(f"{k} {v}" for k, v in versions.items()),
        f"- Features ({len(metadata.get('feature_names') or [])}): "
        + ", ".join(f"`{f}`" for f in metadata.get("feature_names") or []),
        "",
        "## Training data",
        "",
    ]
    if config.get("train_rows") is not None:  # what the training time grows with
        lines.append(
            f"- Training rows: {_fmt(config['train_rows'], 0)} (customer × cutoff) from "
            f"{len(config.get('train_cutoffs') or [])} training cutoffs"
            + (
                f" (at most {config['max_train_cutoffs']}, the newest: max_train_cutoffs)"
                if config.get("max_train_cutoffs") is not None
                else " (all history)"
            )
        )
    lines += [f"- {_escape(k)}: {_escape(v)}" for k, v in fingerprint.items()] or ["- n/a"]
    lines.append("")

    lines += ["## Held-out metrics", ""]
    warnings = [str(w) for w in metrics.get("warnings") or []]
    if warnings:
        lines += [*(f"**Warning:** {_escape(w)}" for w in warnings), ""]
    rows = metrics_rows(metrics)
    if rows:
        lines += [
            f"Measured on the held-out window starting {metrics.get('cutoff', as_of)} "
            f"({metrics.get('horizon_days', horizon)} days, "
            f"{_customers(metrics.get('n_customers'))} in the population"
            + (
                f", {100 * float(metrics['buyer_share']):.0f}% of whom bought"
                if metrics.get("buyer_share") is not None
                else ""
            )
            + "). "
            "These are the `r2_model1` / `r2_model2` values attached to every prediction.",
            "",
        ]
        lines += _table(
            ["Model", *(label for _, label in _METRIC_COLUMNS)],
            [[r["label"], *(_fmt(r[m]) for m, _ in _METRIC_COLUMNS)] for r in rows],
        )
        for row in rows:
            if row["failed_reason"]:
                lines += ["", f"{row['label']}: {_escape(row['failed_reason'])}"]
        totals = totals_line(metrics)
        if totals:
            lines += ["", totals]
        products = products_lines(metrics)
        if products:
            lines += ["", "Distinct products in the window.", "", *(f"- {p}" for p in products)]
        gaps = gap_rows(metrics)
        if gaps:
            lines += [
                "",
                "How sure is each comparison? Difference (model minus baseline) and its 90% "
                "interval when the window's customers are resampled (paired bootstrap); an "
                "interval that contains 0 means the data cannot tell the two apart. A few large "
                "buyers usually dominate R², so its intervals are wide.",
                "",
            ]
            lines += _table(["Comparison", "R² difference", "Gini difference"], gaps)
        if "model_vs_baseline" in plots:
            lines += ["", f"![Models vs baselines]({plots['model_vs_baseline']})"]
    else:
        lines.append(
            "Not evaluated: the data does not cover the held-out window after the as-of date, "
            "so no R² is reported for this run (`r2_model1` / `r2_model2` are empty)."
        )
    lines.append("")

    calibration = metrics.get("calibration") or {}
    if calibration:
        lines += ["## Decile calibration", ""]
        lines.append(
            "Customers sorted into ten equal groups by predicted spend (decile 1 = highest); mean "
            "predicted vs mean actual spend in the held-out window."
        )
        for model, table in calibration.items():
            lines += ["", f"**{model}**", ""]
            lines += _table(
                ["Decile", "Customers", "Mean predicted", "Mean actual"],
                [
                    [
                        _fmt(row.get("decile"), 0),
                        _fmt(row.get("n"), 0),
                        _fmt(row.get("mean_predicted"), 2),
                        _fmt(row.get("mean_actual"), 2),
                    ]
                    for row in table
                ],
            )
        if "calibration" in plots:
            lines += ["", f"![Decile calibration]({plots['calibration']})"]
        lines.append("")

    if metrics.get("gain_curve"):
        lines += ["## Gain curve", ""]
        lines.append(
            "Share of held-out spend captured by the top fraction of customers ranked by "
            "prediction, against the perfect ordering (normalized Gini = area between the "
            "model's curve and the diagonal, divided by the perfect curve's)."
        )
        if "gain_curve" in plots:
            lines += ["", f"![Gain curve]({plots['gain_curve']})"]
        lines.append("")

    importance = metadata.get("feature_importance") or []
    if importance:
        top = sorted(importance, key=lambda r: -abs(float(r.get("importance") or 0.0)))
        lines += ["## Feature importance", ""]
        lines += _table(
            ["Feature", "Importance"],
            [[f"`{r.get('feature')}`", _fmt(r.get("importance"), 4)] for r in top[:_TOP_FEATURES]],
        )
        if "feature_importance" in plots:
            lines += ["", f"![Feature importance]({plots['feature_importance']})"]
        lines.append("")

    lines += ["## Hyper-parameters", ""]
    best = metadata.get("best_params") or {}
    if any(best.values()):
        lines += [
            "Chosen by the time-aware randomized search:",
            "",
            "```json",
            json.dumps(best, indent=2, sort_keys=True, default=str),
            "```",
        ]
    else:  # the quick budget runs no search
        lines += [
            "No search was run (budget "
            f"{(metadata.get('config') or {}).get('budget', 'n/a')}): the learners keep the "
            "defaults validated on the rolling cutoffs (docs/models.md, Budgets).",
        ]
    if metadata.get("cv_scores"):
        lines += [
            "",
            "Cross-validation scores (time-aware folds):",
            "",
            "```json",
            json.dumps(metadata["cv_scores"], indent=2, sort_keys=True, default=str),
            "```",
        ]
    lines.append("")

    lines += [
        "## Known limitations",
        "",
        "- The held-out metrics come from one window after the as-of date; other periods "
        "(holiday season, a new product line) can score differently.",
        "- Customers with no purchase before the as-of date are not scored (no history).",
        "- Spend is gross of later cancellations and returns; a customer with heavy returns "
        "is over-predicted.",
        "- The models learn from the store's history only; shocks absent from it (price "
        "changes, promotions, a pandemic) are not anticipated.",
        "- Model artifacts are pickles: load only runs produced by this project in a trusted "
        "environment, with the same major.minor scikit-learn and xgboost.",
        "",
    ]
    return "\n".join(lines)


def _figure(width: float = 6.4, height: float = 4.2) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _plot_calibration(calibration: Mapping[str, Any], path: Path) -> None:
    fig = _figure()
    ax = fig.subplots()
    top = 0.0
    for model, table in calibration.items():
        predicted = [float(r.get("mean_predicted") or 0.0) for r in table]
        actual = [float(r.get("mean_actual") or 0.0) for r in table]
        ax.plot(predicted, actual, marker="o", label=model)
        top = max([top, *predicted, *actual])
    ax.plot([0, top], [0, top], linestyle="--", color="grey", label="perfect calibration")
    # The top decile is often 10x the next: a symmetric log scale keeps every decile readable.
    ax.set_xscale("symlog", linthresh=10)
    ax.set_yscale("symlog", linthresh=10)
    ax.set_xlabel("Mean predicted spend per decile (symlog scale)")
    ax.set_ylabel("Mean actual spend per decile (symlog scale)")
    ax.set_title("Decile calibration (held-out window)")
    ax.legend()
    fig.savefig(path)


def _plot_gain(gain: Mapping[str, Any], path: Path) -> None:
    fig = _figure()
    ax = fig.subplots()
    for model, curve in gain.items():
        x = [float(p["fraction_customers"]) for p in curve]
        y = [float(p["fraction_spend"]) for p in curve]
        style = {"linestyle": ":", "color": "black"} if model == "perfect" else {}
        ax.plot(x, y, label=model, **style)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="random")
    ax.set_xlabel("Fraction of customers (ranked by prediction)")
    ax.set_ylabel("Fraction of held-out spend")
    ax.set_title("Gain curve")
    ax.legend()
    fig.savefig(path)


def _plot_importance(importance: Sequence[Mapping[str, Any]], path: Path) -> None:
    top = sorted(importance, key=lambda r: -abs(float(r.get("importance") or 0.0)))[:_TOP_FEATURES]
    top = list(reversed(top))
    fig = _figure(6.4, max(2.5, 0.32 * len(top) + 1.0))
    ax = fig.subplots()
    ax.barh([str(r.get("feature")) for r in top], [float(r.get("importance") or 0) for r in top])
    ax.set_xlabel("Importance")
    ax.set_title(f"Feature importance (top {len(top)})")
    fig.savefig(path)


def _plot_model_vs_baseline(rows: Sequence[Mapping[str, Any]], path: Path) -> None:
    fig = _figure(7.2, 4.2)
    ax = fig.subplots()
    labels = [str(r["key"]) for r in rows]
    width = 0.38
    positions = list(range(len(rows)))

    def value(row: Mapping[str, Any], key: str) -> float:
        raw = row.get(key)
        return float(raw) if raw is not None and math.isfinite(float(raw)) else 0.0

    ax.bar([p - width / 2 for p in positions], [value(r, "r2") for r in rows], width, label="R²")
    ax.bar(
        [p + width / 2 for p in positions], [value(r, "gini") for r in rows], width, label="Gini"
    )
    ax.set_xticks(positions, labels)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_title("Models vs baselines on the held-out window")
    ax.legend()
    fig.savefig(path)


def write_plots(metadata: Mapping[str, Any], out_dir: Path) -> dict[str, str]:
    """Draw the card's PNG plots that the metadata has data for.

    Parameters
    ----------
    metadata : dict
        The run's ``metadata.json`` content.
    out_dir : pathlib.Path
        Folder to write the PNG files into.

    Returns
    -------
    dict
        Plot kind -> file name, for the plots written.
    """
    out_dir = Path(out_dir)
    metrics = metadata.get("metrics") or {}
    written: dict[str, str] = {}
    if metrics.get("calibration"):
        _plot_calibration(metrics["calibration"], out_dir / PLOT_FILES["calibration"])
        written["calibration"] = PLOT_FILES["calibration"]
    if metrics.get("gain_curve"):
        _plot_gain(metrics["gain_curve"], out_dir / PLOT_FILES["gain_curve"])
        written["gain_curve"] = PLOT_FILES["gain_curve"]
    if metadata.get("feature_importance"):
        path = out_dir / PLOT_FILES["feature_importance"]
        _plot_importance(metadata["feature_importance"], path)
        written["feature_importance"] = PLOT_FILES["feature_importance"]
    rows = metrics_rows(metrics)
    if rows:
        _plot_model_vs_baseline(rows, out_dir / PLOT_FILES["model_vs_baseline"])
        written["model_vs_baseline"] = PLOT_FILES["model_vs_baseline"]
    return written


def write_model_card(metadata: Mapping[str, Any], out_dir: Path) -> Path:
    """Write ``model_card.md`` and its plots into ``out_dir``.

    Parameters
    ----------
    metadata : dict
        The run's ``metadata.json`` content.
    out_dir : pathlib.Path
        The run directory.

    Returns
    -------
    pathlib.Path
        Path of the Markdown card.
    """
    out_dir = Path(out_dir)
    plots = write_plots(metadata, out_dir)
    path = out_dir / CARD_FILE
    path.write_text(render_model_card(metadata, plots), encoding="utf-8")
    return path
