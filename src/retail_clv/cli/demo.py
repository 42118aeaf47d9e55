"""``clv demo``: the whole pipeline on a synthetic retailer, end to end, offline.

Steps: generate a synthetic Online Retail II export (with ground truth) -> ingest it into a fresh
demo store -> train Model 1, Model 2 and the products model (quick budget) on the truth window
-> score every customer -> write ``output/predictions.csv`` and the predictions table -> print
the cleaning report, the model comparison (with baselines and the oracle's "achievable R²"), the
top customers, and how to start the API and the dashboard.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from retail_clv.cli.base import (
    app,
    check_output_file,
    check_output_folder,
    console,
    iso_date,
    print_gaps,
    progress_bar,
)
from retail_clv.config import get_settings
from retail_clv.errors import NotEnoughDataError
from retail_clv.errors import count as counted

DEMO_FILE = "online_retail_synthetic.csv"
HORIZON_DAYS = 30
TOP_N = 10


@dataclass
class StepStatus:
    """Outcome of one demo step for the final summary."""

    name: str
    state: str  # "done"
    seconds: float = 0.0
    detail: str = ""


@dataclass
class DemoState:
    """What the steps produced, for the summary (and the tests)."""

    steps: list[StepStatus] = field(default_factory=list)
    raw_path: Path | None = None
    truth_path: Path | None = None
    db_url: str = ""
    predictions_path: Path | None = None
    run_dir: Path | None = None


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    number = float(value)
    return f"{number:,.{digits}f}" if math.isfinite(number) else "n/a"


def _timed(state: DemoState, name: str, action: Callable[[], str]) -> None:
    t0 = time.perf_counter()
    detail = action()
    state.steps.append(StepStatus(name, "done", time.perf_counter() - t0, detail))


def _ingest_table(reports: list[Any]) -> Table:
    table = Table(title="Cleaning report (ingest)", caption="a row may have several reasons")
    table.add_column("")
    table.add_column("rows", justify="right")
    r = reports[0]
    table.add_row("rows read", f"{sum(x.rows_read for x in reports):,}")
    table.add_row("[green]loaded (valid purchases)[/]", f"{sum(x.rows_loaded for x in reports):,}")
    table.add_row("[yellow]rejected[/]", f"{sum(x.rows_rejected for x in reports):,}")
    reasons: dict[str, int] = {}
    for x in reports:
        for code, count in x.reason_counts.items():
            reasons[code] = reasons.get(code, 0) + count
    for code, count in sorted(reasons.items(), key=lambda kv: -kv[1]):
        table.add_row(f"  {code}", f"{count:,}")
    table.add_row("[magenta]exact duplicates[/]", f"{sum(x.rows_duplicate for x in reports):,}")
    table.add_row("customers", f"{r.customers:,}")
    table.add_row("products", f"{r.products:,}")
    return table


def _comparison_table(metrics: dict[str, Any], oracle: dict[str, Any] | None) -> Table:
    from retail_clv.models.card import metrics_rows

    table = Table(
        title=f"Spend in the held-out window {metrics.get('cutoff')} + "
        f"{metrics.get('horizon_days')} days "
        f"({counted(int(metrics.get('n_customers') or 0), 'customer')})"
    )
    table.add_column("Model", no_wrap=True)
    for label in ("R²", "MAE", "Gini", "Top 10%"):
        table.add_column(label, justify="right")
    if oracle is not None:
        table.add_column("% oracle", justify="right")
    for row in metrics_rows(metrics):
        cells = [_fmt(row["r2"]), _fmt(row["mae"], 1), _fmt(row["gini"])]
        cells.append(_fmt(row["top10_capture"]))
        if oracle is not None:
            fraction = oracle["fractions"].get(row["key"])
            cells.append("n/a" if fraction is None else f"{100 * fraction:.0f}%")
        style = "bold" if row["key"] in {"model1", "model2"} else None
        table.add_row(row["label"], *cells, style=style)
    if oracle is not None:
        table.add_row(
            "[italic]Oracle (true parameters)[/]",
            _fmt(oracle["oracle_r2"]),
            *([""] * 3),
            "100%",
        )
    return table


def _oracle_summary(truth_path: Path, holdout: Any) -> dict[str, Any] | None:
    """R² of each holdout prediction as a fraction of the oracle's on the same window."""
    import polars as pl

    from retail_clv.synth import achievable_r2, read_truth

    truth = read_truth(str(truth_path))
    actual = holdout.select(pl.col("customer_id").cast(pl.Utf8), "actual_spend")
    columns = {
        "model1": "pred_model1",
        "model2": "pred_model2",
        "mean": "pred_mean",
        "run_rate": "pred_run_rate",
        "bgnbd_gg": "pred_bgnbd_gg",
    }
    fractions: dict[str, float] = {}
    oracle_r2 = None
    for key, column in columns.items():
        if column not in holdout.columns or holdout[column].null_count() == holdout.height:
            continue
        result = achievable_r2(
            truth, holdout.select(pl.col("customer_id").cast(pl.Utf8), column), actual
        )
        fractions[key] = result.fraction
        oracle_r2 = result.oracle_r2
    if oracle_r2 is None:
        return None
    summary: dict[str, Any] = {"oracle_r2": oracle_r2, "fractions": fractions}
    if {"pred_products", "actual_products"} <= set(holdout.columns):
        products = achievable_r2(
            truth,
            holdout.select(pl.col("customer_id").cast(pl.Utf8), "pred_products"),
            holdout.select(pl.col("customer_id").cast(pl.Utf8), "actual_products"),
            target="products",
        )
        summary["products"] = products
    return summary


