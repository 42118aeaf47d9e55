"""The Typer application object shared by the command modules, and the error boundary.

Command modules (``cli/ingest.py``, ``cli/models.py``...) register their commands on ``app``.
Core code raises :class:`retail_clv.errors.RetailClvError`; :func:`main` turns it into one
red line on stderr and exit code 1, never a traceback.
"""

from __future__ import annotations

import typer
from rich.console import Console

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
