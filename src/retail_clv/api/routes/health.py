"""Liveness and readiness."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from retail_clv.api.deps import StateDep
from retail_clv.api.schemas import ErrorOut, HealthOut, ReadyOut

logger = logging.getLogger(__name__)
router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthOut)
async def health() -> HealthOut:
    """Answer when the process is alive (liveness)."""
    return HealthOut()


@router.get("/ready", response_model=ReadyOut, responses={503: {"model": ErrorOut}})
def ready(state: StateDep) -> ReadyOut | JSONResponse:
    """Report readiness: database reachable and an active model loaded (503 with the reason)."""
    try:
        with state.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any driver error means "not ready"
        logger.warning("database unreachable: %s", exc)
        return JSONResponse(
            {"detail": f"Database unreachable: {type(exc).__name__}"}, status_code=503
        )
    bundle = state.bundle
    if bundle is None:
        return JSONResponse({"detail": state.model_error}, status_code=503)
    return ReadyOut(model_run_id=bundle.run_id)
