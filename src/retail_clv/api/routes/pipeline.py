"""Full pipeline on an uploaded raw file: clean, featurise, score — in isolation by default."""

from __future__ import annotations

import logging
from datetime import date
from typing import Annotated, Any

import polars as pl
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from retail_clv.api import services
from retail_clv.api.deps import (
    API_KEY_HEADER,
    KeyFirstRoute,
    StateDep,
    api_key_when,
    check_api_key,
)
from retail_clv.api.routes.predict import prediction_records
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
    prefers_csv,
    worded_for_the_client,
)
from retail_clv.api.schemas import ErrorOut, PipelineOut
from retail_clv.api.state import ApiState
from retail_clv.api.uploads import SavedUpload, receive_upload
from retail_clv.ingest.rules import isolated_last_day
from retail_clv.models.scoring import CSV_COLUMNS, default_as_of

logger = logging.getLogger(__name__)
router = APIRouter(tags=["pipeline"], route_class=KeyFirstRoute)

REJECTED_SAMPLE_ROWS = 200
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})  # what a bool query parameter takes


def _storing(request: Request) -> bool:
    """Say from the raw query whether the upload is to be stored (then the API key is needed)."""
    return any(value.lower() in _TRUE for value in request.query_params.getlist("store"))


def _run(
    state: ApiState,
    bundle: Any,
    upload: SavedUpload,
    store: bool,
    want_csv: bool,
    columns: dict[str, str] | None,
    day_first: bool | None,
    sheets: tuple[str, ...],
) -> PipelineOut | Response:
    result = services.clean_file(upload.path, columns, day_first=day_first, sheets=sheets)
    report = result.report.to_dict()
    horizon_days = int(bundle.metadata.get("horizon_days", 30))
    as_of: date | None = None
    if result.purchases.height:
        as_of = default_as_of(result.purchases)
        notes: list[str] = []
        scored = services.score(
            bundle, result.purchases, result.cancellations, as_of=as_of, notes=notes
        )
        isolated = isolated_last_day(result.purchases.get_column("invoice_date"))
        if isolated is not None:
            last_day, before = isolated
            notes.append(
                f"these predictions are as of {as_of}, the day after the last purchase day "
                f"({last_day}), which stands {(last_day - before).days} days after any other: "
                f"every customer is scored as if nothing was bought since {before}"
            )
        report["warnings"] = [*report.get("warnings", []), *notes]
    else:
        scored = pl.DataFrame(
            schema={c: pl.Float64 for c in CSV_COLUMNS} | {"customer_id": pl.Utf8}
        )
    report = for_the_client(report, upload)
    stored = None
    if store:
        # the result just scored: the upload is not read and cleaned a second time
        stored = [for_the_client(services.store_cleaned(upload.path, result, state.engine), upload)]
        state.store.invalidate()
    if want_csv:
        headers = {"Content-Disposition": 'attachment; filename="predictions.csv"'}
        if stored:  # the CSV has no room for the report: the run id an undo needs goes here
            headers[INGEST_RUN_HEADER] = ",".join(str(item.get("run_id")) for item in stored)
        return Response(
            services.predictions_csv(scored, horizon_days),
            media_type="text/csv",
            headers=headers,
        )
    return PipelineOut(
        report=report,
        rejected_sample=result.rejected.head(REJECTED_SAMPLE_ROWS)
        .drop("row_hash", strict=False)
        .to_dicts(),
        as_of=as_of,
        model_run_id=bundle.run_id,
        horizon_days=horizon_days,
        r2_model1=bundle.r2_model1,
        r2_model2=bundle.r2_model2,
        predictions=prediction_records(scored),  # type: ignore[arg-type]
        stored=stored,
    )


#: Header of a ``text/csv`` answer to ``POST /pipeline?store=true``: the ingest run id(s).
INGEST_RUN_HEADER = "X-Ingest-Run-Id"


@router.post(
    "/pipeline",
    response_model=PipelineOut,
    openapi_extra=UPLOAD_BODY,
    responses={
        **UPLOAD_ERRORS,
        **AUTH_ERRORS,
        200: {
            "description": "JSON report and predictions, or CSV with Accept: text/csv",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
        503: {"model": ErrorOut, "description": "No model loaded"},
    },
)
@api_key_when(_storing)  # checked before the query is validated; again below once it is
async def pipeline(
    request: Request,
    state: StateDep,
    store: Annotated[
        bool, Query(description="Also ingest the file into the store (needs the API key)")
    ] = False,
    column: ColumnQuery = None,
    day_first: DayFirstQuery = False,
    month_first: MonthFirstQuery = False,
    sheet: SheetQuery = None,
) -> PipelineOut | Response:
    """Clean, featurise and score an uploaded raw transaction log with both models.

    The upload is scored in isolation: the store is not modified unless ``store=true``. The
    answer holds the cleaning report (counts by outcome and reason), the first 200 rejected rows
    and one prediction per customer; with ``Accept: text/csv`` it is the predictions CSV (text
    cells neutralised against formula injection). ``sheet`` (repeatable) reads only the named
    sheets of a workbook.
    """
    if store:
        await check_api_key(state, request.headers.get(API_KEY_HEADER))
    order = date_order(day_first, month_first)
    bundle = state.require_bundle()
    with worded_for_the_client():
        columns = services.column_map(column)
    want_csv = prefers_csv(request.headers.get("accept", ""))
    upload = await receive_upload(request, state.settings.max_upload_mb * 1_000_000)
    try:
        with worded_for_the_client(upload):
            return await run_in_threadpool(
                _run, state, bundle, upload, store, want_csv, columns, order, tuple(sheet or ())
            )
    finally:
        upload.cleanup()
