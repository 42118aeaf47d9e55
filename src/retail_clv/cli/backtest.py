"""``clv backtest``: train on the past of a cutoff, evaluate on the window after it."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from retail_clv.cli.base import (
    Budget,
    MaxTrainCutoffsOption,
    app,
    check_output_file,
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
from retail_clv.errors import count, days


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if abs(value) < 0.5 * 10**-digits:
            value = 0.0  # no "-0.000"
        return f"{value:,.{digits}f}"
    return str(value)


def backtest_table(result: dict[str, Any]) -> Table:
    """Render a backtest result as a rich table: models first, then baselines.

    Parameters
    ----------
    result : dict
        Output of :func:`retail_clv.models.backtest.backtest`.

    Returns
    -------
    rich.table.Table
        One row per model and baseline.
    """
    from retail_clv.models.backtest import summary_rows

    table = Table(
        title=f"Backtest at {result['cutoff']}, {days(int(result['horizon_days']))}, "
        f"{count(int(result['n_customers']), 'customer')}"
    )
    for col in ("", "kind", "R²", "MAE", "RMSE", "Spearman", "Gini", "top-10% capture"):
        table.add_column(col, justify="left" if col in ("", "kind") else "right")
    for row in summary_rows(result):
        if row["failed"]:
            table.add_row(row["name"], row["kind"], f"[red]failed: {escape(row['failed'])}[/]")
            continue
        table.add_row(
            row["name"],
            row["kind"],
            _fmt(row["r2"]),
            _fmt(row["mae"], 1),
            _fmt(row["rmse"], 1),
            _fmt(row["spearman"]),
            _fmt(row["gini"]),
            _fmt(row["top10_capture"]),
        )
    return table


@app.command("backtest")
def backtest_command(
    cutoff: Annotated[
        dt.datetime,
        typer.Option(
            "--cutoff", parser=iso_date, metavar="YYYY-MM-DD", help="Test cutoff, YYYY-MM-DD."
        ),
    ],
    json_path: Annotated[
        Path, typer.Option("--json", help="Where to write the metrics JSON.", dir_okay=False)
    ],
    horizon: Annotated[
        int | None,
        typer.Option(min=1, max=366, help="Window length in days (default CLV_HORIZON_DAYS, 30)."),
    ] = None,
    budget: Annotated[
        Budget, typer.Option(help="Search budget: quick or default.")
    ] = Budget.default,
    db: Annotated[
        str | None, typer.Option("--db", help="Store URL (default CLV_DATABASE_URL).")
    ] = None,
    max_train_cutoffs: MaxTrainCutoffsOption = None,
) -> None:
    """Train on windows ending by --cutoff, evaluate models and baselines on the next window.

    Training rows come only from cutoffs whose windows end on or before --cutoff; the test
    window is [cutoff, cutoff + horizon). Writes the metrics JSON and prints a table.

    Example: ``clv backtest --cutoff 2011-11-09 --budget quick --json output/backtest.json``
    """
    from retail_clv.models.backtest import backtest

    settings = get_settings()
    horizon_days = horizon or settings.horizon_days
    cap = resolve_max_train_cutoffs(max_train_cutoffs, budget, horizon_days)
    check_output_file(json_path, "--json")
    _, purchases, cancellations = read_store(db)
    with progress_bar() as on_progress:
        result = backtest(
            purchases,
            cancellations,
            cutoff.date(),
            horizon_days,
            budget.value,
            on_progress,
            n_jobs=settings.n_jobs,
            max_train_cutoffs=cap,
        )
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(result, indent=2), encoding="utf-8")
    console.print(backtest_table(result))
    print_products(result)
    print_gaps(result)
    print_warnings(result)
    console.print(f"Metrics written to {escape(str(json_path))}")
