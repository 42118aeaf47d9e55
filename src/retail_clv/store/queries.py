"""Read the store back as Polars frames (the inputs of features and models)."""

from __future__ import annotations

from typing import Any

import polars as pl
import sqlalchemy as sa

from retail_clv.store import schema

#: Schema of :func:`read_purchases`.
PURCHASES_SCHEMA: dict[str, Any] = {
    "customer_id": pl.Utf8,
    "invoice": pl.Utf8,
    "stock_code": pl.Utf8,
    "quantity": pl.Int64,
    "price": pl.Float64,
    "invoice_date": pl.Datetime("us"),
    "country": pl.Utf8,
    "category": pl.Utf8,
}
#: Schema of :func:`read_cancellations`.
CANCELLATIONS_SCHEMA: dict[str, Any] = {
    "customer_id": pl.Utf8,
    "invoice": pl.Utf8,
    "stock_code": pl.Utf8,
    "quantity": pl.Int64,
    "price": pl.Float64,
    "invoice_date": pl.Datetime("us"),
}


#: Rows fetched from the database at a time. The rows of one batch exist as Python tuples
#: (several hundred bytes each) only until they become a typed frame of a few dozen bytes
#: per row, so peak memory no longer grows with the whole store read as tuples
#: (``benchmarks/bench_scale.py``).
FETCH_BATCH_ROWS = 100_000


def _frame(engine: sa.Engine, stmt: sa.Select[Any], target: dict[str, Any]) -> pl.DataFrame:
    """Run ``stmt`` through the raw DBAPI cursor and build a frame of schema ``target``.

    Rows are fetched ``FETCH_BATCH_ROWS`` at a time (through a server-side cursor on
    PostgreSQL); each batch is typed against the fixed schema (so batches always agree, even
    one whose column is all null) and the batches are concatenated in order. SQLite returns
    datetimes as text, PostgreSQL as ``datetime``; both end as ``Datetime("us")``.
    """
    sql = str(stmt.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
    loose = {
        name: (pl.Utf8 if engine.dialect.name == "sqlite" and dtype == pl.Datetime("us") else dtype)
        for name, dtype in target.items()
    }
    casts = [
        pl.col(name).str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_unit="us", strict=False)
        for name, dtype in target.items()
        if loose[name] != dtype
    ]
    batches: list[pl.DataFrame] = []
    with engine.connect() as conn:
        dbapi: Any = conn.connection.dbapi_connection
        # psycopg's plain cursor downloads the whole result at execute(); a named (server-side)
        # cursor sends each batch as it is fetched, but needs a transaction (not autocommit).
        # SQLite's cursor steps through the rows anyway.
        server_side = engine.dialect.name == "postgresql" and not dbapi.autocommit
        cursor = dbapi.cursor(name="retail_clv_read") if server_side else dbapi.cursor()
        try:
            cursor.execute(sql)
            while rows := cursor.fetchmany(FETCH_BATCH_ROWS):
                batch = pl.DataFrame(rows, schema=loose, orient="row")
                del rows
                batches.append(batch.with_columns(casts) if casts else batch)
        finally:
            cursor.close()
    if not batches:
        return pl.DataFrame(schema=target)
    return pl.concat(batches, rechunk=False)


def _by_date(frame: pl.DataFrame) -> pl.DataFrame:
    """Return ``frame`` ordered by ``invoice_date``, ties by stored ``id``; drop ``id``.

    The query already asks the database for that order: sorting there keeps the read's peak
    memory near the frame's own size, where sorting the read frame in Polars roughly doubled
    it. The stored dates are fixed-width text on SQLite, so text order is time order; the
    check below (one pass) re-sorts a store whose text was written otherwise.
    """
    date, row = frame["invoice_date"], frame["id"]
    # the same instant written as two texts can also put a tie out of id order
    if date.is_sorted() and not ((date == date.shift(1)) & (row < row.shift(1))).any():
        return frame.drop("id").with_columns(pl.col("invoice_date").set_sorted())
    return frame.sort("invoice_date", "id").drop("id")


def read_purchases(engine: sa.Engine) -> pl.DataFrame:
    """Return every valid purchase line in the store.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The store.

    Returns
    -------
    polars.DataFrame
        Columns ``customer_id: Utf8, invoice: Utf8, stock_code: Utf8, quantity: Int64,
        price: Float64, invoice_date: Datetime("us"), country: Utf8, category: Utf8``, ordered
        by ``invoice_date`` then insertion order. ``country`` is the customer's first recorded
        country (``customers.country``), not the store's: a store's country is only its most
        frequent one, and a customer of another country may buy there.
    """
    t, c, p = schema.transactions, schema.customers, schema.products
    stmt = (
        sa.select(
            t.c.customer_id,
            t.c.invoice,
            t.c.stock_code,
            t.c.quantity,
            t.c.price,
            t.c.invoice_date,
            c.c.country,
            p.c.category,
            t.c.id,
        )
        .select_from(
            t.join(c, t.c.customer_id == c.c.customer_id).join(p, t.c.stock_code == p.c.stock_code)
        )
        .order_by(t.c.invoice_date, t.c.id)
    )
    return _by_date(_frame(engine, stmt, {**PURCHASES_SCHEMA, "id": pl.Int64}))


def read_cancellations(engine: sa.Engine) -> pl.DataFrame:
    """Return every stored cancellation line of a known customer.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The store.

    Returns
    -------
    polars.DataFrame
        Columns ``customer_id, invoice, stock_code, quantity`` (negative ``Int64``),
        ``price, invoice_date``, ordered by ``invoice_date``.
    """
    c = schema.cancellations
    stmt = sa.select(
        c.c.customer_id,
        c.c.invoice,
        c.c.stock_code,
        c.c.quantity,
        c.c.price,
        c.c.invoice_date,
        c.c.id,
    ).order_by(c.c.invoice_date, c.c.id)
    return _by_date(_frame(engine, stmt, {**CANCELLATIONS_SCHEMA, "id": pl.Int64}))


def read_rejections(
    engine: sa.Engine, reason: str | None = None, limit: int = 50, offset: int = 0
) -> tuple[int, pl.DataFrame]:
    """Return the number of rejected rows (optionally with ``reason``) and one page of them.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The store.
    reason : str, optional
        A reason code; only rows carrying it are counted and returned.
    limit, offset : int
        Page size and start.

    Returns
    -------
    tuple of (int, polars.DataFrame)
        Total matching rows and the page (``rejected_data`` columns), ordered by id.
    """
    r = schema.rejected_data
    condition: sa.ColumnElement[bool] = sa.true()
    if reason:
        pattern = sa.literal("|") + r.c.reasons + sa.literal("|")
        condition = pattern.like(f"%|{reason}|%")
    with engine.connect() as conn:
        total = int(
            conn.execute(sa.select(sa.func.count()).select_from(r).where(condition)).scalar_one()
        )
        rows = conn.execute(
            sa.select(r).where(condition).order_by(r.c.id).limit(limit).offset(offset)
        ).mappings()
        page = pl.DataFrame([dict(row) for row in rows], infer_schema_length=None)
    return total, page
