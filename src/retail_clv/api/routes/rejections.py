"""Paged audit of the rows ingestion refused (``rejected_data``)."""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Query

from retail_clv.api.deps import StateDep
from retail_clv.api.schemas import ErrorOut, RejectionsOut
from retail_clv.store import schema

router = APIRouter(tags=["rejections"])

REASON_CODES = (
    "MISSING_CUSTOMER_ID",
    "NON_POSITIVE_QUANTITY",
    "NEGATIVE_PRICE",
    "ZERO_PRICE",
    "BAD_DATE",
    "CANCELLATION",
    "BAD_DEBT_ADJUSTMENT",
    "MISSING_INVOICE",
    "MISSING_STOCK_CODE",
)


def _row(row: Any) -> dict[str, Any]:
    item = dict(row)
    item.pop("row_hash", None)
    return item


@router.get("/rejections", response_model=RejectionsOut, responses={422: {"model": ErrorOut}})
def rejections(
    state: StateDep,
    reason: Annotated[str | None, Query(max_length=64, description="One reason code")] = None,
    page: Annotated[int, Query(ge=1, le=10_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=500)] = 50,
) -> RejectionsOut:
    """Page through rejected rows: raw values and reason codes, optionally of one reason."""
    table = schema.rejected_data
    condition: Any = sa.true()
    if reason is not None:
        code = reason.strip().upper()
        if code not in REASON_CODES:
            raise HTTPException(
                status_code=422,
                detail=f"Unknown reason '{reason}'; use one of {', '.join(REASON_CODES)}",
            )
        condition = (sa.literal("|") + table.c.reasons + sa.literal("|")).like(f"%|{code}|%")
    with state.engine.connect() as conn:
        total = conn.execute(
            sa.select(sa.func.count()).select_from(table).where(condition)
        ).scalar_one()
        rows = conn.execute(
            sa.select(table)
            .where(condition)
            .order_by(table.c.id)
            .offset((page - 1) * page_size)
            .limit(page_size)
        ).mappings()
        items = [_row(row) for row in rows]
    return RejectionsOut(total=int(total), page=page, page_size=page_size, items=items)
