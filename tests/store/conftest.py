"""Fixtures of the store tests: a real PostgreSQL server started from the installed binaries.

The server is driven by pytest-postgresql's ``PostgreSQLExecutor`` (pg_ctl). PostgreSQL
refuses to run as root, and pytest's temporary folders are private to root, so when the
tests run as root the server runs as the ``postgres`` system user (through ``runuser``) in a
folder it owns. Where no PostgreSQL binaries exist the tests are skipped with the reason.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._ports import free_port


def _pg_ctl() -> str | None:
    found = shutil.which("pg_ctl")
    if found:
        return found
    pg_config = shutil.which("pg_config")
    if pg_config:
        bindir = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True).stdout
        candidate = Path(bindir.strip()) / "pg_ctl"
        if candidate.exists():
            return str(candidate)
    return None


def _wait_until_accepting(host: str, port: int, timeout: float = 60.0) -> None:
    """Poll until the server accepts a query.

    ``pg_ctl -w`` and the executor's own wait can return while the server still answers
    "the database system is starting up" (seen on a loaded machine), so connect for real.
    """
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(
                f"host={host} port={port} user=postgres dbname=postgres", connect_timeout=5
            ) as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture(scope="session")
def postgresql_server() -> Iterator[tuple[str, int]]:
    """Start one PostgreSQL server for the session; yield ``(host, port)``."""
    pg_ctl = _pg_ctl()
    if pg_ctl is None:
        pytest.skip("PostgreSQL binaries (pg_ctl) not found: PostgreSQL tests skipped")
    try:
        from pytest_postgresql.executor import PostgreSQLExecutor
    except ImportError:  # older layout
        try:
            from pytest_postgresql.executors.proc import PostgreSQLExecutor
        except ImportError:
            pytest.skip("pytest-postgresql is not installed: PostgreSQL tests skipped")

    base = Path(tempfile.mkdtemp(prefix="clv-pg-"))
    os.chmod(base, 0o755)
    executable = pg_ctl
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            owner = None
        if runuser is None or owner is None:
            shutil.rmtree(base, ignore_errors=True)
            pytest.skip("running as root without a 'postgres' user/runuser: PostgreSQL skipped")
        os.chown(base, owner.pw_uid, owner.pw_gid)
        wrapper = base / "pg_ctl"
        wrapper.write_text(f'#!/bin/sh\nexec {runuser} -u postgres -- {pg_ctl} "$@"\n')
        wrapper.chmod(0o755)
        executable = str(wrapper)

    port = free_port()
    executor = PostgreSQLExecutor(
        executable=executable,
        host="127.0.0.1",
        port=port,
        datadir=str(base / "data"),
        unixsocketdir=str(base),
        logfile=str(base / "postgresql.log"),
        startparams="-w",
        dbname="postgres",
        user="postgres",
    )
    try:
        executor.start()
        _wait_until_accepting("127.0.0.1", port)  # replaces executor.wait_for_postgres()
    except Exception as exc:  # noqa: BLE001
        log = base / "postgresql.log"
        detail = log.read_text()[-2000:] if log.exists() else ""
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(f"PostgreSQL did not start: {exc}\n{detail}")
    try:
        yield "127.0.0.1", port
    finally:
        executor.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgresql_url(postgresql_server: tuple[str, int]) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test; yields its SQLAlchemy URL."""
    import psycopg

    host, port = postgresql_server
    name = f"clv_{uuid.uuid4().hex[:12]}"
    admin = f"host={host} port={port} user=postgres dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg://postgres@{host}:{port}/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same tests on both backends (PostgreSQL from :func:`postgresql_url`)."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgresql_url"))
    return f"sqlite:///{tmp_path / 'store.db'}"
