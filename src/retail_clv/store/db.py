"""Open the store (SQLite file or PostgreSQL) and bring its schema up to date."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError

from retail_clv.config import get_settings
from retail_clv.errors import INGEST_HINT, StoreError
from retail_clv.store.migrations import current_version, migrate

logger = logging.getLogger(__name__)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout = 30000")
    cursor.close()


def database_errors(*, unreachable_only: bool = False) -> tuple[type[Exception], ...]:
    """Return the exception classes a store operation can raise from the database.

    SQLAlchemy wraps most driver errors, but the bulk writers use the drivers' cursors directly
    (PostgreSQL ``COPY``, SQLite ``executemany``), whose errors arrive unwrapped.

    Parameters
    ----------
    unreachable_only : bool, default False
        Only the classes meaning "the database cannot be reached or used right now"
        (operational and interface errors), e.g. for a 503.
    """
    import sqlite3

    from sqlalchemy import exc as sa_exc

    errors: list[type[Exception]]
    if unreachable_only:
        errors = [
            sa_exc.OperationalError,
            sa_exc.InterfaceError,
            sa_exc.DisconnectionError,
            sqlite3.OperationalError,
        ]
    else:
        errors = [SQLAlchemyError, sqlite3.Error]
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        pass
    else:
        if unreachable_only:
            errors += [psycopg.OperationalError, psycopg.InterfaceError]
        else:
            errors.append(psycopg.Error)
    return tuple(errors)


def describe_database_error(exc: BaseException) -> str:
    """Return ``ClassName: first line of the driver's message`` for a database error."""
    inner = getattr(exc, "orig", None) or exc
    text = str(inner).strip().splitlines()
    return f"{type(inner).__name__}: {text[0] if text else type(inner).__name__}"


def _masked(url: str) -> str:
    """Return ``url`` with its password replaced by ``***`` (for a URL SQLAlchemy cannot parse).

    Everything between the user's ``:`` and the last ``@`` is hidden (an unencoded ``@`` of the
    password included), and so is a ``password=`` query parameter.
    """
    url = re.sub(r"([?&]password=)[^&]*", r"\1***", url)
    return re.sub(r"(://[^:/@]*:).*@", r"\1***@", url)


def _password_cut_short(parsed: URL) -> bool:
    """Whether an unencoded ``@`` in the password made SQLAlchemy stop the password early.

    The password ends at its first ``@``; what follows is read as the host (``p@ss@host``: host
    ``ss@host``) or, after a ``/``, as the database (``p@ss/x@host:5432/db``: database
    ``x@host:5432/db``). An ``@`` in the user name (``clv@server:pw@host``, Azure's form) or in
    a query parameter parses correctly and is not refused.
    """
    if parsed.password is None:
        return False
    if parsed.host and "@" in parsed.host:
        return True
    database = parsed.database or ""
    return "@" in database and "/" in database.partition("@")[2]


def _holds_a_store(engine: sa.Engine) -> bool:
    """Whether the database holds a retail-clv store (a recorded schema version)."""
    with engine.connect() as conn:
        return current_version(conn) > 0


def sqlite_file(url: str) -> Path | None:
    """Return the file of a file-backed SQLite URL (``~`` expanded), else None.

    None for PostgreSQL, in-memory and ``file:`` URLs and for a URL that does not parse (which
    :func:`get_engine` refuses with its own message).
    """
    try:
        return _sqlite_path(make_url(url))
    except (ArgumentError, ValueError):
        return None


def _sqlite_path(parsed: URL) -> Path | None:
    """:func:`sqlite_file` of a parsed URL."""
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    return None if database.startswith("file:") else Path(database).expanduser()


