"""Bulk, idempotent writes of cleaned frames into the store (one transaction per run).

The caller opens the transaction (``with engine.begin() as conn``); everything here runs in
it, so a failure anywhere rolls the whole file back. Rows are written in bulk: the DBAPI
``executemany`` on SQLite, ``COPY ... FROM STDIN`` on PostgreSQL; never ORM objects.

This module knows frames and tables, not files or rules: it is fed by
:mod:`retail_clv.ingest.pipeline` through the duck-typed ``result`` argument of
:func:`write_result` (a ``CleanResult``).
"""

from __future__ import annotations

import datetime as dt
import io
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import numpy as np
import polars as pl
import sqlalchemy as sa

from retail_clv.errors import StoreError
from retail_clv.store import schema
from retail_clv.store.migrations import row_key_expr
from retail_clv.store.runs import SUCCEEDED

logger = logging.getLogger(__name__)

_BATCH = 100_000
_IN_CHUNK = 5_000
_SMALL_LOOKUP = 50_000
_HASH_LENGTH = 32
_MAX_DESCRIPTION = 500
_MAX_SHEETS = 200
_REBUILD_MIN_ROWS = 50_000


def _fit(text: str, limit: int) -> str:
    """Return ``text`` cut to ``limit`` characters, ending with "…" when it was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Report(Protocol):
    source_file: str
    sheet: str | None
    file_format: str
    encoding: str | None
    rows_read: int
    rows_loaded: int
    rows_rejected: int
    rows_duplicate: int
    reason_counts: dict[str, int]


class _Result(Protocol):
    valid_rows: pl.DataFrame
    cancellation_rows: pl.DataFrame
    rejected: pl.DataFrame
    products_table: pl.DataFrame
    report: Any
    sha256: str


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


_BULK_PRAGMAS = {"synchronous": "OFF", "cache_size": "-262144", "temp_store": "MEMORY"}


@contextmanager
def bulk_session(engine: sa.Engine) -> Iterator[sa.Connection]:
    """Yield a connection tuned for one bulk load; its settings are restored afterwards.

    On SQLite, ``synchronous=OFF`` skips the fsyncs of the commit and a 256 MB page cache
    keeps the indexes in memory. A crash of the *process* still leaves the file as it was
    before the run (the rollback journal is on disk); an operating-system crash or power loss
    right after the commit could damage the file, which is why the previous settings are put
    back on the pooled connection when the run ends. No tuning on other databases. The caller
    opens the run's transaction with ``conn.begin()``.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The store.

    Yields
    ------
    sqlalchemy.Connection
        A connection with no transaction open.
    """
    with engine.connect() as conn:
        previous: dict[str, Any] = {}
        if conn.dialect.name == "sqlite":
            for name, value in _BULK_PRAGMAS.items():
                previous[name] = conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                conn.exec_driver_sql(f"PRAGMA {name} = {value}")
            conn.commit()
        try:
            yield conn
        finally:
            if previous:
                if conn.in_transaction():
                    conn.rollback()
                for name, value in previous.items():
                    conn.exec_driver_sql(f"PRAGMA {name} = {value}")
                conn.commit()


def existing_hashes(conn: sa.Connection, *candidates: pl.Series) -> pl.Series:
    """Return the hashes among ``candidates`` that are already stored.

    Looks in ``transactions`` and ``rejected_data`` (every cancellation is also a rejected
    row). Small files are looked up with ``IN`` batches; large ones against all stored hashes.

    Parameters
    ----------
    conn : sqlalchemy.Connection
        Connection inside the run's transaction.
    *candidates : polars.Series
        Row hashes of the file being ingested.

    Returns
    -------
    polars.Series
        Stored hashes (Utf8) that occur among the candidates.
    """
    wanted = pl.concat([c.cast(pl.Utf8) for c in candidates]) if candidates else pl.Series([])
    empty = pl.Series("row_hash", [], dtype=pl.Utf8)
    if wanted.len() == 0:
        return empty
    tables = [schema.transactions, schema.rejected_data]
    has_rows = [conn.execute(sa.select(t.c.row_hash).limit(1)).first() is not None for t in tables]
    if not any(has_rows):
        return empty
    if wanted.len() <= _SMALL_LOOKUP:
        keys = pl.DataFrame({"row_hash": wanted.unique()}).with_columns(
            row_key=row_key_expr(pl.col("row_hash"))
        )
        values = keys["row_key"].to_list()
        found: list[str] = []
        for table, populated in zip(tables, has_rows, strict=True):
            if not populated:
                continue
            for start in range(0, len(values), _IN_CHUNK):
                chunk = values[start : start + _IN_CHUNK]
                stmt = sa.select(table.c.row_hash).where(table.c.row_key.in_(chunk))
                found.extend(conn.execute(stmt).scalars().all())
        # Equal keys with different hashes (a 60-bit collision) are not duplicates.
        hits = pl.Series("row_hash", found, dtype=pl.Utf8)
        return hits.filter(hits.is_in(wanted.implode()))
    # All stored hashes as ONE string (32 hex characters each), split by NumPy: no Python
    # object per stored row.
    union = sa.union_all(*(sa.select(t.c.row_hash) for t in tables)).subquery()
    concat = (
        sa.func.string_agg(union.c.row_hash, sa.literal(""))
        if conn.dialect.name == "postgresql"
        else sa.func.group_concat(union.c.row_hash, sa.literal(""))
    )
    joined = conn.execute(sa.select(concat)).scalar() or ""
    if len(joined) % _HASH_LENGTH:
        raise StoreError("stored row hashes are not all 32-character md5 digests")
    digests = np.frombuffer(joined.encode("ascii"), dtype=f"S{_HASH_LENGTH}")
    stored = pl.DataFrame({"row_hash": pl.Series(digests).cast(pl.Utf8)})
    return stored.filter(pl.col("row_hash").is_in(wanted.implode()))["row_hash"]


#: What makes two purchase lines the same sale, whatever file or export they came from.
SALE_KEY: tuple[str, ...] = (
    "invoice",
    "stock_code",
    "customer_id",
    "quantity",
    "price",
    "invoice_date",
)


def store_holds_purchases(conn: sa.Connection) -> bool:
    """Whether the store holds any purchase line at all."""
    return conn.execute(sa.select(schema.transactions.c.id).limit(1)).first() is not None


def stored_purchase_near(conn: sa.Connection, day: dt.date, days: int) -> bool:
    """Whether the store holds a purchase less than ``days`` days from ``day`` (either side).

    Parameters
    ----------
    conn : sqlalchemy.Connection
        Connection to the store.
    day : datetime.date
        The day.
    days : int
        Distance, in days.

    Returns
    -------
    bool
        True when some transaction is dated in ``(day - days, day + days)``.
    """
    t = schema.transactions
    start = dt.datetime.combine(day, dt.time()) - dt.timedelta(days=days - 1)
    stop = dt.datetime.combine(day, dt.time()) + dt.timedelta(days=days)
    query = sa.select(t.c.id).where(t.c.invoice_date >= start, t.c.invoice_date < stop).limit(1)
    return conn.execute(query).first() is not None


def stored_line_matches(conn: sa.Connection, lines: pl.DataFrame) -> int:
    """Count ``lines`` whose sale (:data:`SALE_KEY`) is already stored as a transaction.

    Duplicates are recognised by their raw text, so the same sales exported again in another
    format (``1`` vs ``1.0``, another date layout, edited descriptions) are new rows to the
    store; this count lets the caller say so. Times are compared to the minute, since one
    export may write seconds where another does not, and invoice numbers without a leading
    ``#`` (Shopify writes ``#1001`` where an accounting export writes ``1001``). Only stored
    lines dated within the new lines' date range are read.

    Parameters
    ----------
    conn : sqlalchemy.Connection
        Connection to the store.
    lines : polars.DataFrame
        New valid purchase lines with the :data:`SALE_KEY` columns.

    Returns
    -------
    int
        How many of ``lines`` match a stored transaction.
    """
    t = schema.transactions
    if lines.height == 0 or conn.execute(sa.select(t.c.id).limit(1)).first() is None:
        return 0
    to_minute = pl.col("invoice_date").dt.truncate("1m")
    # Shopify writes order numbers "#1001" where other exports write "1001"
    bare_invoice = pl.col("invoice").cast(pl.Utf8).str.strip_chars().str.strip_chars_start("#")
    keys = lines.select(SALE_KEY).with_columns(to_minute, bare_invoice)
    lo, last = keys["invoice_date"].min(), keys["invoice_date"].max()
    assert isinstance(last, dt.datetime)  # lines hold no null date
    rows = conn.execute(
        sa.select(*(t.c[name] for name in SALE_KEY)).where(
            t.c.invoice_date >= lo, t.c.invoice_date < last + dt.timedelta(minutes=1)
        )
    ).fetchall()
    if not rows:
        return 0
    stored = pl.DataFrame([tuple(row) for row in rows], schema=list(SALE_KEY), orient="row")
    stored = stored.cast(keys.schema).with_columns(to_minute, bare_invoice)
    return keys.join(stored.unique(), on=list(SALE_KEY), how="semi").height


def _prepare(frame: pl.DataFrame, dialect: str) -> pl.DataFrame:
    """Format datetimes as text the way SQLAlchemy stores them on SQLite."""
    if dialect != "sqlite":
        return frame
    return frame.with_columns(
        pl.col(name).dt.strftime("%Y-%m-%d %H:%M:%S.%6f")
        for name, dtype in frame.schema.items()
        if dtype == pl.Datetime or isinstance(dtype, pl.Datetime)
    )


def _sql_literal(value: Any) -> str:
    """Render an int or str constant as an SQL literal (quotes doubled)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"unsupported constant {value!r}")
    if isinstance(value, int):
        return str(value)
    return "'" + value.replace("'", "''") + "'"


