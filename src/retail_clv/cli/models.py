"""``clv train``, ``clv predict`` and ``clv models``: train, score and list model runs.

A thin layer: it reads the store, calls :mod:`retail_clv.models` and writes files and tables;
every decision lives in the core packages. Domain errors become one red line (``cli/base.py``).
"""

from __future__ import annotations

import datetime as dt
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from retail_clv.cli.base import (
    Budget,
    MaxTrainCutoffsOption,
    app,
    check_output_file,
    check_output_folder,
    console,
    iso_date,
    print_gaps,
    print_products,
    print_warnings,
    progress_bar,
    read_store,
    resolve_max_train_cutoffs,
)
from retail_clv.config import get_settings
from retail_clv.errors import InputFileError, NotEnoughDataError, StoreError, count, days

if TYPE_CHECKING:
    import polars as pl

_TOP_N = 10


DbOption = Annotated[
    str | None,
    typer.Option(
        "--db", help="Store URL, e.g. sqlite:///data/retail_clv.db (default CLV_DATABASE_URL)."
    ),
]
ModelsDirOption = Annotated[
    Path | None,
    typer.Option("--models-dir", help="Folder of model runs (default CLV_MODELS_DIR)."),
]
AsOfOption = Annotated[
    dt.datetime | None,
    typer.Option("--as-of", parser=iso_date, metavar="YYYY-MM-DD", help="Cutoff date, YYYY-MM-DD."),
]


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    number = float(value)
    return f"{number:,.{digits}f}" if math.isfinite(number) else "n/a"


def _warn_isolated_end_dates(purchases: pl.DataFrame) -> None:
    """Print a warning when the store's first or last purchase day stands far from the rest."""
    from retail_clv.ingest.rules import isolated_end_dates_notes

    for note in isolated_end_dates_notes(purchases["invoice_date"], whole_store=True):
        console.print(f"[yellow]Warning:[/] {escape(note)}", highlight=False)


def _date_range(purchases: pl.DataFrame) -> tuple[dt.date, dt.date]:
    dates = purchases["invoice_date"]
    first, last = dates.min(), dates.max()
    assert isinstance(first, dt.datetime) and isinstance(last, dt.datetime)
    return first.date(), last.date()


def _metrics_table(metrics: dict[str, Any] | None) -> Table | None:
    from retail_clv.models.card import metrics_rows

    rows = metrics_rows(metrics)
    if not rows:
        return None
    table = Table(
        title=f"Held-out window from {(metrics or {}).get('cutoff')} "
        f"({count(int((metrics or {}).get('n_customers') or 0), 'customer')})",
    )
    table.add_column("Model")
    for label in ("R²", "MAE", "Gini", "Top-10% capture"):
        table.add_column(label, justify="right")
    for row in rows:
        style = (
            "bold"
            if row["key"] in {"model1", "model2"}
            else ("dim" if row["failed_reason"] else None)
        )
        table.add_row(
            row["label"],
            _fmt(row["r2"]),
            _fmt(row["mae"], 2),
            _fmt(row["gini"]),
            _fmt(row["top10_capture"]),
            style=style,
        )
    return table


_TRAIN_HELP = (
    "Train Model 1, Model 2 and the products model on the store; save a versioned run.\n\n"
    "Trains on windows that end on or before --as-of (default: the last purchase date minus the "
    "horizon, so the held-out window [as-of, as-of + horizon) lies inside the data; refused "
    "when that last day stands 60 days or more after every other, a mistyped date?), evaluates "
    "the models and the baselines on that window, writes models/<run-id>/ and points "
    "models/latest at it.\n\n"
    "Example: clv train --budget quick"
)
_PREDICT_HELP = (
    "Score every customer in the store; write the CSV and the predictions table.\n\n"
    "Uses the purchases strictly before --as-of (default: the day after the last purchase; "
    "refused when that last day stands 60 days or more after every other, a mistyped date?). "
    "CSV columns: customer_id, predicted_spend_30d_model1, predicted_spend_30d_model2, "
    "predicted_products_30d, r2_model1, r2_model2 (the R² each model reached on its run's "
    "held-out window).\n\n"
    "Example: clv predict --out output/predictions.csv"
)


