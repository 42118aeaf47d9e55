"""Logging set-up, called only by entry points (CLI, API server, dashboard)."""

from __future__ import annotations

import logging

from rich.logging import RichHandler


def configure_logging(level: str | int = "INFO") -> None:
    """Send the package's log records to stderr through rich, once."""
    root = logging.getLogger("retail_clv")
    if any(isinstance(h, RichHandler) for h in root.handlers):
        root.setLevel(level)
        return
    handler = RichHandler(show_path=False, rich_tracebacks=False, markup=False)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
