"""Upload a file into the store (same as ``clv ingest``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from retail_clv.api import services
from retail_clv.api.deps import ApiKeyDep, KeyFirstRoute, StateDep
from retail_clv.api.routes.uploads_common import (
    AUTH_ERRORS,
    UPLOAD_BODY,
    UPLOAD_ERRORS,
    ColumnQuery,
    DayFirstQuery,
    MonthFirstQuery,
    SheetQuery,
    date_order,
    for_the_client,
    worded_for_the_client,
)
from retail_clv.api.schemas import IngestOut
from retail_clv.api.uploads import receive_upload

router = APIRouter(tags=["ingest"], route_class=KeyFirstRoute)


@router.post(
    "/ingest",
    response_model=IngestOut,
    dependencies=[ApiKeyDep],
    openapi_extra=UPLOAD_BODY,
    responses={**UPLOAD_ERRORS, **AUTH_ERRORS},
)
async def ingest(
    request: Request,
    state: StateDep,
    column: ColumnQuery = None,
    day_first: DayFirstQuery = False,
    month_first: MonthFirstQuery = False,
    sheet: SheetQuery = None,
) -> IngestOut:
    """Validate, clean and load an uploaded file into the store; return its ingest reports.

    Ingestion is idempotent: rows already stored count as duplicates. ``sheet`` (repeatable)
    reads only the named sheets of a workbook. Requires the API key when ``CLV_API_KEY`` is set.
    """
    order = date_order(day_first, month_first)
    sheets = tuple(sheet or ())
    with worded_for_the_client():
        columns = services.column_map(column)
    upload = await receive_upload(request, state.settings.max_upload_mb * 1_000_000)
    try:
        with worded_for_the_client(upload):
            # a file refused for its format or columns touches neither the store nor its cache
            checked = await run_in_threadpool(services.check_file, upload.path, columns, sheets)
            try:
                reports = await run_in_threadpool(
                    services.ingest_file, checked, state.engine, columns, order, sheets
                )
            finally:
                state.store.invalidate()
    finally:
        upload.cleanup()
    return IngestOut(reports=[for_the_client(report, upload) for report in reports])
