"""The Typer application object shared by the command modules, and the error boundary.

Command modules (``cli/ingest.py``, ``cli/models.py``...) register their commands on ``app``.
Core code raises :class:`retail_clv.errors.RetailClvError`; :func:`main` turns it into one
red line on stderr and exit code 1, never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import typer
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

from retail_clv.errors import RetailClvError

app = typer.Typer(
    name="clv",
    help="retail-clv: predict each customer's next-30-day spend from a raw transaction log.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

console = Console()
err_console = Console(stderr=True)


@contextmanager
def progress_bar(
    first_message: str = "starting", *, transient: bool = False
) -> Iterator[Callable[[float, str], None]]:
    """Show a rich progress bar and yield the ``progress(fraction, message)`` callback it follows.

    The callback is what long core functions (training, ingestion) accept as ``progress``.
    """
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
            done = min(1.0, max(0.0, float(fraction)))
            progress.update(task, completed=done, description=escape(message))

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
        err_console.print(f"[bold red]Error:[/] {exc}", highlight=False)
        return 1
    except KeyboardInterrupt:
        err_console.print("[red]Interrupted.[/]")
        return 130
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
