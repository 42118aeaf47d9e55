"""Logging set-up, called only by entry points (CLI, API server, dashboard)."""

from __future__ import annotations

import logging
import warnings

from rich.logging import RichHandler

#: scikit-learn's line when a search candidate scored NaN. The run's own warning already names
#: the skipped candidates and why (``training.failed_search_note``), so users see it once.
NON_FINITE_SEARCH_SCORES = r"One or more of the test scores are non-finite"
#: scikit-learn's line when a forest draws fewer than 10 rows per tree (a tiny shop): the run
#: says in its own words that its population is small (``training.small_population_note``).
FEW_BOOTSTRAP_ROWS = r"Using the fractional value max_samples="


#: psycopg's line when it cannot close a COPY on a connection that is gone: the ingest then fails
#: with its own one-line error ("… nothing of it was stored: … the connection is lost").
IGNORED_CLEANUP = "error ignored terminating"


def _not_ignored_cleanup(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(IGNORED_CLEANUP)


def hide_repeated_warnings() -> None:
    """Hide library warnings that retail-clv reports in its own words (entry points only)."""
    warnings.filterwarnings("ignore", message=NON_FINITE_SEARCH_SCORES, category=UserWarning)
    warnings.filterwarnings("ignore", message=FEW_BOOTSTRAP_ROWS, category=UserWarning)


def configure_logging(level: str | int = "INFO") -> None:
    """Send the package's log records to stderr through rich, once.

    Also calls :func:`hide_repeated_warnings`.
    """
    hide_repeated_warnings()
    psycopg = logging.getLogger("psycopg")
    if _not_ignored_cleanup not in psycopg.filters:
        psycopg.addFilter(_not_ignored_cleanup)
    root = logging.getLogger("retail_clv")
    if any(isinstance(h, RichHandler) for h in root.handlers):
        root.setLevel(level)
        return
    handler = RichHandler(show_path=False, rich_tracebacks=False, markup=False)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
