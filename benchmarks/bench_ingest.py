"""Benchmark: read + validate + store the full Online Retail II CSV into a fresh SQLite file.

Usage::

    python benchmarks/bench_ingest.py                      # ../shared/data/online_retail_II.csv.gz
    python benchmarks/bench_ingest.py --repeat 3 --file path/to/file.csv.gz
    python benchmarks/bench_ingest.py --postgres postgresql+psycopg://postgres@localhost/postgres

Each repetition runs in a fresh child process (so peak RSS is per run, measured with
``resource.getrusage(RUSAGE_CHILDREN)``) on a fresh SQLite file, or with ``--postgres`` on a
fresh database that the bench creates on that server (the URL's user needs the CREATEDB right)
and drops afterwards; the database's size is then PostgreSQL's ``pg_database_size``. The
child's CPU time does not include the server's work. Prints a markdown table and the machine
description. Timings on a shared machine are noisy: the load average before each run is
printed next to it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from _machine import cpu_model

REPO = Path(__file__).resolve().parents[1]
DEFAULT_FILE = REPO.parent / "shared" / "data" / "online_retail_II.csv.gz"

CHILD = r"""
import json, os, resource, sys, time
from retail_clv.ingest.pipeline import ingest_files
from retail_clv.store.db import get_engine

path = sys.argv[1]
engine = get_engine(os.environ["CLV_DATABASE_URL"])  # not on the command line: a password
steps = []
t0 = time.perf_counter()
c0 = time.process_time()
def on_progress(message, fraction):
    steps.append((message, round(time.perf_counter() - t0, 3)))
reports = ingest_files([path], engine, progress=on_progress)
wall = time.perf_counter() - t0
cpu = time.process_time() - c0
r = reports[0]
print(json.dumps({
    "wall": wall, "cpu": cpu, "rows_read": r.rows_read, "rows_loaded": r.rows_loaded,
    "rows_rejected": r.rows_rejected, "rows_duplicate": r.rows_duplicate,
    "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "steps": steps,
}))
"""


def timed_ingest(path: Path, url: str) -> dict:
    """Create the store's schema, then ingest ``path`` into it in a fresh child process.

    The URL goes to the children in ``CLV_DATABASE_URL``, never on their command line (which
    other users of the machine can read, and which an error message would print).
    """
    env = {**os.environ, "CLV_DATABASE_URL": url}
    # Create the schema first so the timed child measures ingestion only.
    schema = (
        "import os; from retail_clv.store.db import get_engine; "
        "get_engine(os.environ['CLV_DATABASE_URL'])"
    )
    try:
        subprocess.run([sys.executable, "-c", schema], check=True, env=env, capture_output=True)
        load = os.getloadavg()[0]  # just before the timed run
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(path)],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        )
    except subprocess.CalledProcessError as exc:
        stderr = exc.stderr.decode() if isinstance(exc.stderr, bytes) else exc.stderr
        raise SystemExit(f"the ingest failed:\n{stderr}") from None
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["load"] = load
    return result


def run_once(path: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        result = timed_ingest(path, f"sqlite:///{Path(tmp) / 'bench.db'}")
        result["db_mb"] = (Path(tmp) / "bench.db").stat().st_size / 1e6
        return result


def run_once_postgres(path: Path, admin_url: str) -> dict:
    """Ingest into a fresh database created on the server of ``admin_url``, then drop it."""
    import sqlalchemy as sa

    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"clv_bench_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        url = admin.url.set(database=name).render_as_string(hide_password=False)
        result = timed_ingest(path, url)
        with admin.connect() as conn:
            size = conn.execute(sa.text(f"SELECT pg_database_size('{name}')")).scalar_one()
        result["db_mb"] = size / 1e6
        return result
    finally:
        with admin.connect() as conn:
            force = conn.dialect.server_version_info >= (13,)  # WITH (FORCE) is PostgreSQL 13+
            conn.execute(
                sa.text(f'DROP DATABASE IF EXISTS "{name}"' + (" WITH (FORCE)" if force else ""))
            )
        admin.dispose()


def _server(admin_url: str) -> str:
    """``PostgreSQL 15.4 on localhost``: the server's version and host (no credentials)."""
    import sqlalchemy as sa

    engine = sa.create_engine(admin_url)
    try:
        with engine.connect() as conn:
            version = conn.execute(sa.text("SHOW server_version")).scalar_one()
    finally:
        engine.dispose()
    return f"server {version} on {engine.url.host or 'a local socket'}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--postgres",
        metavar="ADMIN_URL",
        help="a PostgreSQL server to ingest into instead of SQLite, e.g. "
        "postgresql+psycopg://postgres@localhost/postgres (a fresh database per run)",
    )
    args = parser.parse_args()
    if not args.file.exists():
        print(f"data file not found: {args.file}", file=sys.stderr)
        return 1

    print(
        f"machine: {os.cpu_count()} CPUs (nproc), {cpu_model()}, Python "
        f"{platform.python_version()}, {platform.system()} {platform.release()}"
    )
    print(f"file: {args.file} ({args.file.stat().st_size:,} bytes)")
    store = "PostgreSQL database (MB)" if args.postgres else "SQLite file (MB)"
    print(f"store: {'PostgreSQL, ' + _server(args.postgres) if args.postgres else 'SQLite'}\n")
    print(
        "| run | rows read | loaded | rejected | duplicates | wall (s) | CPU (s) | rows/s | "
        f"peak RSS (MB) | {store} | load avg before |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    results = []
    for i in range(args.repeat):
        r = run_once_postgres(args.file, args.postgres) if args.postgres else run_once(args.file)
        results.append(r)
        print(
            f"| {i + 1} | {r['rows_read']:,} | {r['rows_loaded']:,} | {r['rows_rejected']:,} | "
            f"{r['rows_duplicate']:,} | {r['wall']:.2f} | {r['cpu']:.2f} | "
            f"{r['rows_read'] / r['wall']:,.0f} | {r['maxrss_mb']:,.0f} | {r['db_mb']:,.0f} | "
            f"{r['load']:.2f} |"
        )
    best = min(results, key=lambda r: r["wall"])
    print("\nsteps of the fastest run (seconds since start):")
    for message, at in best["steps"]:
        print(f"  {at:7.2f}  {message}")
    print(
        f"\nbest wall {best['wall']:.2f} s (target <= 8 s), peak RSS "
        f"{max(r['maxrss_mb'] for r in results):,.0f} MB (target <= 2048 MB); the machine is "
        "shared, so wall times vary with the load average shown."
    )
    return 0


if __name__ == "__main__":
    start = time.perf_counter()
    code = main()
    sys.exit(code)
