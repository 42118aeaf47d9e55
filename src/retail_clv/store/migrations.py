"""Named, recorded schema migrations (applied in order, each in its own transaction).

Every migration has a version number and a name; applied ones are recorded in
``schema_migrations``. :func:`migrate` applies the missing ones and is safe to run on every
start. A new schema change is a new entry in :data:`MIGRATIONS`, never an edit of an old one.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import polars as pl
import sqlalchemy as sa

from retail_clv.store import schema

logger = logging.getLogger(__name__)

# Tables of the first version of the schema (``predictions`` included, written by the models).
_V1_TABLES = (
    "ingest_runs",
    "stores",
    "products",
    "customers",
    "transactions",
    "cancellations",
    "rejected_data",
    "predictions",
)


@dataclass(frozen=True)
class Migration:
    """One schema change: a version, a human-readable name and the function applying it."""

    version: int
    name: str
    apply: Callable[[sa.Connection], None]


def _initial_schema(conn: sa.Connection) -> None:
    tables = [schema.metadata.tables[name] for name in _V1_TABLES]
    schema.metadata.create_all(conn, tables=tables, checkfirst=True)


def row_key_expr(row_hash: pl.Expr) -> pl.Expr:
    """Return the integer key of a row hash: its first 15 hex digits (60 bits) as Int64.

    Parameters
    ----------
    row_hash : polars.Expr
        32-character md5 hex digests.

    Returns
    -------
    polars.Expr
        Non-negative Int64 keys.
    """
    return row_hash.str.slice(0, 15).str.to_integer(base=16, dtype=pl.Int64).alias("row_key")


_HASHED_TABLES = ("transactions", "cancellations", "rejected_data")


def _integer_row_keys(conn: sa.Connection) -> None:
    """Add ``row_key`` (indexed, unique) next to ``row_hash``; drop the text hash indexes.

    A database created by this code's first schema has no ``row_key``: the column is added and
    filled from ``row_hash`` (computed by Polars, written back by id). On a database created
    with the current schema (which already has it) only the index names are checked.
    """
    inspector = sa.inspect(conn)
    for name in _HASHED_TABLES:
        table = schema.metadata.tables[name]
        columns = {c["name"] for c in inspector.get_columns(name)}
        indexes = {ix["name"] for ix in inspector.get_indexes(name)}
        old_index = f"ux_{name}_row_hash"
        if old_index in indexes:
            conn.execute(sa.text(f"DROP INDEX {old_index}"))
        if "row_key" not in columns:
            conn.execute(sa.text(f"ALTER TABLE {name} ADD COLUMN row_key BIGINT"))
            rows = conn.execute(sa.select(table.c.id, table.c.row_hash)).all()
            if rows:
                keys = pl.DataFrame(
                    [tuple(r) for r in rows], schema={"id": pl.Int64, "h": pl.Utf8}, orient="row"
                ).select(b_id=pl.col("id"), b_key=row_key_expr(pl.col("h")))
                conn.execute(
                    table.update()
                    .where(table.c.id == sa.bindparam("b_id"))
                    .values(row_key=sa.bindparam("b_key")),
                    keys.to_dicts(),
                )
        for index in table.indexes:
            if index.name not in indexes:
                index.create(conn)


def _normalise_customer_ids(conn: sa.Connection) -> None:
    """Rewrite the stored customer ids as ingestion now writes them (``normalise_customer_id``).

    Migration 3: e-mail addresses lower-cased. Stores written before kept ``Kunde@Shop.de`` as
    written: its next purchases, ingested as ``kunde@shop.de``, would make a second customer,
    and the API (which normalises ids the same way) would not find the first. Migration 5: a
    whole number written with two zero decimals (``12346.00``) loses them, as ``12346.0``
    always did. One customer row is kept per normalised id (the earliest first purchase and its
    country); stored predictions of a renamed id are dropped (the next scoring writes them
    again). Both run the current rule, so a store older than 3 is rewritten in full by 3 and 5
    finds nothing left.
    """
    from retail_clv.ingest.rules import normalise_customer_id

    c = schema.customers
    rows = conn.execute(sa.select(c.c.customer_id, c.c.country, c.c.first_seen)).all()
    kept = {row.customer_id: row for row in rows}
    renamed = [row for row in rows if normalise_customer_id(row.customer_id) != row.customer_id]
    for row in sorted(renamed, key=lambda r: (r.first_seen is None, r.first_seen)):
        new = normalise_customer_id(row.customer_id)
        if new not in kept:
            conn.execute(
                c.insert().values(customer_id=new, country=row.country, first_seen=row.first_seen)
            )
            kept[new] = row
        elif row.first_seen is not None and (
            kept[new].first_seen is None or row.first_seen < kept[new].first_seen
        ):
            conn.execute(
                c.update()
                .where(c.c.customer_id == new)
                .values(country=row.country, first_seen=row.first_seen)
            )
            kept[new] = row
        for table in (schema.transactions, schema.cancellations):
            conn.execute(
                table.update().where(table.c.customer_id == row.customer_id).values(customer_id=new)
            )
        conn.execute(
            schema.predictions.delete().where(schema.predictions.c.customer_id == row.customer_id)
        )
        conn.execute(c.delete().where(c.c.customer_id == row.customer_id))
    if renamed:
        logger.info("normalised %d customer ids", len(renamed))


def _purchase_line_country(conn: sa.Connection) -> None:
    """Add ``transactions.country``, the country written on each purchase line.

    An undone ingest run gives a customer back the country of the first purchase left, which
    needs every line's country. Lines stored before are given the best the store knows: the
    customer's country (``customers.country``, the country of their first purchase) on the
    lines at their first purchase time, the store's country on the others (the line's own for
    files without a store column, where each country is a store). On a database created with
    the current schema (which already has the column) nothing is done.
    """
    columns = {c["name"] for c in sa.inspect(conn).get_columns("transactions")}
    if "country" in columns:
        return
    conn.execute(sa.text("ALTER TABLE transactions ADD COLUMN country VARCHAR(200)"))
    t, s, c = schema.transactions, schema.stores, schema.customers
    conn.execute(
        t.update().values(
            country=sa.select(s.c.country).where(s.c.id == t.c.store_id).scalar_subquery()
        )
    )
    at_first_purchase = (
        sa.select(c.c.country)
        .where(c.c.customer_id == t.c.customer_id, c.c.first_seen == t.c.invoice_date)
        .scalar_subquery()
    )
    conn.execute(
        t.update()
        .values(country=at_first_purchase)
        .where(
            sa.exists().where(
                c.c.customer_id == t.c.customer_id, c.c.first_seen == t.c.invoice_date
            )
        )
    )


#: Every migration, in order; the last version equals :data:`schema.SCHEMA_VERSION`.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial schema", _initial_schema),
    Migration(2, "integer row keys for the duplicate index", _integer_row_keys),
    Migration(3, "e-mail customer ids lower-cased", _normalise_customer_ids),
    Migration(4, "country of each purchase line", _purchase_line_country),
    Migration(5, "customer ids written 12346.00 read as 12346", _normalise_customer_ids),
)


def current_version(conn: sa.Connection) -> int:
    """Return the highest applied migration version (0 for an empty database).

    Parameters
    ----------
    conn : sqlalchemy.Connection
        An open connection.

    Returns
    -------
    int
        The schema version of the database.
    """
    if not sa.inspect(conn).has_table(schema.schema_migrations.name):
        return 0
    value = conn.execute(sa.select(sa.func.max(schema.schema_migrations.c.version))).scalar()
    return int(value or 0)


def migrate(engine: sa.Engine) -> int:
    """Apply every missing migration, each in its own transaction (on SQLite too), and record it.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The store.

    Returns
    -------
    int
        The schema version after migrating.
    """
    with _migration_lock(engine):
        return _migrate(engine)


#: Key of the PostgreSQL advisory lock held while migrating (any constant; "clv" in ASCII).
_MIGRATION_LOCK_KEY = 0x636C76


@contextmanager
def _migration_lock(engine: sa.Engine) -> Iterator[None]:
    """Serialise migrations of one PostgreSQL database across processes (API workers, CLIs).

    Without it, two processes starting on an empty database both create the tables and one
    fails. SQLite serialises writers itself.
    """
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
        try:
            yield
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": _MIGRATION_LOCK_KEY})


def _migrate(engine: sa.Engine) -> int:
    with engine.begin() as conn:
        schema.schema_migrations.create(conn, checkfirst=True)
        version = current_version(conn)
    new_store = version == 0  # its upgrades are no news: one line says the store was created
    for migration in MIGRATIONS:
        if migration.version <= version:
            continue
        with engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                # pysqlite opens a transaction only before a data change, so an ALTER TABLE first
                # would commit on its own: a migration stopped half-way (Ctrl-C, a full disk)
                # left the column without its values and was then taken as done
                conn.exec_driver_sql("BEGIN")
            migration.apply(conn)
            conn.execute(
                schema.schema_migrations.insert().values(
                    version=migration.version,
                    name=migration.name,
                    applied_at=dt.datetime.now(dt.UTC).replace(tzinfo=None),
                )
            )
        logger.log(
            logging.DEBUG if new_store else logging.INFO,
            "applied schema migration %d: %s",
            migration.version,
            migration.name,
        )
        version = migration.version
    if new_store:
        logger.info("created a new store (schema version %d)", version)
    return version
