"""The generated raw file goes through the real ingestion pipeline unchanged."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from retail_clv.synth import generate, read_truth

from .helpers import START

pipeline = pytest.importorskip("retail_clv.ingest.pipeline")
db = pytest.importorskip("retail_clv.store.db")
queries = pytest.importorskip("retail_clv.store.queries")


@pytest.mark.parametrize("fmt", ["csv.gz", "xlsx"])
def test_generated_file_round_trips_through_ingest(tmp_path: Path, fmt: str) -> None:
    customers = 400 if fmt == "csv.gz" else 60
    out = tmp_path / f"shop.{fmt}"
    report = generate(customers, START, 14, 21, out, fmt=fmt)
    engine = db.get_engine(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        reports = pipeline.ingest_files([out], engine, progress=False)
        rows_read = sum(r.rows_read for r in reports)
        loaded = sum(r.rows_loaded for r in reports)
        rejected = sum(r.rows_rejected for r in reports)
        duplicate = sum(r.rows_duplicate for r in reports)
        # the accounting invariant, and every clean purchase line loaded, nothing else
        assert rows_read == report.rows_written == loaded + rejected + duplicate
        assert loaded == report.clean_purchase_rows
        assert duplicate == report.dirt["duplicate"]
        reasons: dict[str, int] = {}
        for r in reports:
            for code, count in r.reason_counts.items():
                reasons[code] = reasons.get(code, 0) + count
        assert reasons.get("BAD_DATE", 0) == report.dirt["bad_date"]
        assert sum(r.uncategorised_products for r in reports) == 0
        purchases = queries.read_purchases(engine)
        assert purchases.height == report.clean_purchase_rows
        assert purchases["customer_id"].n_unique() == customers
        # window spend seen by the store equals the truth's actual spend
        cutoff = dt.datetime.combine(report.truth_cutoff, dt.time())
        window = purchases.filter(
            (pl.col("invoice_date") >= cutoff)
            & (pl.col("invoice_date") < cutoff + dt.timedelta(days=30))
        )
        spend = window.group_by("customer_id").agg(
            (pl.col("quantity") * pl.col("price")).sum().alias("spend")
        )
        truth = read_truth(str(report.truth_path)).join(spend, on="customer_id", how="left")
        diff = (truth["spend"].fill_null(0.0) - truth["actual_spend"]).abs().max()
        assert diff is not None and diff < 1e-6  # type: ignore[operator]
        # ingesting again adds nothing
        again = pipeline.ingest_files([out], engine, progress=False)
        assert sum(r.rows_loaded for r in again) == 0
    finally:
        engine.dispose()
