"""Command-line interface ``clv``: a thin layer over the core packages.

Each command group lives in its own module and registers itself on the shared Typer ``app``.
"""

from __future__ import annotations

import sys

from retail_clv.cli import backtest as _backtest  # noqa: F401  (clv backtest)
from retail_clv.cli import data as _data  # noqa: F401  (clv ingest)
from retail_clv.cli import demo as _demo  # noqa: F401  (clv demo)
from retail_clv.cli import generate as _generate  # noqa: F401  (clv generate)
from retail_clv.cli import models as _models  # noqa: F401  (clv train, clv predict)
from retail_clv.cli import serve as _serve  # noqa: F401  (clv serve, clv dashboard)
from retail_clv.cli.base import app, run_app

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the ``clv`` console script."""
    from retail_clv.logging import configure_logging

    configure_logging()
    sys.exit(run_app(sys.argv[1:]))
