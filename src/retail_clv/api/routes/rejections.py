"""Paged audit of the rows ingestion refused (``rejected_data``)."""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from retail_clv.api import services
from retail_clv.api.deps import StateDep
from retail_clv.api.schemas import ErrorOut, RejectionsOut

router = APIRouter(tags=["rejections"])


def _clean(item: dict[str, Any]) -> dict[str, Any]:
    item.pop("row_hash", None)
    return {
        k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in item.items()
    }


@router.get("/rejections", response_model=RejectionsOut, responses={422: {"model": ErrorOut}})
def rejections(
    state: StateDep,
    reason: Annotated[str | None, Query(max_length=64, description="One reason code")] = None,
    page: Annotated[int, Query(ge=1, le=10_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=500)] = 50,
) -> RejectionsOut:
    """Page through rejected rows: raw values and reason codes, optionally of one reason."""
    code = None
    if reason is not None:
        code = reason.strip().upper()
        codes = services.reason_codes()
        if code not in codes:
            raise HTTPException(
                status_code=422,
                detail=f"Unknown reason '{reason}'; use one of {', '.join(codes)}",
            )
    total, frame = services.read_rejections(
        state.engine, code, limit=page_size, offset=(page - 1) * page_size
    )
    items = [_clean(row) for row in frame.to_dicts()]
    return RejectionsOut(total=total, page=page, page_size=page_size, items=items)
