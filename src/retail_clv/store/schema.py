"""Relational schema of the store (SQLAlchemy Core), shared by SQLite and PostgreSQL.

Tables, in data-flow order:

``ingest_runs``
    One row per ingested file (sheet): name, sha256, timestamps, counts per outcome.
``stores``
    Where a sale happened. Online Retail II has no store column: one store per ``Country``.
``products``
    One row per stock code: latest description and a category derived from it.
``customers``
    One row per customer id (text, normalised: ``"13085.0"`` -> ``"13085"``).
``transactions``
    One row per *valid purchase line*; the only rows that count as spend. Each keeps the line's
    country, so an undone ingest run can give a customer back the country of the first purchase
    left.
``cancellations``
    Cancelled lines (``C`` invoices) of known customers, typed, for return-behaviour features.
    They are also in ``rejected_data`` (reason ``CANCELLATION``) and never count as spend.
``rejected_data``
    Every row that is not a valid purchase, with its original raw values as read, where it came
    from (file, sheet, 1-based row), and its reason codes.
``predictions``
    Scores written by ``clv predict`` and served by the API.
``schema_migrations``
    Applied schema versions (see :mod:`retail_clv.store.migrations`).

``row_hash`` columns hold a hash of a row's raw values; the same hash in any table means
"exact duplicate of a row already stored", which makes ingestion idempotent. ``row_key`` is the
first 60 bits of that hash as an integer: the unique index is on it (an integer index builds
about five times faster than one on 32-character text), lookups compare the full hash.
"""

from __future__ import annotations

import sqlalchemy as sa

SCHEMA_VERSION = 5

metadata = sa.MetaData()

schema_migrations = sa.Table(
    "schema_migrations",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("applied_at", sa.DateTime, nullable=False),
)

ingest_runs = sa.Table(
    "ingest_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source_file", sa.String(1000), nullable=False),
    sa.Column("sheet", sa.String(200)),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("file_format", sa.String(20), nullable=False),
    sa.Column("encoding", sa.String(40)),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("finished_at", sa.DateTime),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("rows_read", sa.Integer, nullable=False, default=0),
    sa.Column("rows_loaded", sa.Integer, nullable=False, default=0),
    sa.Column("rows_rejected", sa.Integer, nullable=False, default=0),
    sa.Column("rows_duplicate", sa.Integer, nullable=False, default=0),
    sa.Column("reason_counts", sa.JSON),
)

stores = sa.Table(
    "stores",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("country", sa.String(200)),
)

products = sa.Table(
    "products",
    metadata,
    sa.Column("stock_code", sa.String(64), primary_key=True),
    sa.Column("description", sa.String(500)),
    sa.Column("category", sa.String(100), nullable=False),
)

customers = sa.Table(
    "customers",
    metadata,
    sa.Column("customer_id", sa.String(64), primary_key=True),
    sa.Column("country", sa.String(200)),
    sa.Column("first_seen", sa.DateTime),
)

transactions = sa.Table(
    "transactions",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("invoice", sa.String(64), nullable=False),
    sa.Column("stock_code", sa.String(64), sa.ForeignKey("products.stock_code"), nullable=False),
    sa.Column("customer_id", sa.String(64), sa.ForeignKey("customers.customer_id"), nullable=False),
    sa.Column("store_id", sa.Integer, sa.ForeignKey("stores.id"), nullable=False),
    sa.Column("quantity", sa.BigInteger, nullable=False),
    sa.Column("price", sa.Float, nullable=False),
    sa.Column("invoice_date", sa.DateTime, nullable=False),
    sa.Column("country", sa.String(200)),
    sa.Column("row_hash", sa.String(32), nullable=False),
    sa.Column("row_key", sa.BigInteger, nullable=False),
    sa.Column("ingest_run_id", sa.Integer, sa.ForeignKey("ingest_runs.id"), nullable=False),
    sa.Index("ix_transactions_customer_date", "customer_id", "invoice_date"),
    sa.Index("ux_transactions_row_key", "row_key", unique=True),
)

cancellations = sa.Table(
    "cancellations",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("invoice", sa.String(64), nullable=False),
    sa.Column("stock_code", sa.String(64)),
    sa.Column("customer_id", sa.String(64), nullable=False),
    sa.Column("quantity", sa.BigInteger, nullable=False),
    sa.Column("price", sa.Float),
    sa.Column("invoice_date", sa.DateTime, nullable=False),
    sa.Column("row_hash", sa.String(32), nullable=False),
    sa.Column("row_key", sa.BigInteger, nullable=False),
    sa.Column("ingest_run_id", sa.Integer, sa.ForeignKey("ingest_runs.id"), nullable=False),
    sa.Index("ix_cancellations_customer_date", "customer_id", "invoice_date"),
    sa.Index("ux_cancellations_row_key", "row_key", unique=True),
)

rejected_data = sa.Table(
    "rejected_data",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("ingest_run_id", sa.Integer, sa.ForeignKey("ingest_runs.id"), nullable=False),
    sa.Column("source_file", sa.String(1000), nullable=False),
    sa.Column("sheet", sa.String(200)),
    sa.Column("row_number", sa.BigInteger, nullable=False),
    sa.Column("reasons", sa.String(500), nullable=False),
    sa.Column("raw_invoice", sa.Text),
    sa.Column("raw_stock_code", sa.Text),
    sa.Column("raw_description", sa.Text),
    sa.Column("raw_quantity", sa.Text),
    sa.Column("raw_invoice_date", sa.Text),
    sa.Column("raw_price", sa.Text),
    sa.Column("raw_customer_id", sa.Text),
    sa.Column("raw_country", sa.Text),
    sa.Column("raw_extra", sa.JSON),
    sa.Column("row_hash", sa.String(32), nullable=False),
    sa.Column("row_key", sa.BigInteger, nullable=False),
    sa.Index("ux_rejected_data_row_key", "row_key", unique=True),
)

predictions = sa.Table(
    "predictions",
    metadata,
    sa.Column("customer_id", sa.String(64), primary_key=True),
    sa.Column("model_run_id", sa.String(64), nullable=False),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("horizon_days", sa.Integer, nullable=False),
    sa.Column("predicted_spend_model1", sa.Float, nullable=False),
    sa.Column("predicted_spend_model2", sa.Float, nullable=False),
    sa.Column("predicted_products", sa.Float, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
)