def bulk_insert(
    conn: sa.Connection,
    table: sa.Table,
    frame: pl.DataFrame,
    constants: dict[str, Any] | None = None,
) -> int:
    """Insert every row of ``frame`` into ``table`` in bulk, inside the current transaction.

    Parameters
    ----------
    conn : sqlalchemy.Connection
        Connection inside a transaction.
    table : sqlalchemy.Table
        Target table; ``frame``'s columns must be columns of it.
    frame : polars.DataFrame
        Rows to insert.
    constants : dict of str to int or str, optional
        Columns with the same value on every row (e.g. the ingest run id); on SQLite they are
        written as literals in the statement instead of being bound on every row.

    Returns
    -------
    int
        Number of rows the database reports inserted.
    """
    if frame.height == 0:
        return 0
    constants = dict(constants or {})
    dialect = conn.dialect.name
    dbapi = conn.connection.dbapi_connection
    if dbapi is None:  # pragma: no cover - a live connection always has one
        raise StoreError("the database connection is closed")
    if dialect == "postgresql":
        full = frame.with_columns(pl.lit(v).alias(k) for k, v in constants.items())
        buffer = io.StringIO()
        full.write_csv(
            buffer,
            include_header=False,
            quote_style="non_numeric",
            datetime_format="%Y-%m-%d %H:%M:%S%.6f",
        )
        sql = f"COPY {table.name} ({', '.join(full.columns)}) FROM STDIN WITH (FORMAT csv)"
        pg_cursor: Any = dbapi.cursor()
        try:
            with pg_cursor.copy(sql) as copy:
                copy.write(buffer.getvalue())
            return int(pg_cursor.rowcount if pg_cursor.rowcount >= 0 else full.height)
        finally:
            pg_cursor.close()
    prepared = _prepare(frame, dialect)
    if dialect == "sqlite":
        # Columns that are null on every row are left to their NULL default: fewer binds.
        prepared = prepared.select(
            name for name in prepared.columns if prepared[name].null_count() < prepared.height
        )
        columns = prepared.columns
        names = ", ".join([*columns, *constants])
        values = ", ".join(["?"] * len(columns) + [_sql_literal(v) for v in constants.values()])
        sql = f"INSERT INTO {table.name} ({names}) VALUES ({values})"
        inserted = 0
        cursor = dbapi.cursor()
        try:
            for start in range(0, prepared.height, _BATCH):
                batch = prepared.slice(start, _BATCH)
                # Column lists zipped into tuples lazily: cheaper than DataFrame.rows().
                rows = zip(*(batch[c].to_list() for c in columns), strict=True)
                cursor.executemany(sql, rows)  # type: ignore[arg-type]
                inserted += cursor.rowcount
        finally:
            cursor.close()
        return inserted
    full = prepared.with_columns(pl.lit(v).alias(k) for k, v in constants.items())
    for start in range(0, full.height, _BATCH):
        conn.execute(table.insert(), full.slice(start, _BATCH).to_dicts())
    return full.height


