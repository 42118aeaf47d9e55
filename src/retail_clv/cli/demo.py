"""CLI commands of the demo group (registered on the shared app)."""

from __future__ import annotations

from retail_clv.cli.base import app  # noqa: F401
