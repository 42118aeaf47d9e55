"""Helpers of the ingest tests: tiny raw files written on the fly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HEADER_II = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country"

#: A valid purchase line of Online Retail II, in raw CSV form.
VALID = (
    "489434,85048,15CM CHRISTMAS GLASS BALL 20 LIGHTS,12,2009-12-01 07:45:00,6.95,13085,"
    "United Kingdom"
)


def write_csv(
    path: Path, lines: list[str], header: str = HEADER_II, encoding: str = "utf-8"
) -> Path:
    path.write_bytes(("\n".join([header, *lines]) + "\n").encode(encoding))
    return path


def write_no_price(path: Path) -> Path:
    """Write a CSV of one purchase line without the required price column."""
    return write_csv(
        path,
        [VALID.replace(",6.95,", ",")],
        header=HEADER_II.replace(",Price,", ","),
    )


def write_parquet(path: Path, lines: list[str], header: str = HEADER_II) -> Path:
    """Write comma-separated ``lines`` as an all-text Parquet file (holds what CSV cannot, NUL)."""
    import csv

    import polars as pl

    names = header.split(",")
    rows = list(csv.reader(lines))
    pl.DataFrame(
        {name: [row[i] for row in rows] for i, name in enumerate(names)},
        schema=dict.fromkeys(names, pl.Utf8),
    ).write_parquet(path)
    return path


@pytest.fixture
def csv_file(tmp_path: Path):
    """Factory writing a CSV with the Online Retail II header and the given data lines."""

    def make(lines: list[str], name: str = "data.csv", **kwargs) -> Path:
        return write_csv(tmp_path / name, lines, **kwargs)

    return make


def read_raw_in_a_child(path: Path) -> subprocess.CompletedProcess[str]:
    """Run ``read_raw(path)`` in a fresh Python and print its InputFileError, if any.

    For files that made the reader abort its whole process before the limits existed: a crash
    then fails the calling test instead of pytest itself. Warnings are logged to stderr.
    """
    script = (
        "import logging, sys\n"
        "from retail_clv.errors import InputFileError\n"
        "from retail_clv.ingest.readers import read_raw\n"
        "logging.basicConfig(level=logging.WARNING)\n"
        "try:\n"
        "    read_raw(sys.argv[1])\n"
        "except InputFileError as exc:\n"
        "    print(exc)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=120
    )