def run_demo(
    customers: int,
    months: int,
    seed: int,
    start: dt.date,
    process: str,
    data_dir: Path,
    db: str | None,
    models_dir: Path,
    out: Path,
    budget: str,
) -> DemoState:
    """Run every available demo step and print its part of the summary.

    Parameters
    ----------
    customers, months, seed, start, process
        Synthetic retailer (see ``clv generate``).
    data_dir : pathlib.Path
        Where the raw file goes; the fresh demo store is ``data_dir.parent / "demo.db"``.
    db : str, optional
        Store URL to use instead of the fresh demo store (ingestion is idempotent).
    models_dir : pathlib.Path
        Model runs folder.
    out : pathlib.Path
        Predictions CSV.
    budget : str
        Training budget (``quick`` or ``default``).

    Returns
    -------
    DemoState
        What was produced, step by step.
    """
    from retail_clv.synth import generate

    state = DemoState()
    state_extra: dict[str, Any] = {}
    raw = data_dir / DEMO_FILE

    # 1. generate ---------------------------------------------------------------------------
    def do_generate() -> str:
        report = generate(customers, start, months, seed, raw, fmt="csv", process=process)
        state.raw_path, state.truth_path = report.path, report.truth_path
        state_extra["report"] = report
        return f"{report.rows_written:,} rows, {customers:,} customers -> {raw}"

    with console.status("Generating the synthetic retailer..."):
        _timed(state, "generate", do_generate)
    gen = state_extra["report"]
    console.print(
        f"Generated [bold]{escape(str(raw))}[/]: {gen.rows_written:,} rows, {gen.start} to "
        f"{gen.end} (exclusive), {customers:,} customers, ground truth in "
        f"{escape(str(gen.truth_path))}",
        highlight=False,
    )

    # 2. ingest -----------------------------------------------------------------------------
    from retail_clv.ingest.pipeline import ingest_files
    from retail_clv.store.db import get_engine
    from retail_clv.store.queries import read_cancellations, read_purchases

    if db is None:
        store = data_dir.parent / "demo.db"
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{store}{suffix}").unlink(missing_ok=True)
        db = f"sqlite:///{store}"
    engine = get_engine(db)
    shown = engine.url.render_as_string(hide_password=True)  # never print a password
    state.db_url = shown
    try:

        def do_ingest() -> str:
            reports = ingest_files([raw], engine, progress=False)
            state_extra["reports"] = reports
            loaded = sum(r.rows_loaded for r in reports)
            return f"{loaded:,} purchase lines loaded into {shown}"

        with console.status("Ingesting into the store..."):
            _timed(state, "ingest", do_ingest)
        reports = state_extra["reports"]
        console.print(_ingest_table(reports))
        for r in reports:
            colour = "green" if r.invariant_holds else "red"
            console.print(f"[{colour}]{escape(r.invariant_line())}[/]", highlight=False)
        purchases = read_purchases(engine)
        cancellations = read_cancellations(engine)
        first_sale = purchases["invoice_date"].min()
        if isinstance(first_sale, dt.datetime):
            _check_first_sale(months, start, first_sale.date(), budget)

        # 3. train ----------------------------------------------------------------------------
        _train(state, purchases, cancellations, gen.truth_cutoff, budget, models_dir, db)

        # 4. predict --------------------------------------------------------------------------
        _predict(state, engine, purchases, cancellations, models_dir, out)
    finally:
        engine.dispose()
    return state


