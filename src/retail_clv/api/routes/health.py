"""Liveness and readiness (``GET``, and ``HEAD`` for health checkers that send it)."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from retail_clv.api.deps import StateDep
from retail_clv.api.schemas import ErrorOut, HealthOut, ReadyOut

logger = logging.getLogger(__name__)
router = APIRouter(tags=["health"])


# HEAD answers like GET without the body (the server drops it); kept out of the OpenAPI schema,
# which would otherwise list the same operation twice.
@router.get("/health", response_model=HealthOut)
@router.head("/health", response_model=HealthOut, include_in_schema=False)
async def health() -> HealthOut:
    """Answer when the process is alive (liveness)."""
    return HealthOut()


@router.get("/ready", response_model=ReadyOut, responses={503: {"model": ErrorOut}})
@router.head("/ready", response_model=ReadyOut, include_in_schema=False)
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
