"""CLI commands of the data group (registered on the shared app).

``clv ingest``, ``clv ingest-runs``, ``clv undo-ingest``.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from retail_clv.cli.base import app, console, err_console, progress_bar

if TYPE_CHECKING:
    from retail_clv.ingest.pipeline import IngestReport


def _bad_date_hint(report: IngestReport) -> str | None:
    """Explain the accepted date formats when most rows of a file failed ``BAD_DATE``."""
    from retail_clv.ingest.rules import ACCEPTED_DATES, BAD_DATE

    checked = report.rows_loaded + report.rows_rejected
    if checked == 0 or 2 * report.reason_counts.get(BAD_DATE, 0) <= checked:
        return None
    examples = ", ".join(repr(value) for value in report.bad_date_examples)
    if not examples:  # every bad date is an empty cell: the report's warning says so
        return f"{report.source_file}: most rows have no date (empty cells)."
    shown = f" (e.g. {examples})"
    return (
        f"{report.source_file}: most dates could not be parsed{shown}. Accepted dates: "
        f"{ACCEPTED_DATES}."
    )


def _report_table(reports: list[IngestReport]) -> Table:
    table = Table(title="Ingest report", show_lines=False)
    table.add_column("")
    for report in reports:
        table.add_column(report.source_file, justify="right")

    def row(label: str, values: list[str]) -> None:
        table.add_row(label, *values)

    row("format", [r.file_format for r in reports])
    row("encoding", [r.encoding or "-" for r in reports])
    row("sheets", [r.sheet or "-" for r in reports])
    row("rows read", [f"{r.rows_read:,}" for r in reports])
    row("[green]loaded[/]", [f"{r.rows_loaded:,}" for r in reports])
    row("[yellow]rejected[/]", [f"{r.rows_rejected:,}" for r in reports])
    codes = list(dict.fromkeys(code for r in reports for code in r.reason_counts))
    for code in codes:
        row(f"  {code}", [f"{r.reason_counts.get(code, 0):,}" for r in reports])
    row("[magenta]duplicates[/]", [f"{r.rows_duplicate:,}" for r in reports])
    row("cancellations kept", [f"{r.cancellations:,}" for r in reports])
    row("customers", [f"{r.customers:,}" for r in reports])
    row("products", [f"{r.products:,}" for r in reports])
    row("uncategorised products", [f"{r.uncategorised_products:,}" for r in reports])
    row(
        "date range",
        [
            f"{r.date_min:%Y-%m-%d %H:%M} .. {r.date_max:%Y-%m-%d %H:%M}"
            if r.date_min and r.date_max
            else "-"
            for r in reports
        ],
    )
    row("ingest run id", [str(r.run_id) for r in reports])
    return table


@app.command()
def ingest(
    paths: list[Path] = typer.Argument(
        ..., help="CSV, .csv.gz, .xlsx (all sheets) or Parquet files, in order."
    ),
    db: str | None = typer.Option(
        None, "--db", help="SQLAlchemy URL of the store (default: CLV_DATABASE_URL)."
    ),
    column: list[str] = typer.Option(
        [],
        "--column",
        "-c",
        help='Map a field to a column of your file, e.g. --column customer_id="Cust No". '
        "Fields: invoice, stock_code, description, quantity, invoice_date, price, "
        "customer_id, country, store.",
    ),
    day_first: bool = typer.Option(
        False,
        "--day-first",
        help="Read slash and dashed dates day-first (01/03/2010 or 01-03-2010 = 1 March) in "
        "every file, instead of deciding per column (a value such as 25/12/2010 proves "
        "day-first, 12/25/2010 month-first; without one, the reading that keeps the dates "
        "closer together, else month-first).",
    ),
    month_first: bool = typer.Option(
        False,
        "--month-first",
        help="Read slash and dashed dates month-first (01/03/2010 = 3 January) in every file, "
        "instead of deciding per column.",
    ),
    sheet: list[str] = typer.Option(
        [],
        "--sheet",
        help="Read only this sheet of each Excel workbook (repeatable); default: every sheet "
        "that holds transactions.",
    ),
) -> None:
    """Read raw transaction files, validate every row, and store them (idempotent).

    Every file is checked first (readable, a supported format, the required columns found;
    from its first lines where the format allows): if one fails, the command names each
    file that cannot be ingested and stores nothing, not even an empty store. Then every row
    ends loaded, rejected (with reason codes, raw values kept in rejected_data) or duplicate;
    the accounting line ``read = loaded + rejected + duplicates`` is checked and printed.
    Each file is one database transaction. Exits with status 1 (after every file) when a
    file holds no valid purchase line.

    Example:

        clv ingest ../shared/data/online_retail_II.csv.gz --db sqlite:///data/retail_clv.db

        clv ingest export.xlsx --column customer_id="Cust No" --column price="Unit Price"
    """
    from retail_clv.ingest.columns import parse_column_options
    from retail_clv.ingest.pipeline import check_files, ingest_files
    from retail_clv.store.db import get_engine

    if day_first and month_first:
        raise typer.BadParameter("give --day-first or --month-first, not both")
    column_map = parse_column_options(column)
    with progress_bar(transient=True) as on_progress:
        # every file before the store is created or opened: a bad one stores nothing
        checked = check_files(
            paths,
            column_map,
            on_file=lambda path: on_progress(0.0, f"checking {path.name}"),
            sheets=sheet,
        )
        engine = get_engine(db)
        try:
            # ingestion reports (message, fraction)
            reports = ingest_files(
                checked,
                engine,
                column_map=column_map,
                progress=lambda m, f: on_progress(f, m),
                day_first=True if day_first else (False if month_first else None),
                # a store given with --db must be named again, or the undo hits the default one
                undo_command="clv undo-ingest {run_id}"
                + (
                    f" --db {shlex.quote(engine.url.render_as_string(hide_password=True))}"
                    if db
                    else ""
                ),
                sheets=sheet,
            )
        finally:
            engine.dispose()
    console.print(_report_table(reports))
    for report in reports:
        status = "green" if report.invariant_holds else "red"
        console.print(
            f"[{status}]{escape(report.source_file)}: {escape(report.invariant_line())}[/]"
        )
        if report.columns:
            used = ", ".join(f"{name} = {column!r}" for name, column in report.columns.items())
            console.print(
                f"[dim]{escape(report.source_file)}: columns read: {escape(used)}[/]",
                highlight=False,
                soft_wrap=True,
            )
        for warning in report.warnings:
            console.print(
                f"[yellow]Warning: {escape(report.source_file)}: {escape(warning)}[/]",
                highlight=False,
                soft_wrap=True,
            )
        hint = _bad_date_hint(report)
        if hint:
            console.print(f"[yellow]{escape(hint)}[/]", highlight=False, soft_wrap=True)
    empty = [message for r in reports if (message := r.no_purchase_line_message())]
    for message in empty:
        err_console.print(f"[bold red]Error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    if empty:
        raise typer.Exit(1)


@app.command("ingest-runs")
def ingest_runs(
    db: str | None = typer.Option(
        None, "--db", help="SQLAlchemy URL of the store (default: CLV_DATABASE_URL)."
    ),
) -> None:
    """List the store's ingest runs, newest first (the ids clv undo-ingest takes).

    Example: ``clv ingest-runs``
    """
    from retail_clv.store.db import get_engine
    from retail_clv.store.runs import list_ingest_runs

    engine = get_engine(db, must_exist=True)
    try:
        runs = list_ingest_runs(engine)
    finally:
        engine.dispose()
    table = Table(title="Ingest runs, newest first")
    table.add_column("id", justify="right", no_wrap=True)
    table.add_column("file")
    table.add_column("finished (UTC)", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for label in ("loaded", "rejected", "duplicates"):
        table.add_column(label, justify="right")
    for run in runs:  # display only
        finished = run["finished_at"]
        table.add_row(
            str(run["id"]),
            escape(run["source_file"] + (f" ({run['sheet']})" if run["sheet"] else "")),
            f"{finished:%Y-%m-%d %H:%M}" if finished else "-",
            run["status"],
            *(f"{run[k]:,}" for k in ("rows_loaded", "rows_rejected", "rows_duplicate")),
        )
    console.print(table)


@app.command("undo-ingest")
def undo_ingest(
    run_id: int = typer.Argument(..., help="The ingest run to undo (see clv ingest-runs)."),
    db: str | None = typer.Option(
        None, "--db", help="SQLAlchemy URL of the store (default: CLV_DATABASE_URL)."
    ),
) -> None:
    """Take an ingest run's rows out of the store again; its record stays.

    For a file ingested by mistake: the wrong export, or the same sales exported again in
    another format (which the duplicate check cannot recognise). Customers left without any
    sale are removed too; those whose first purchase was in the run get back the date and
    country of the first purchase left. Scores and models computed with the rows are not
    changed: run clv train and clv predict again.

    Example: ``clv undo-ingest 7``
    """
    from retail_clv.errors import count
    from retail_clv.store.db import get_engine
    from retail_clv.store.runs import undo_ingest_run

    engine = get_engine(db, must_exist=True)
    try:
        deleted = undo_ingest_run(engine, run_id)
    finally:
        engine.dispose()

    removed = ", ".join(
        [
            count(deleted["transactions"], "purchase line"),
            count(deleted["cancellations"], "cancellation"),
            count(deleted["rejected_data"], "rejected row"),
        ]
    )
    console.print(
        f"Ingest run {run_id} undone: removed {removed} and "
        f"{count(deleted['customers'], 'customer')} left without any purchase or cancellation. "
        "The predictions table and the trained models still reflect them: run clv train and "
        "clv predict again.",
        highlight=False,
    )