def _bulk_insert_indexed(
    conn: sa.Connection,
    table: sa.Table,
    frame: pl.DataFrame,
    constants: dict[str, Any] | None = None,
) -> int:
    """Insert in bulk; on SQLite, rebuild the table's indexes when the load dominates.

    Inserting ~1M random ``row_key`` values into a live B-tree costs several times more than
    building the index once afterwards, so when the new rows outnumber the stored ones the
    indexes are dropped and re-created *inside the same transaction* (a rollback restores
    them, and a duplicate key still fails the unique index and rolls the run back).
    """
    if conn.dialect.name != "sqlite" or frame.height < _REBUILD_MIN_ROWS:
        return bulk_insert(conn, table, frame, constants)
    stored = conn.execute(sa.select(sa.func.max(table.c.id))).scalar() or 0
    if frame.height <= stored:
        return bulk_insert(conn, table, frame, constants)
    indexes = sorted(table.indexes, key=lambda ix: str(ix.name))
    for index in indexes:
        index.drop(conn)
    inserted = bulk_insert(conn, table, frame, constants)
    for index in indexes:
        index.create(conn)
    return inserted


def _select_frame(
    conn: sa.Connection, stmt: sa.Select[Any], schema_: dict[str, Any]
) -> pl.DataFrame:
    rows = conn.execute(stmt).all()
    return pl.DataFrame([tuple(r) for r in rows], schema=schema_, orient="row")


