"""Named, recorded schema migrations (applied in order, each in its own transaction).

Every migration has a version number and a name; applied ones are recorded in
``schema_migrations``. :func:`migrate` applies the missing ones and is safe to run on every
start. A new schema change is a new entry in :data:`MIGRATIONS`, never an edit of an old one.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

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


#: Every migration, in order; the last version equals :data:`schema.SCHEMA_VERSION`.
MIGRATIONS: tuple[Migration, ...] = (Migration(1, "initial schema", _initial_schema),)


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
    """Apply every missing migration, each in its own transaction, and record it.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The store.

    Returns
    -------
    int
        The schema version after migrating.
    """
    with engine.begin() as conn:
        schema.schema_migrations.create(conn, checkfirst=True)
        version = current_version(conn)
    for migration in MIGRATIONS:
        if migration.version <= version:
            continue
        with engine.begin() as conn:
            migration.apply(conn)
            conn.execute(
                schema.schema_migrations.insert().values(
                    version=migration.version,
                    name=migration.name,
                    applied_at=dt.datetime.now(dt.UTC).replace(tzinfo=None),
                )
            )
        logger.info("applied schema migration %d: %s", migration.version, migration.name)
        version = migration.version
    return version