def _train(
    state: DemoState,
    purchases: Any,
    cancellations: Any,
    as_of: dt.date,
    budget: str,
    models_dir: Path,
    db: str,
) -> None:
    from retail_clv.models.registry import data_fingerprint, save_run
    from retail_clv.models.training import train

    holder: dict[str, Any] = {}

    def do_train() -> str:
        with progress_bar("training", transient=True) as on_progress:
            result = train(
                purchases,
                cancellations,
                as_of=as_of,
                horizon_days=HORIZON_DAYS,
                budget=budget,  # type: ignore[arg-type]
                progress=on_progress,
                n_jobs=get_settings().n_jobs,
            )
        run_dir = save_run(result, models_dir, data_fingerprint(purchases, db))
        holder["result"] = result
        state.run_dir = run_dir
        return f"run {run_dir.name} (budget {budget}, as of {as_of})"

    _timed(state, "train", do_train)
    result = holder["result"]
    oracle = None
    if state.truth_path is not None and getattr(result, "holdout", None) is not None:
        oracle = _oracle_summary(state.truth_path, result.holdout)
    if result.metrics and (result.metrics.get("models") or {}):
        console.print(_comparison_table(result.metrics, oracle))
        from retail_clv.models.card import products_lines

        lines = products_lines(result.metrics)  # the products model, then its baselines
        if lines and oracle is not None and "products" in oracle:
            p_r2 = oracle["products"]
            lines[0] += (
                f" ({100 * p_r2.fraction:.0f}% of the oracle R² {_fmt(p_r2.oracle_r2)} "
                "for distinct products)"
            )
        for line in lines:
            console.print(escape(line), highlight=False)
        print_gaps(result.metrics)
        if oracle is not None:
            console.print(
                "Oracle = expected spend given each customer's true latent purchase rate, dropout "
                "and spend level (from the generator's ground truth): no model can beat it in "
                "expectation.",
                style="dim",
            )
    else:
        console.print(
            f"[yellow]Not evaluated:[/] the purchases do not cover the held-out window "
            f"[{as_of}, {as_of} + {HORIZON_DAYS} days), so there is no model comparison."
        )
    console.print(f"Model run saved to {escape(str(state.run_dir))}", highlight=False)