def _upsert_stores(conn: sa.Connection, valid: pl.DataFrame) -> pl.DataFrame:
    wanted = (
        valid.group_by("store", "country")
        .len()
        .sort(["store", "len", "country"], descending=[False, True, False], nulls_last=True)
        .group_by("store", maintain_order=True)
        .first()
        .select(pl.col("store").alias("name"), "country")
    )
    existing = _select_frame(conn, sa.select(schema.stores.c.name), {"name": pl.Utf8})
    new = wanted.join(existing, on="name", how="anti")
    bulk_insert(conn, schema.stores, new)
    return _select_frame(
        conn,
        sa.select(schema.stores.c.name, schema.stores.c.id),
        {"store": pl.Utf8, "store_id": pl.Int64},
    )


def _upsert_products(conn: sa.Connection, products: pl.DataFrame) -> int:
    existing = _select_frame(conn, sa.select(schema.products.c.stock_code), {"stock_code": pl.Utf8})
    new = products.select(
        "stock_code", pl.col("description").str.slice(0, _MAX_DESCRIPTION), "category"
    ).join(existing, on="stock_code", how="anti")
    return bulk_insert(conn, schema.products, new)


def first_purchases(lines: pl.DataFrame) -> pl.DataFrame:
    """Return each customer's first purchase: its time (``first_seen``) and its country.

    The one rule for ``customers.first_seen`` and ``customers.country``, used when a file is
    ingested and when an ingest run is undone: the earliest ``invoice_date``; among lines of
    that time, the first in ``lines``' order. The callers pass lines in the order they are
    stored (``transactions.id``: ingest runs in order, a file's lines in file order), so a
    tie goes to the line stored first.

    Parameters
    ----------
    lines : polars.DataFrame
        Purchase lines with ``customer_id``, ``invoice_date`` and ``country``, in stored order.

    Returns
    -------
    polars.DataFrame
        ``customer_id, country, first_seen``, one row per customer.
    """
    return (
        lines.sort("invoice_date", maintain_order=True)
        .group_by("customer_id")
        .agg(pl.col("country").first(), pl.col("invoice_date").first().alias("first_seen"))
    )


def _upsert_customers(conn: sa.Connection, lines: pl.DataFrame) -> int:
    """Add the customers of ``lines`` (in the order they will be stored), or move them earlier.

    A stored customer takes the file's first purchase only when it is strictly earlier: on a
    tie the stored line, stored first, wins (:func:`first_purchases`).
    """
    per_customer = first_purchases(lines)
    existing = _select_frame(
        conn,
        sa.select(schema.customers.c.customer_id, schema.customers.c.first_seen),
        {"customer_id": pl.Utf8, "stored_first_seen": pl.Datetime("us")},
    )
    new = per_customer.join(existing, on="customer_id", how="anti")
    bulk_insert(conn, schema.customers, new.select("customer_id", "country", "first_seen"))
    earlier = per_customer.join(existing, on="customer_id", how="inner").filter(
        pl.col("first_seen") < pl.col("stored_first_seen")
    )
    if earlier.height:
        # the first purchase's country goes with it (features read the first country)
        set_first_purchases(conn, earlier)
    return new.height