def get_engine(url: str | None = None, *, must_exist: bool = False) -> sa.Engine:
    """Return an engine on the store, creating the SQLite folder and migrating the schema.

    Parameters
    ----------
    url : str, optional
        SQLAlchemy URL (``sqlite:///data/retail_clv.db`` or ``postgresql+psycopg://...``);
        default ``get_settings().database_url`` (``CLV_DATABASE_URL``).
    must_exist : bool, default False
        For commands that only read the store (train, backtest, predict): refuse a SQLite file
        that does not exist instead of creating an empty store (and its folders) at a mistyped
        path.

    Returns
    -------
    sqlalchemy.Engine
        An engine whose database holds the current schema.

    Raises
    ------
    StoreError
        When the URL is invalid, the database cannot be opened or migrated, or ``must_exist``
        and the SQLite file is missing.
    """
    if url is not None and not url.strip():  # `--db ""`: a mistake, not a wish for the default
        raise StoreError(
            "the database URL is empty: give sqlite:///path.db or postgresql+psycopg://user:pass"
            "@host/db, or leave --db out to use CLV_DATABASE_URL"
        )
    url = url or get_settings().database_url
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:  # ValueError: a port that is no number
        raise StoreError(
            f"invalid database URL {_masked(url)}: expected sqlite:///path.db or "
            "postgresql+psycopg://user:pass@host:port/db, with a port made of digits and any "
            "'@', ':', '/', '?' or '#' of the user or password percent-encoded (%40, %3A, %2F, "
            "%3F, %23)"
        ) from exc
    if parsed.drivername == "postgres":  # the scheme hosting providers hand out
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername.split("+")[0] == "postgres":
        raise StoreError(
            f"unknown database URL scheme {parsed.drivername!r}: PostgreSQL URLs start with "
            "postgresql+psycopg:// (e.g. postgresql+psycopg://user:pass@host/db)"
        )
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise StoreError(
            f"unsupported database {parsed.get_backend_name()!r}: retail-clv stores its data in "
            "SQLite (sqlite:///path.db) or PostgreSQL (postgresql+psycopg://user:pass@host/db)"
        )
    if _password_cut_short(parsed):  # the rest of the password would show as host or database
        raise StoreError(
            "the database URL's user or password contains '@': percent-encode it as %40 "
            "(e.g. postgresql+psycopg://clv:p%40ss@host/db)"
        )
    path = _sqlite_path(parsed)
    if path is not None:
        if must_exist and not path.is_file():
            raise StoreError(
                f"there is no store at {path} (check --db or CLV_DATABASE_URL): {INGEST_HINT}"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        parsed = parsed.set(database=str(path))  # SQLite would open "~/x.db" in a folder "~"
    try:
        engine = sa.create_engine(parsed, future=True)
    except ImportError as exc:
        raise StoreError(
            f"cannot use database URL {parsed!r}: {exc}; PostgreSQL URLs use the psycopg 3 "
            "driver installed with retail-clv: postgresql+psycopg://user:pass@host/db"
        ) from exc
    except (ArgumentError, SQLAlchemyError) as exc:
        raise StoreError(f"cannot use database URL {parsed!r}: {exc}") from exc
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    try:
        if must_exist and engine.dialect.name == "postgresql" and not _holds_a_store(engine):
            engine.dispose()  # a read-only command never writes its tables into another database
            raise StoreError(
                f"there is no retail-clv store in {parsed.render_as_string(hide_password=True)} "
                f"(no schema_migrations table; check --db or CLV_DATABASE_URL): {INGEST_HINT}"
            )
        migrate(engine)
    except OperationalError as exc:
        raise StoreError(
            f"cannot open the store {parsed.render_as_string(hide_password=True)}: "
            f"{str(exc.orig).strip() or exc}"
        ) from exc
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise StoreError(
            f"cannot create or update the store's tables in "
            f"{parsed.render_as_string(hide_password=True)}: {exc.__class__.__name__}: {reason}. "
            "Check that the database user may create and use tables there, and that no other "
            "application's tables share their names (a dedicated PostgreSQL schema works: add "
            "?options=-csearch_path%3Dretail_clv to the URL after CREATE SCHEMA retail_clv)"
        ) from exc
    return engine