@app.command(help=_TRAIN_HELP)
def train(
    db: DbOption = None,
    as_of: AsOfOption = None,
    horizon: Annotated[
        int | None,
        typer.Option(
            min=1, max=366, help="Prediction horizon in days (default CLV_HORIZON_DAYS, 30)."
        ),
    ] = None,
    budget: Annotated[
        Budget,
        typer.Option(
            help="Search budget: quick (about a minute on a store the size of Online Retail "
            "II; time grows with customers × months of history) or default (a search)."
        ),
    ] = Budget.default,
    models_dir: ModelsDirOption = None,
    max_train_cutoffs: MaxTrainCutoffsOption = None,
) -> None:
    """Train Model 1, Model 2 and the products model on the store (help: ``_TRAIN_HELP``)."""
    from retail_clv.models.registry import data_fingerprint, save_run
    from retail_clv.models.scoring import training_as_of

    settings = get_settings()
    horizon_days = horizon or settings.horizon_days
    cap = resolve_max_train_cutoffs(max_train_cutoffs, budget, horizon_days)
    check_output_folder(Path(models_dir or settings.models_dir), "--models-dir")
    engine, purchases, cancellations = read_store(db)
    more = "add history: clv ingest FILE"
    cutoff = training_as_of(  # refuses the default date after an isolated last purchase day
        purchases, as_of.date() if as_of else None, horizon_days, "--as-of", more, budget.value
    )
    if as_of is None:  # what is left to say: an isolated first day
        _warn_isolated_end_dates(purchases)
    first, last = _date_range(purchases)
    console.print(
        f"Training on {purchases.height:,} purchase lines ({first} to {last}), as of {cutoff}, "
        f"horizon {days(horizon_days)}, budget {budget.value}"
        + (f", at most {cap} training cutoffs" if cap is not None else ""),
        highlight=False,
    )
    from retail_clv.models.training import train as train_models

    with progress_bar() as on_progress:
        try:
            result = train_models(
                purchases,
                cancellations,
                as_of=cutoff,
                horizon_days=horizon_days,
                budget=budget.value,
                progress=on_progress,
                n_jobs=settings.n_jobs,
                max_train_cutoffs=cap,
            )
        except NotEnoughDataError as exc:
            raise NotEnoughDataError(f"{exc} To add history: clv ingest FILE.") from exc
        on_progress(1.0, "trained")
    url = engine.url.render_as_string(hide_password=False)
    run_dir = save_run(
        result, Path(models_dir or settings.models_dir), data_fingerprint(purchases, url)
    )
    table = _metrics_table(result.metrics)
    if table is not None:
        console.print(table)
        print_products(result.metrics)
        print_gaps(result.metrics)
    else:
        console.print(
            f"[yellow]Not evaluated:[/] the data does not cover [{cutoff}, {cutoff} + "
            f"{days(horizon_days)}), so the run has no held-out metrics."
        )
    print_warnings(result.metrics)
    console.print(f"Model run [bold]{run_dir.name}[/] saved to {escape(str(run_dir))}")
    console.print(f"Model card: {escape(str(run_dir / 'model_card.md'))}")