def set_first_purchases(conn: sa.Connection, first: pl.DataFrame) -> None:
    """Write ``first_seen`` and ``country`` of stored customers (a :func:`first_purchases` frame).

    Parameters
    ----------
    conn : sqlalchemy.Connection
        Connection inside the caller's transaction.
    first : polars.DataFrame
        ``customer_id, country, first_seen`` (other columns are ignored).
    """
    if first.height == 0:
        return
    stmt = (
        schema.customers.update()
        .where(schema.customers.c.customer_id == sa.bindparam("cid"))
        .values(first_seen=sa.bindparam("fs"), country=sa.bindparam("first_country"))
    )
    conn.execute(
        stmt,
        first.select(
            pl.col("customer_id").alias("cid"),
            pl.col("first_seen").alias("fs"),
            pl.col("country").alias("first_country"),
        ).to_dicts(),
    )


def write_result(
    conn: sa.Connection,
    result: _Result,
    on_step: Callable[[str], None] | None = None,
) -> int:
    """Write one cleaned file into the store and record its ingest run.

    Parameters
    ----------
    conn : sqlalchemy.Connection
        Connection inside the run's transaction (the caller commits or rolls back).
    result : CleanResult
        Output of :func:`retail_clv.ingest.pipeline.clean_file`, already stripped of rows
        stored before (:func:`existing_hashes`).
    on_step : callable, optional
        Called with a short description before each stage (progress display).

    Returns
    -------
    int
        The ``ingest_runs.id`` of this run.

    Raises
    ------
    StoreError
        When the rows written do not match the report (the transaction is then rolled back).
    """
    step = on_step or (lambda _message: None)
    report: _Report = result.report
    started = _now()
    inserted = conn.execute(
        schema.ingest_runs.insert().values(
            source_file=report.source_file,
            sheet=_fit(report.sheet, _MAX_SHEETS) if report.sheet else None,
            sha256=result.sha256 or "",
            file_format=report.file_format,
            encoding=report.encoding,
            started_at=started,
            status="running",
            rows_read=report.rows_read,
        )
    ).inserted_primary_key
    if inserted is None:  # pragma: no cover - every supported dialect returns the key
        raise StoreError("the database did not return the id of the new ingest run")
    run_id = int(inserted[0])

    valid = result.valid_rows
    step("writing stores, products, customers")
    stores = _upsert_stores(conn, valid)
    _upsert_products(conn, result.products_table)
    # in the order they are stored, so that customers' first purchases follow the stored order
    transactions = valid.join(stores, on="store", how="left", maintain_order="left").select(
        "invoice",
        "stock_code",
        "customer_id",
        "store_id",
        "quantity",
        "price",
        "invoice_date",
        "country",
        "row_hash",
    )
    _upsert_customers(conn, transactions)
    run = {"ingest_run_id": run_id}
    keyed = [
        (table, frame.with_columns(row_key=row_key_expr(pl.col("row_hash"))))
        for table, frame in (
            (schema.transactions, transactions),
            (schema.cancellations, result.cancellation_rows),
            (schema.rejected_data, result.rejected),
        )
    ]
    stored: dict[str, int] = {}
    for table, frame in keyed:
        step("writing rejected rows" if table.name == "rejected_data" else f"writing {table.name}")
        stored[table.name] = _bulk_insert_indexed(conn, table, frame, run)
    step("checking the accounting invariant")
    expected = {
        "transactions": report.rows_loaded,
        "cancellations": result.cancellation_rows.height,
        "rejected_data": report.rows_rejected,
    }
    if stored != expected:
        raise StoreError(
            f"stored rows {stored} differ from the report {expected} for {report.source_file}; "
            "the run was rolled back"
        )
    conn.execute(
        schema.ingest_runs.update()
        .where(schema.ingest_runs.c.id == run_id)
        .values(
            finished_at=_now(),
            status=SUCCEEDED,
            rows_loaded=report.rows_loaded,
            rows_rejected=report.rows_rejected,
            rows_duplicate=report.rows_duplicate,
            reason_counts=dict(report.reason_counts),
        )
    )
    return int(run_id)


def table_counts(conn: sa.Connection, names: Sequence[str] | None = None) -> dict[str, int]:
    """Return the number of rows of each store table (for reports and tests).

    Parameters
    ----------
    conn : sqlalchemy.Connection
        An open connection.
    names : sequence of str, optional
        Table names; default every table of the schema.

    Returns
    -------
    dict of str to int
        Row count per table.
    """
    names = list(names or schema.metadata.tables)
    return {
        name: int(
            conn.execute(
                sa.select(sa.func.count()).select_from(schema.metadata.tables[name])
            ).scalar_one()
        )
        for name in names
    }
