"""The store's ingest runs: list them and undo one (``clv ingest-runs``, ``clv undo-ingest``).

Listing is a read and stays open like ``/rejections`` (which serves the rejected rows
themselves); undoing deletes stored rows and needs the API key like ``POST /ingest``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path
from fastapi.concurrency import run_in_threadpool

from retail_clv.api import services
from retail_clv.api.deps import ApiKeyDep, KeyFirstRoute, StateDep
from retail_clv.api.errors import status_for
from retail_clv.api.routes.uploads_common import AUTH_ERRORS
from retail_clv.api.schemas import ErrorOut, IngestRunOut, IngestRunsOut, UndoneRows, UndoOut
from retail_clv.errors import IngestRunConflictError, UnknownIngestRunError

router = APIRouter(prefix="/ingest-runs", tags=["ingest"], route_class=KeyFirstRoute)

#: An ingest run id: ``ingest_runs.id`` is an INTEGER column (32 bits on PostgreSQL).
RunIdPath = Annotated[int, Path(ge=1, le=2_147_483_647, description="The ingest run's id")]


def _utc(value: dt.datetime) -> dt.datetime:
    """Mark a naive time of the store (written in UTC) as UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _run_out(run: dict[str, Any]) -> IngestRunOut:
    return IngestRunOut(
        run_id=run["id"],
        source_file=run["source_file"],
        sheet=run["sheet"],
        file_format=run["file_format"],
        encoding=run["encoding"],
        started_at=_utc(run["started_at"]),
        finished_at=None if run["finished_at"] is None else _utc(run["finished_at"]),
        status=run["status"],
        rows_read=run["rows_read"],
        rows_loaded=run["rows_loaded"],
        rows_rejected=run["rows_rejected"],
        rows_duplicate=run["rows_duplicate"],
    )


@router.get("", response_model=IngestRunsOut)
async def ingest_runs(state: StateDep) -> IngestRunsOut:
    """List the store's ingest runs, newest first: file, times, status and row counts.

    The ``run_id`` is the one ingest reports carry and ``POST /ingest-runs/{run_id}/undo`` takes.
    """
    runs = await run_in_threadpool(services.list_ingest_runs, state.engine)
    return IngestRunsOut(runs=[_run_out(run) for run in runs])


@router.post(
    "/{run_id}/undo",
    response_model=UndoOut,
    dependencies=[ApiKeyDep],
    responses={
        **AUTH_ERRORS,
        404: {"model": ErrorOut, "description": "No such ingest run"},
        409: {
            "model": ErrorOut,
            "description": "Already undone, not finished, or later runs that skipped rows as "
            "duplicates must be undone first",
        },
    },
)
async def undo_ingest_run(state: StateDep, run_id: RunIdPath) -> UndoOut:
    """Take an ingest run's rows out of the store again; its record stays, marked ``undone``.

    Deletes the purchase lines, cancellations and rejected rows the run stored, and customers
    left without any purchase or cancellation; customers whose first purchase was in the run
    get the first purchase left back. A run with later runs that skipped rows as duplicates is
    refused (409) until those are undone, newest first. The ``predictions`` table and the
    trained models are not changed: retrain (``POST /train``) to update them. Requires the API
    key when ``CLV_API_KEY`` is set.
    """
    try:
        deleted = await run_in_threadpool(services.undo_ingest_run, state.engine, run_id)
    except (UnknownIngestRunError, IngestRunConflictError) as exc:
        raise HTTPException(status_code=status_for(exc), detail=str(exc)) from None
    # refused or failed, the undo's transaction changed nothing: the copy stays good until here
    state.store.invalidate()
    return UndoOut(run_id=run_id, deleted=UndoneRows(**deleted))