def _write_csv_atomically(frame: pl.DataFrame, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        frame.write_csv(tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


@app.command(help=_PREDICT_HELP)
def predict(
    db: DbOption = None,
    as_of: AsOfOption = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="CSV to write (default <CLV_OUTPUT_DIR>/predictions.csv, with --no-store "
            "predictions_<as-of>.csv).",
        ),
    ] = None,
    run: Annotated[str, typer.Option("--run", help="Model run id, or 'latest'.")] = "latest",
    models_dir: ModelsDirOption = None,
    store: Annotated[
        bool,
        typer.Option(
            "--store/--no-store",
            help="Replace the predictions table (what the API serves) with these scores; "
            "--no-store writes the CSV only (by default predictions_<as-of>.csv, leaving "
            "predictions.csv, which matches the table, alone).",
        ),
    ] = True,
) -> None:
    """Score every customer in the store (help: ``_PREDICT_HELP``)."""
    from retail_clv.models.registry import load_run
    from retail_clv.models.scoring import (
        as_of_notes,
        default_as_of,
        score,
        scoring_as_of,
        to_csv_frame,
        trained_on_this_store,
    )
    from retail_clv.store.predictions import write_predictions

    settings = get_settings()
    out_path = Path(out or settings.output_dir / "predictions.csv")
    if out_path.is_dir():
        raise InputFileError(
            f"--out {out_path} is a folder; give a file path, e.g. {out_path / 'predictions.csv'}"
        )
    check_output_file(out_path, "--out" if out else "CLV_OUTPUT_DIR")
    bundle = load_run(Path(models_dir or settings.models_dir), run)
    engine, purchases, cancellations = read_store(db)
    trained_on = (bundle.metadata.get("data_fingerprint") or {}).get("database_url")
    current = engine.url.render_as_string(hide_password=True)
    other_store = not trained_on_this_store(bundle, current)
    if other_store:
        console.print(
            f"[yellow]Note:[/] model run {escape(bundle.run_id)} was trained on the store "
            f"{escape(str(trained_on))}; it scores {escape(current)} here.",
            highlight=False,
            soft_wrap=True,  # never break a path
        )
    after_data = default_as_of(purchases)
    # refuses the default date after an isolated last purchase day
    cutoff = scoring_as_of(purchases, as_of.date() if as_of else None, "--as-of")
    if as_of is None:  # what is left to say: an isolated first day
        _warn_isolated_end_dates(purchases)
    notes: list[str] = []
    with console.status(f"computing features and scoring as of {cutoff}"):
        scored = score(bundle, purchases, cancellations, as_of=cutoff, notes=notes)
    dates = as_of_notes(cutoff, after_data, bundle, "--as-of", same_store=not other_store)
    for note in [*dates, *notes]:
        console.print(f"[yellow]Warning:[/] {escape(note)}", highlight=False)
    if out is None and not store:  # predictions.csv stays the copy of the served table
        out_path = settings.output_dir / f"predictions_{cutoff}.csv"
    horizon_days = int(bundle.metadata.get("horizon_days") or settings.horizon_days)
    _write_csv_atomically(to_csv_frame(scored, horizon_days), out_path)
    if store:
        try:
            write_predictions(engine, scored, bundle.run_id, cutoff, horizon_days, replace_all=True)
        except StoreError as exc:
            raise StoreError(f"{exc} ({out_path} was written)") from exc

    top = scored.sort(["predicted_spend_30d_model2", "customer_id"], descending=[True, False]).head(
        _TOP_N
    )
    table = Table(
        title=f"Top {count(top.height, 'customer')} by predicted {horizon_days}-day spend (Model 2)"
    )
    table.add_column("Customer")
    table.add_column("Country")
    table.add_column("Spend, Model 1", justify="right")
    table.add_column("Spend, Model 2", justify="right")
    table.add_column("Products", justify="right")
    for row in top.iter_rows(named=True):  # at most 10 rows: display only
        table.add_row(
            escape(str(row["customer_id"])),
            escape(str(row["country"] or "")),
            _fmt(row["predicted_spend_30d_model1"], 2),
            _fmt(row["predicted_spend_30d_model2"], 2),
            _fmt(row["predicted_products_30d"], 1),
        )
    console.print(table)
    console.print(
        f"Scored {count(scored.height, 'customer')} as of {cutoff} with model run {bundle.run_id} "
        f"(held-out R²: Model 1 {_fmt(bundle.r2_model1)}, Model 2 {_fmt(bundle.r2_model2)}).",
        highlight=False,
    )
    if store:
        console.print(
            f"Wrote {escape(str(out_path))} and the predictions table, which now holds exactly "
            "these scores (the API serves them; --no-store writes the CSV only).",
            highlight=False,
        )
    else:
        console.print(
            f"Wrote {escape(str(out_path))}; the predictions table was left as it was.",
            highlight=False,
        )


@app.command("models", help="List the saved model runs, newest first.\n\nExample: clv models")
def list_models(models_dir: ModelsDirOption = None) -> None:
    """List the saved model runs, newest first; * marks the one ``latest`` points at.

    Example: ``clv models``
    """
    from retail_clv.models.registry import list_runs

    directory = Path(models_dir or get_settings().models_dir)
    runs = list_runs(directory)
    if not runs:
        console.print(f"No model run in {escape(str(directory))}: run `clv train` first.")
        return
    table = Table(
        title=f"Model runs in {escape(str(directory))}",
        caption="* the run models/latest points at: clv predict and the API use it",
    )
    table.add_column("")
    table.add_column("Run id (UTC training time)", no_wrap=True)
    for label in ("As of", "Horizon", "R² M1", "R² M2"):
        table.add_column(label, justify="right")
    table.add_column("Store")
    for run_info in runs:
        table.add_row(
            "*" if run_info["active"] else "",
            run_info["run_id"],
            str(run_info["as_of"]),
            str(run_info["horizon_days"]),
            _fmt(run_info["r2_model1"]),
            _fmt(run_info["r2_model2"]),
            escape(_store_name(run_info.get("database_url"))),
        )
    console.print(table)


def _store_name(url: str | None) -> str:
    """Name a run's training store briefly: the SQLite file's name or the database's name."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if not url:
        return "n/a"
    try:
        parsed = make_url(url)
    except ArgumentError:
        return url
    database = parsed.database or ""
    if parsed.get_backend_name() == "sqlite":
        return Path(database).name or "(in memory)"
    return f"{parsed.get_backend_name()}: {database}"