def _predict(
    state: DemoState,
    engine: Any,
    purchases: Any,
    cancellations: Any,
    models_dir: Path,
    out: Path,
) -> None:
    from retail_clv.models.registry import load_run
    from retail_clv.models.scoring import rescoring_as_of, score, to_csv_frame
    from retail_clv.store.predictions import write_predictions

    holder: dict[str, Any] = {}

    def do_predict() -> str:
        run_id = state.run_dir.name if state.run_dir is not None else "latest"
        bundle = load_run(models_dir, run_id)
        as_of, moved = rescoring_as_of(purchases)  # a store given by --db may hold a typo
        if moved:
            console.print(f"[yellow]Note:[/] {escape(moved)}", highlight=False)
        scored = score(bundle, purchases, cancellations, as_of=as_of)
        out.parent.mkdir(parents=True, exist_ok=True)
        horizon = int(bundle.metadata.get("horizon_days") or HORIZON_DAYS)
        to_csv_frame(scored, horizon).write_csv(out)
        write_predictions(engine, scored, bundle.run_id, as_of, horizon, replace_all=True)
        holder["scored"], holder["as_of"] = scored, as_of
        state.predictions_path = out
        return f"{counted(scored.height, 'customer')} scored as of {as_of} -> {out}"

    _timed(state, "predict", do_predict)
    scored = holder["scored"]
    top = scored.sort(["predicted_spend_30d_model2", "customer_id"], descending=[True, False])
    top = top.head(TOP_N)
    table = Table(
        title=f"Top {counted(top.height, 'customer')} by predicted spend in the {HORIZON_DAYS} "
        "days from "
        f"{holder['as_of']} (Model 2)"
    )
    table.add_column("Customer")
    table.add_column("Country")
    table.add_column("Spend, Model 1", justify="right")
    table.add_column("Spend, Model 2", justify="right")
    table.add_column("Products", justify="right")
    for row in top.iter_rows(named=True):  # at most TOP_N rows: display only
        table.add_row(
            escape(str(row["customer_id"])),
            escape(str(row["country"] or "")),
            _fmt(row["predicted_spend_30d_model1"], 2),
            _fmt(row["predicted_spend_30d_model2"], 2),
            _fmt(row["predicted_products_30d"], 1),
        )
    console.print(table)


def _print_summary(state: DemoState, models_dir: Path) -> None:
    table = Table(title="Demo steps")
    table.add_column("Step")
    table.add_column("State")
    table.add_column("Seconds", justify="right")
    table.add_column("Detail")
    colours = {"done": "green"}
    for step in state.steps:
        table.add_row(
            step.name,
            f"[{colours.get(step.state, 'white')}]{step.state}[/]",
            f"{step.seconds:.1f}" if step.state == "done" else "",
            escape(step.detail),
        )
    console.print(table)
    if state.db_url:
        db, models = escape(state.db_url), escape(str(models_dir))
        console.print(
            "\nNext:\n"
            f"  API:        clv serve --db {db} --models-dir {models}"
            "   (http://127.0.0.1:8000/docs)\n"
            "  Dashboard:  clv dashboard   (http://localhost:8501; start the API first)\n"
            f"  Truth:      {escape(str(state.truth_path))} (see docs/synthetic-data.md)",
            highlight=False,
        )


def _months_needed(start: dt.date, first_day: dt.date, budget: str) -> tuple[int, int]:
    """Return the days of history the budget needs and the fewest months that give them.

    The demo trains as of the truth window's start, :data:`HORIZON_DAYS` before the end of the
    simulated months; the budget needs ``training.history_needed`` days of purchases before
    that, counted from ``first_day`` (:func:`_history`).
    """
    from retail_clv.models.training import history_needed

    needed = history_needed(budget, HORIZON_DAYS)[1]  # type: ignore[arg-type]
    fewest = next(m for m in range(1, 1200) if _history(start, first_day, m) >= needed)
    return needed, fewest


def _history(start: dt.date, first_day: dt.date, months: int) -> int:
    """Days from ``first_day`` to the demo's as-of date after ``months`` simulated months."""
    from retail_clv.synth.generator import _add_months

    return (_add_months(start, months) - first_day).days - HORIZON_DAYS


def _months_hint(months: int, start: dt.date, first_day: dt.date, budget: str) -> str | None:
    """Say why ``months`` is too few to train on from ``first_day`` (None when enough)."""
    needed, fewest = _months_needed(start, first_day, budget)
    have = _history(start, first_day, months)
    if have >= needed:
        return None
    return (
        f"{months} months leave {have} days before the {HORIZON_DAYS}-day held-out window, "
        f"and the {budget} budget needs {needed}: use --months {fewest} or more"
    )


