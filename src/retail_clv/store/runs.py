"""The store's ingest runs: list them, and undo one (its rows leave the store, its record stays).

Every stored row (``transactions``, ``cancellations``, ``rejected_data``) carries the id of the
ingest run that wrote it, so a file ingested by mistake (the wrong export, or the same sales
exported again in another format, which the duplicate check cannot see) can be taken out
again. A run with later runs that skipped rows as duplicates cannot be undone before them: the
rows they skipped may be this run's, and would be lost.
"""

from __future__ import annotations

from typing import Any

import polars as pl
import sqlalchemy as sa

from retail_clv.errors import IngestRunConflictError, UnknownIngestRunError
from retail_clv.store import schema

__all__ = [
    "SUCCEEDED",
    "UNDONE",
    "list_ingest_runs",
    "lock_for_ingest",
    "store_signature",
    "undo_ingest_run",
]

#: ``ingest_runs.status`` of a finished run, and of a run whose rows were taken out again.
SUCCEEDED = "succeeded"
UNDONE = "undone"

#: Customer ids per ``IN`` list when first purchases are restored.
_IN_CHUNK = 5_000


def store_signature(engine: sa.Engine) -> tuple[Any, ...]:
    """Return a cheap fingerprint of the stored rows: number, latest id and undone ingest runs.

    Every ingest and every undo changes it (rows enter or leave the store only through them).
    """
    table = schema.ingest_runs
    with engine.connect() as conn:
        undone = sa.func.sum(sa.case((table.c.status == UNDONE, 1), else_=0))
        row = conn.execute(
            sa.select(
                sa.func.count(),
                sa.func.max(table.c.id),
                sa.func.max(table.c.finished_at),
                undone,
            )
        ).one()
    return tuple(row)


def lock_for_ingest(conn: sa.Connection) -> None:
    """Keep undos and other ingests from running while this ingest transaction runs.

    Called first in the ingest's transaction. On PostgreSQL the ingest takes ``SHARE ROW
    EXCLUSIVE`` on ``ingest_runs``, which conflicts with itself and with the undo's
    ``EXCLUSIVE``: ingests and undos queue behind each other, as on SQLite, where both take the
    database's write lock at once (a statement that writes nothing, since the driver would
    otherwise begin the transaction only at the first insert, after the duplicate check).
    Readers are not blocked. Without it, an ingest could skip rows as duplicates of a run an
    undo is deleting, and two ingests of different files adding the same new store, product or
    customer failed on PostgreSQL on the unique key (the second to commit, every time in a
    user's test of two exports run at once).
    """
    _write_lock(conn, "SHARE ROW EXCLUSIVE")


def _write_lock(conn: sa.Connection, postgresql_mode: str) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text(f"LOCK TABLE ingest_runs IN {postgresql_mode} MODE"))
    elif conn.dialect.name == "sqlite":
        conn.execute(sa.text("UPDATE ingest_runs SET id = id WHERE 1 = 0"))


def list_ingest_runs(engine: sa.Engine) -> list[dict[str, Any]]:
    """Return every ingest run, newest first (id, file, sheet, times, status, row counts).

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The store.

    Returns
    -------
    list of dict
        One dict per run with the ``ingest_runs`` columns but the digest and reason counts.
    """
    runs = schema.ingest_runs
    columns = [c for c in runs.c if c.name not in ("sha256", "reason_counts")]
    with engine.connect() as conn:
        rows = conn.execute(sa.select(*columns).order_by(runs.c.id.desc())).mappings().all()
    return [dict(row) for row in rows]


