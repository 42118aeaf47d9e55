"""The Typer application object shared by the command modules, and the error boundary.

Command modules (``cli/ingest.py``, ``cli/models.py``...) register their commands on ``app``.
Core code raises :class:`retail_clv.errors.RetailClvError`; :func:`main` turns it into one
red line on stderr and exit code 1, never a traceback.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

from retail_clv.errors import INGEST_HINT, InputFileError, NotEnoughDataError, RetailClvError

if TYPE_CHECKING:
    from pathlib import Path

    import polars as pl
    import sqlalchemy as sa

app = typer.Typer(
    name="clv",
    help="retail-clv: predict each customer's next-30-day spend from a raw transaction log.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

console = Console()
err_console = Console(stderr=True)


def iso_date(value: str | dt.datetime) -> dt.datetime:
    """Parse a ``--as-of``-style date written ``YYYY-MM-DD`` into a midnight ``datetime``.

    The options' ``parser``. Click's own date type answers ``2011-02-30`` and ``9/11/2011``
    alike with "does not match the formats '%Y-%m-%d'"; this says which of the two went wrong.

    Raises
    ------
    typer.BadParameter
        When ``value`` is not written ``YYYY-MM-DD`` or is no calendar date.
    """
    if isinstance(value, dt.datetime):
        return value
    text = str(value).strip()
    if not re.fullmatch(r"\d{4}-\d{1,2}-\d{1,2}", text):
        raise typer.BadParameter(f"{value!r} is not a date written YYYY-MM-DD, e.g. 2011-11-09")
    year, month, day = (int(part) for part in text.split("-"))
    try:
        return dt.datetime(year, month, day)
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not a calendar date: {exc}") from None


class Budget(StrEnum):
    """Hyper-parameter search budget of ``clv train`` and ``clv backtest``."""

    quick = "quick"
    default = "default"


MaxTrainCutoffsOption = Annotated[
    int | None,
    typer.Option(
        "--max-train-cutoffs",
        min=1,
        help="Train on at most this many cutoffs, the newest (28 days apart), to bound time "
        "and memory on a big shop (default CLV_MAX_TRAIN_CUTOFFS, else all history).",
    ),
]


def resolve_max_train_cutoffs(option: int | None, budget: Budget, horizon_days: int) -> int | None:
    """Resolve the cap on training cutoffs (option, else setting) and check it fits the budget.

    Parameters
    ----------
    option : int or None
        ``--max-train-cutoffs`` as given.
    budget : Budget
        The command's search budget.
    horizon_days : int
        The command's horizon.

    Returns
    -------
    int or None
        The cap, or ``None`` for all history.

    Raises
    ------
    SettingError
        When the cap is below what the budget's time-aware folds need.
    """
    from retail_clv.config import get_settings
    from retail_clv.models.training import check_max_train_cutoffs

    given = option is not None
    cap = option if given else get_settings().max_train_cutoffs
    name = "--max-train-cutoffs" if given else "CLV_MAX_TRAIN_CUTOFFS"
    check_max_train_cutoffs(cap, budget.value, horizon_days, name)
    return cap


def read_store(db: str | None) -> tuple[sa.Engine, pl.DataFrame, pl.DataFrame]:
    """Open an existing store and read its purchases and cancellations.

    For the commands that only read the store (``train``, ``backtest``, ``predict``): a
    mistyped SQLite path is refused rather than created empty.

    Parameters
    ----------
    db : str or None
        Store URL (default ``CLV_DATABASE_URL``).

    Returns
    -------
    tuple
        ``(engine, purchases, cancellations)``.

    Raises
    ------
    StoreError
        When the store does not exist or cannot be opened.
    NotEnoughDataError
        When it holds no purchase.
    """
    from retail_clv.store.db import get_engine
    from retail_clv.store.queries import read_cancellations, read_purchases

    engine = get_engine(db, must_exist=True)
    with console.status("reading the store's purchases and cancellations"):
        purchases = read_purchases(engine)
        if purchases.height == 0:
            url = engine.url.render_as_string(hide_password=True)
            raise NotEnoughDataError(f"the store {url} holds no purchases: {INGEST_HINT}")
        return engine, purchases, read_cancellations(engine)


#: The progress lines' clock (a name of its own, so tests can set it).
_now = time.monotonic


def check_output_folder(folder: Path, option: str, value: Path | None = None) -> None:
    """Refuse, before any work, a folder an output cannot be written into.

    ``folder`` may not exist yet (it is created when the output is written); the nearest
    existing folder above it must then be writable. ``value`` is the option's value when it
    names a file in ``folder``. Without this check a long training ran to its end and then
    stopped on the file system's error.

    Raises
    ------
    InputFileError
        When ``folder`` or a part of its path is a file, or no folder can be written there.
    """
    existing = folder
    while not existing.exists() and existing.parent != existing:
        if existing.is_symlink():  # a link to nothing: creating the folder there would fail
            raise InputFileError(
                f"{option} {value or folder}: {existing} is a link to a missing target; give "
                "another path"
            )
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise InputFileError(
            f"{option} {value or folder}: {existing} is a file, not a folder; give another path"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputFileError(
            f"{option} {value or folder}: {existing} is not writable (permission denied); give "
            "another path"
        )


def check_output_file(path: Path, option: str) -> None:
    """Refuse, before any work, an output file path that cannot be written.

    Raises
    ------
    InputFileError
        When ``path`` is a folder, its folder cannot be written into (see
        :func:`check_output_folder`), or it exists and is read-only.
    """
    if path.is_dir():
        raise InputFileError(f"{option} {path} is a folder; give a file path in it")
    check_output_folder(path.parent, option, path)
    if path.exists() and not os.access(path, os.W_OK):
        raise InputFileError(f"{option} {path} is read-only; give another path")


@contextmanager
def progress_bar(
    first_message: str = "starting", *, transient: bool = False
) -> Iterator[Callable[[float, str], None]]:
    """Show a rich progress bar and yield the ``progress(fraction, message)`` callback it follows.

    The callback is what training and backtests accept as ``progress`` (ingestion reports
    ``(message, fraction)``: swap the arguments). Messages are escaped for rich markup.

    Without a terminal (output redirected to a log, ``nohup``, CI) rich draws the bar only
    when it ends, so each new step is also printed as one plain line, ``[elapsed] percent
    message`` (steps are stage names, a few dozen at most).
    """
    start = _now()
    printed: str | None = None  # the last step printed as a plain line
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=transient,
    ) as progress:
        task = progress.add_task(escape(first_message), total=1.0)

        def on_progress(fraction: float, message: str) -> None:
            nonlocal printed
            done = min(1.0, max(0.0, float(fraction)))
            progress.update(task, completed=done, description=escape(message))
            if console.is_terminal or message == printed:
                return
            printed = message
            console.print(  # one line per step in a log, however long (no wrapping)
                f"[{_now() - start:6.0f} s] {100 * done:3.0f}% {escape(message)}",
                highlight=False,
                soft_wrap=True,
            )

        yield on_progress


def run_app(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code, translating domain errors into one line.

    Click handles usage errors itself (standalone mode); anything derived from
    :class:`RetailClvError` becomes ``Error: <message>`` on stderr and exit code 1.
    """
    try:
        app(args=argv, standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except RetailClvError as exc:
        err_console.print(f"[bold red]Error:[/] {escape(str(exc))}", highlight=False)
        return 1
    except ValidationError as exc:  # a CLV_* setting (environment or .env) out of range
        for error in exc.errors():
            name = "CLV_" + "_".join(str(part) for part in error["loc"]).upper()
            text = f"invalid setting {name}={error.get('input')!r}: {error['msg']}"
            err_console.print(
                f"[bold red]Error:[/] {escape(text)} (set in the environment or .env; see "
                ".env.example)",
                highlight=False,
            )
        return 1
    except KeyboardInterrupt:
        err_console.print("[red]Interrupted.[/]")
        return 130
    except OSError as exc:  # a file or folder that could not be read or written
        where = f" {exc.filename}" if exc.filename else ""
        text = f"{exc.strerror or exc}:{where}" if where else str(exc.strerror or exc)
        err_console.print(
            f"[bold red]Error:[/] {escape(text)} (a file system error; check the path and its "
            "permissions)",
            highlight=False,
        )
        return 1
    return 0


@app.callback()
def _root() -> None:
    """retail-clv: predict each customer's next-30-day spend from a raw transaction log."""


@app.command()
def version() -> None:
    """Print the installed retail-clv version.

    Example: ``clv version``
    """
    from retail_clv import __version__

    console.print(f"retail-clv {__version__}")


def print_products(metrics: dict[str, Any] | None) -> None:
    """Print the products model's metrics and its baselines' (``card.products_lines``)."""
    from retail_clv.models.card import products_lines

    for line in products_lines(metrics):
        console.print(escape(line), highlight=False)


def print_warnings(metrics: dict[str, Any] | None) -> None:
    """Print a run's or a backtest's ``warnings`` (e.g. a window at an unseen time of year)."""
    for warning in (metrics or {}).get("warnings") or []:
        console.print(f"[yellow]Warning:[/] {escape(str(warning))}", highlight=False)


def print_gaps(metrics: dict[str, Any] | None) -> None:
    """Print each model's R² and Gini gap to each baseline with its bootstrap interval."""
    from retail_clv.models.card import gap_rows

    rows = gap_rows(metrics)
    if rows:
        console.print("Model − baseline, 90% interval (customers resampled):", highlight=False)
    for label, r2_gap, gini_gap in rows:
        console.print(f"  {label}: R² {r2_gap}, Gini {gini_gap}", highlight=False, soft_wrap=True)