def _check_months(months: int, start: dt.date, budget: str, process: str) -> None:
    """Refuse, before generating anything, a history too short for the budget to train on.

    Counted from the first day the synthetic shop opens (the realistic one is closed from 23
    December to 3 January). A small shop's first sale can come days later: the demo checks
    again after ingesting, against the real first purchase (:func:`_check_first_sale`).
    """
    import numpy as np

    from retail_clv.synth.catalog import _raw_intensity

    opens = start
    if process == "realistic":
        fortnight = np.arange(np.datetime64(start), np.datetime64(start + dt.timedelta(days=14)))
        opens = start + dt.timedelta(days=int(np.argmax(_raw_intensity(fortnight) > 0)))
    hint = _months_hint(months, start, opens, budget)
    if hint is not None:
        raise typer.BadParameter(hint, param_hint="--months")


def _check_first_sale(months: int, start: dt.date, first_sale: dt.date, budget: str) -> None:
    """Refuse to train when the generated shop's first sale came too late for ``months``."""
    hint = _months_hint(months, start, first_sale, budget)
    if hint is not None:
        raise NotEnoughDataError(
            f"the generated shop's first sale came on {first_sale}: {hint} (or more --customers, "
            "whose first sales come sooner)"
        )


@app.command()
def demo(
    customers: int = typer.Option(
        2500, min=10, help="Customers of the synthetic retailer (size of the demo)."
    ),
    months: int = typer.Option(24, min=3, help="Months of history to simulate."),
    seed: int = typer.Option(42, help="Random seed of the synthetic retailer."),
    start: dt.datetime = typer.Option(
        "2009-12-01", parser=iso_date, metavar="YYYY-MM-DD", help="First simulated day."
    ),
    process: str = typer.Option("realistic", help="realistic or bgnbd (see clv generate)."),
    data_dir: Path = typer.Option(
        Path("data/demo"), help="Folder of the generated file; the demo store sits beside it."
    ),
    db: str | None = typer.Option(
        None, "--db", help="Store URL to use instead of a fresh data/demo.db."
    ),
    models_dir: Path | None = typer.Option(
        None, help="Model runs folder (default CLV_MODELS_DIR)."
    ),
    out: Path | None = typer.Option(
        None, help="Predictions CSV (default <CLV_OUTPUT_DIR>/predictions.csv)."
    ),
    budget: str = typer.Option("quick", help="Training budget: quick or default."),
) -> None:
    """Run the whole pipeline on a synthetic retailer: generate, ingest, train, predict.

    Needs no network and no external data. Writes data/demo/online_retail_synthetic.csv (+ its
    ground truth), a fresh store data/demo.db, a model run in models/ and
    output/predictions.csv, then prints the cleaning report, the model comparison, the top
    customers and how to start the API and the dashboard. Rerunning starts from scratch.

    Example: ``clv demo`` (or ``clv demo --customers 1000`` for a faster run)
    """
    if process not in ("realistic", "bgnbd"):
        raise typer.BadParameter("use realistic or bgnbd", param_hint="--process")
    if budget not in ("quick", "default"):
        raise typer.BadParameter("use quick or default", param_hint="--budget")
    _check_months(months, start.date(), budget, process)
    settings = get_settings()
    models = Path(models_dir or settings.models_dir)
    out_path = Path(out or settings.output_dir / "predictions.csv")
    check_output_folder(models, "--models-dir")
    check_output_file(out_path, "--out")
    t0 = time.perf_counter()
    # the demo prints its own summary: keep the library's INFO lines out of it
    package_logger = logging.getLogger("retail_clv")
    level = package_logger.level
    package_logger.setLevel(logging.WARNING)
    try:
        state = run_demo(
            customers, months, seed, start.date(), process, data_dir, db, models, out_path, budget
        )
    finally:
        package_logger.setLevel(level)
    _print_summary(state, models)
    console.print(f"Demo finished in {time.perf_counter() - t0:.0f} s.", highlight=False)
