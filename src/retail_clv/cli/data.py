"""CLI commands of the data group (registered on the shared app): ``clv ingest``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from retail_clv.cli.base import app, console, progress_bar


def _report_table(reports: list) -> Table:  # type: ignore[type-arg]
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
        help="Read slash dates day-first (01/03/2010 = 1 March) in every file, instead of "
        "deciding per column (month-first unless a value such as 25/12/2010 proves day-first).",
    ),
) -> None:
    """Read raw transaction files, validate every row, and store them (idempotent).

    Every row ends loaded, rejected (with reason codes, raw values kept in rejected_data)
    or duplicate; the accounting line ``read = loaded + rejected + duplicates`` is checked
    and printed. Each file is one database transaction.

    Example:

        clv ingest ../shared/data/online_retail_II.csv.gz --db sqlite:///data/retail_clv.db

        clv ingest export.xlsx --column customer_id="Cust No" --column price="Unit Price"
    """
    from retail_clv.ingest.columns import parse_column_options
    from retail_clv.ingest.pipeline import ingest_files
    from retail_clv.store.db import get_engine

    column_map = parse_column_options(column)
    engine = get_engine(db)
    try:
        with progress_bar(transient=True) as on_progress:
            # ingestion reports (message, fraction)
            reports = ingest_files(
                paths,
                engine,
                column_map=column_map,
                progress=lambda m, f: on_progress(f, m),
                day_first=True if day_first else None,
            )
    finally:
        engine.dispose()
    console.print(_report_table(reports))
    for report in reports:
        status = "green" if report.invariant_holds else "red"
        console.print(f"[{status}]{report.source_file}: {report.invariant_line()}[/]")
        for warning in report.warnings:
            console.print(
                f"[yellow]Warning: {escape(report.source_file)}: {escape(warning)}[/]",
                highlight=False,
                soft_wrap=True,
            )
