"""End to end on the full UCI Online Retail II file (../shared/data), exact counts.

The expected numbers are recomputed here by an independent, deliberately simple DuckDB query
over the raw CSV text (``SELECT DISTINCT *`` and the plain rules), and also pinned to the
figures of the data set's README (rows 1,067,371; duplicate extra rows 34,335) and of the
evaluation protocol (5,714 customers with a valid purchase before 2011-11-09).
"""

from pathlib import Path

import duckdb
import polars as pl
import pytest
import sqlalchemy as sa

from retail_clv.ingest.pipeline import ingest_files
from retail_clv.store import load
from retail_clv.store.db import get_engine
from retail_clv.store.queries import read_cancellations, read_purchases

pytestmark = pytest.mark.slow

VALID = """
"Customer ID" IS NOT NULL AND NOT (Invoice LIKE 'A%' AND StockCode = 'B')
AND CAST(Quantity AS BIGINT) > 0 AND CAST(Price AS DOUBLE) > 0
"""


def independent_figures(path: Path) -> dict[str, int]:
    query = f"""
    WITH raw AS (SELECT * FROM read_csv('{path}', all_varchar = true, header = true)),
         u AS (SELECT DISTINCT * FROM raw)
    SELECT
      (SELECT count(*) FROM raw) AS rows_read,
      (SELECT count(*) FROM raw) - count(*) AS duplicates,
      count(*) FILTER (WHERE {VALID}) AS loaded,
      count(*) FILTER (WHERE NOT ({VALID})) AS rejected,
      count(*) FILTER (WHERE "Customer ID" IS NULL) AS missing_customer,
      count(*) FILTER (WHERE Invoice LIKE 'C%' AND CAST(Quantity AS BIGINT) < 0) AS cancellation,
      count(*) FILTER (
        WHERE Invoice LIKE 'C%' AND CAST(Quantity AS BIGINT) < 0 AND "Customer ID" IS NOT NULL
      ) AS cancellations_kept,
      count(*) FILTER (WHERE CAST(Price AS DOUBLE) = 0) AS zero_price,
      count(*) FILTER (WHERE CAST(Price AS DOUBLE) < 0) AS negative_price,
      count(DISTINCT "Customer ID") FILTER (WHERE {VALID}) AS customers,
      count(DISTINCT StockCode) FILTER (WHERE {VALID}) AS products,
      count(DISTINCT "Customer ID") FILTER (
        WHERE {VALID} AND CAST(InvoiceDate AS TIMESTAMP) < TIMESTAMP '2011-11-09') AS before_cutoff
    FROM u
    """
    con = duckdb.connect()
    try:
        frame = con.sql(query).pl()
    finally:
        con.close()
    return frame.row(0, named=True)


def test_full_online_retail_ii_exact_counts_and_idempotency(
    online_retail_ii: Path, tmp_path: Path
) -> None:
    expected = independent_figures(online_retail_ii)
    # Pinned figures: data README, and this independent computation written down once.
    assert expected["rows_read"] == 1_067_371
    assert expected["duplicates"] == 34_335
    assert expected["before_cutoff"] == 5_714
    assert (expected["loaded"], expected["rejected"]) == (779_425, 253_611)

    engine = get_engine(f"sqlite:///{tmp_path / 'full.db'}")
    try:
        [report] = ingest_files([online_retail_ii], engine, progress=False)
        assert report.rows_read == expected["rows_read"]
        assert report.rows_duplicate == expected["duplicates"]
        assert report.rows_loaded == expected["loaded"]
        assert report.rows_rejected == expected["rejected"]
        assert report.reason_counts["MISSING_CUSTOMER_ID"] == expected["missing_customer"]
        assert report.reason_counts["CANCELLATION"] == expected["cancellation"]
        assert report.reason_counts["ZERO_PRICE"] == expected["zero_price"]
        assert report.reason_counts["NEGATIVE_PRICE"] == expected["negative_price"]
        assert report.reason_counts["BAD_DEBT_ADJUSTMENT"] == 6
        assert "BAD_DATE" not in report.reason_counts
        assert report.cancellations == expected["cancellations_kept"]
        assert report.customers == expected["customers"]
        assert report.products == expected["products"]
        assert str(report.date_min) == "2009-12-01 07:45:00"
        assert str(report.date_max) == "2011-12-09 12:50:00"
        assert report.encoding == "utf-8" and report.file_format == "csv.gz"

        purchases = read_purchases(engine)
        assert purchases.height == expected["loaded"]
        before = purchases.filter(pl.col("invoice_date") < pl.datetime(2011, 11, 9))
        assert before["customer_id"].n_unique() == 5_714
        assert read_cancellations(engine).height == expected["cancellations_kept"]
        uncategorised = purchases.filter(pl.col("category") == "Uncategorised")["stock_code"]
        assert uncategorised.n_unique() == report.uncategorised_products
        assert report.uncategorised_products < 0.1 * report.products

        with engine.connect() as conn:
            before_counts = load.table_counts(conn)
        [again] = ingest_files([online_retail_ii], engine, progress=False)
        assert (again.rows_loaded, again.rows_rejected) == (0, 0)
        assert again.rows_duplicate == 1_067_371
        with engine.connect() as conn:
            after_counts = load.table_counts(conn)
            runs = conn.execute(sa.text("SELECT count(*) FROM ingest_runs")).scalar()
        assert {k: v for k, v in after_counts.items() if k != "ingest_runs"} == {
            k: v for k, v in before_counts.items() if k != "ingest_runs"
        }
        assert runs == 2
    finally:
        engine.dispose()


def test_uci_online_retail_header_variant_and_published_figures(online_retail_ii: Path) -> None:
    """The older UCI file (InvoiceNo/UnitPrice/CustomerID) gives the widely published figures.

    541,909 rows, 5,268 exact duplicates; after removing duplicates, missing customer ids,
    cancellations and non-positive quantities/prices: 392,692 lines of 4,338 customers.
    """
    from retail_clv.ingest.pipeline import clean_file

    path = online_retail_ii.parent / "online_retail.csv.gz"
    if not path.exists():
        pytest.skip(f"{path} not found")
    report = clean_file(path).report
    assert report.rows_read == 541_909
    assert report.rows_duplicate == 5_268
    assert report.rows_loaded == 392_692
    assert report.customers == 4_338
    assert report.rows_read == report.rows_loaded + report.rows_rejected + report.rows_duplicate