def undo_ingest_run(
    engine: sa.Engine, run_id: int, runs_listed_by: str = "clv ingest-runs"
) -> dict[str, int]:
    """Delete the rows an ingest run stored and mark the run ``undone``, in one transaction.

    Customers left without any purchase or cancellation are deleted too. Customers whose first
    purchase was one of the run's lines get the first purchase left back, its date
    (``first_seen``) and its country, by the rule ingestion follows
    (:func:`retail_clv.store.load.first_purchases`); those left with cancellations but no
    purchase keep both as they were. Products and stores stay (they are shared descriptions,
    not sales). The run's record stays, marked ``undone``.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The store.
    run_id : int
        The run (``clv ingest`` prints it as "ingest run id").
    runs_listed_by : str, default "clv ingest-runs"
        Where the caller's user can list the runs, named when the run does not exist
        (``GET /ingest-runs`` for the API).

    Returns
    -------
    dict of str to int
        Rows deleted per table: ``transactions``, ``cancellations``, ``rejected_data``,
        ``customers``.

    Raises
    ------
    UnknownIngestRunError
        When the run does not exist (a :class:`~retail_clv.errors.StoreError`).
    IngestRunConflictError
        When the run did not succeed, was already undone, or a later run that skipped rows as
        duplicates exists (undo those first, newest first); a
        :class:`~retail_clv.errors.StoreError` too.
    """
    runs = schema.ingest_runs
    with engine.begin() as conn:
        _write_lock(conn, "EXCLUSIVE")  # waits for ingests in flight, holds off new ones
        row = conn.execute(sa.select(runs.c.id, runs.c.status).where(runs.c.id == run_id)).first()
        if row is None:
            raise UnknownIngestRunError(
                f"there is no ingest run {run_id} in the store (see {runs_listed_by})"
            )
        if row.status == UNDONE:
            raise IngestRunConflictError(f"ingest run {run_id} was already undone")
        if row.status != SUCCEEDED:
            raise IngestRunConflictError(
                f"ingest run {run_id} is {row.status!r}, not a finished ingest"
            )
        later = (
            conn.execute(
                sa.select(runs.c.id)
                .where(runs.c.id > run_id, runs.c.status != UNDONE, runs.c.rows_duplicate > 0)
                .order_by(runs.c.id)
            )
            .scalars()
            .all()
        )
        if later:
            raise IngestRunConflictError(
                f"ingest run {run_id} has later runs that skipped rows as duplicates "
                f"({', '.join(map(str, later))}): some may be rows of run {run_id}, which "
                "would then be lost; undo those runs first (newest first)"
            )
        affected = _customers_whose_first_purchase_leaves(conn, run_id)
        deleted: dict[str, int] = {}
        for table in (schema.transactions, schema.cancellations, schema.rejected_data):
            result = conn.execute(table.delete().where(table.c.ingest_run_id == run_id))
            deleted[table.name] = int(result.rowcount or 0)
        customers, sales = schema.customers, schema.transactions
        returns = schema.cancellations
        orphans = customers.delete().where(
            ~sa.exists().where(sales.c.customer_id == customers.c.customer_id),
            ~sa.exists().where(returns.c.customer_id == customers.c.customer_id),
        )
        deleted["customers"] = int(conn.execute(orphans).rowcount or 0)
        _restore_first_purchases(conn, affected)
        conn.execute(runs.update().where(runs.c.id == run_id).values(status=UNDONE))
    return deleted


def _customers_whose_first_purchase_leaves(conn: sa.Connection, run_id: int) -> list[str]:
    """Return the customers with a line of the run at (or before) their first purchase time.

    Only their first purchase can change when the run's lines leave: the others keep a line
    stored before, of their ``first_seen``, which the rule of ties keeps first.
    """
    customers, sales = schema.customers, schema.transactions
    return list(
        conn.execute(
            sa.select(customers.c.customer_id).where(
                sa.exists().where(
                    sales.c.customer_id == customers.c.customer_id,
                    sales.c.ingest_run_id == run_id,
                    sales.c.invoice_date <= customers.c.first_seen,
                )
            )
        )
        .scalars()
        .all()
    )


def _restore_first_purchases(conn: sa.Connection, customer_ids: list[str]) -> None:
    """Give ``customer_ids`` the first purchase the store still holds: its date and country.

    Reads their lines of the earliest time left, in stored order (``transactions.id``), and
    applies ingestion's rule (:func:`retail_clv.store.load.first_purchases`). Customers without
    any purchase left (kept for their cancellations, or deleted) are not touched.
    """
    from retail_clv.store.load import first_purchases, set_first_purchases

    sales = schema.transactions
    for start in range(0, len(customer_ids), _IN_CHUNK):
        chunk = customer_ids[start : start + _IN_CHUNK]
        earliest = (
            sa.select(sales.c.customer_id, sa.func.min(sales.c.invoice_date).label("first"))
            .where(sales.c.customer_id.in_(chunk))
            .group_by(sales.c.customer_id)
            .subquery()
        )
        rows = conn.execute(
            sa.select(sales.c.customer_id, sales.c.invoice_date, sales.c.country)
            .join(
                earliest,
                (earliest.c.customer_id == sales.c.customer_id)
                & (earliest.c.first == sales.c.invoice_date),
            )
            .order_by(sales.c.id)
        ).all()
        lines = pl.DataFrame(
            [tuple(row) for row in rows],
            schema={"customer_id": pl.Utf8, "invoice_date": pl.Datetime("us"), "country": pl.Utf8},
            orient="row",
        )
        set_first_purchases(conn, first_purchases(lines))
