"""``clv generate``: write a synthetic Online Retail II export with ground truth."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer
from rich.table import Table

from retail_clv.cli.base import app, check_output_file, console, iso_date
from retail_clv.errors import days

FORMAT_BY_SUFFIX = {".gz": "csv.gz", ".xlsx": "xlsx", ".parquet": "parquet", ".csv": "csv"}


def infer_format(out: Path) -> str:
    """Output format from the file name (``.csv.gz``, ``.xlsx``, ``.parquet``; else ``csv``)."""
    return FORMAT_BY_SUFFIX.get(out.suffix.lower(), "csv")


@app.command()
def generate(
    out: Path = typer.Option(
        Path("data/synthetic/online_retail_synthetic.csv"), "--out", "-o", help="File to write."
    ),
    customers: int = typer.Option(3000, min=1, help="Number of customers with an id."),
    start: dt.datetime = typer.Option(
        "2009-12-01",
        parser=iso_date,
        metavar="YYYY-MM-DD",
        help="First simulated day (YYYY-MM-DD).",
    ),
    months: int = typer.Option(24, min=1, help="Length of the simulated period in months."),
    seed: int = typer.Option(42, help="Random seed: same seed, same file."),
    fmt: str | None = typer.Option(
        None,
        "--format",
        help="csv, csv.gz, xlsx (small files only) or parquet; default from the file name.",
    ),
    process: str = typer.Option(
        "realistic", help="realistic (seasonality, wholesale tail) or bgnbd (pure BG/NBD+GG)."
    ),
    truth_cutoff: dt.datetime | None = typer.Option(
        None,
        parser=iso_date,
        metavar="YYYY-MM-DD",
        help="Start of the 30-day truth window (default: 30 days before the end).",
    ),
) -> None:
    """Generate a synthetic retailer: raw transactions + ground truth (OUT.truth.parquet).

    The file has exactly the Online Retail II columns and conventions, with documented dirt
    (guest orders, cancellations, zero prices, bad debt, duplicates, broken dates). See
    docs/synthetic-data.md.

    Example: ``clv generate --customers 5000 --months 24 --seed 7 --out data/shop.csv.gz``
    """
    from retail_clv.synth import generate as run_generate

    check_output_file(out, "--out")
    chosen = fmt or infer_format(out)
    try:
        report = run_generate(
            customers=customers,
            start=start.date(),
            months=months,
            seed=seed,
            out=out,
            fmt=chosen,
            process=process,
            truth_cutoff=truth_cutoff.date() if truth_cutoff else None,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    table = Table(title=f"Synthetic retailer ({report.process}, seed {report.seed})")
    table.add_column("item")
    table.add_column("value", justify="right")
    table.add_row("file", str(report.path))
    table.add_row("ground truth", str(report.truth_path))
    table.add_row("period", f"{report.start} .. {report.end} (exclusive)")
    table.add_row("truth window", f"{report.truth_cutoff} + {days(report.horizon_days)}")
    table.add_row("customers", f"{report.customers:,}")
    table.add_row("rows written", f"{report.rows_written:,}")
    table.add_row("clean purchase rows (what ingestion loads)", f"{report.clean_purchase_rows:,}")
    # the kinds overlap (a guest order's free line is both), and non-product lines of known
    # customers are clean purchase rows too: a breakdown of the file, not of the clean rows
    table.add_row("rows of each kind of dirt (a row can be two)", "")
    for name, count in report.dirt.items():
        table.add_row(f"  {name.replace('_', ' ')}", f"{count:,}")
    table.add_row("seconds", f"{report.seconds:.1f}")
    console.print(table)
