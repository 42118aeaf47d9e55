"""Helpers shared by the synth tests: read a generated file as an ingestion would."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

START = dt.date(2009, 12, 1)


def read_raw(path: Path) -> pl.DataFrame:
    """The raw CSV as text, like an ingestion would see it."""
    return pl.read_csv(path, infer_schema_length=0).with_columns(pl.all().fill_null(""))


def clean_purchases(raw: pl.DataFrame) -> pl.DataFrame:
    """Valid purchase lines by the ingestion rules, deduplicated, typed."""
    return (
        raw.unique(maintain_order=True)
        .filter(
            ~pl.col("Invoice").str.contains("^[CA]")
            & (pl.col("Customer ID") != "")
            & pl.col("InvoiceDate").str.contains(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
        )
        .with_columns(
            pl.col("Quantity").cast(pl.Int64),
            pl.col("Price").cast(pl.Float64),
            pl.col("InvoiceDate").str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False),
        )
        .filter(pl.col("InvoiceDate").is_not_null() & (pl.col("Quantity") > 0))
        .filter(pl.col("Price") > 0)
    )
