"""Model runs of the registry and the active model's metadata."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from retail_clv.api import services
from retail_clv.api.deps import StateDep
from retail_clv.api.schemas import ErrorOut, RunOut, RunsOut
from retail_clv.api.state import NO_MODEL_MESSAGE, finite_or_none

router = APIRouter(prefix="/models", tags=["models"])


def _json_safe(value: Any) -> Any:
    """Replace NaN/inf floats by None at any depth (metrics can hold NaN)."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return finite_or_none(value)


@router.get("", response_model=RunsOut)
async def list_models(state: StateDep) -> RunsOut:
    """List every model run in the models directory; ``active`` marks the one being served."""
    runs = await run_in_threadpool(services.list_runs, state.settings.models_dir)
    loaded = state.bundle
    active = loaded.run_id if loaded is not None else None
    return RunsOut(
        runs=[
            RunOut(
                run_id=str(run["run_id"]),
                trained_at=None if run.get("trained_at") is None else str(run["trained_at"]),
                as_of=None if run.get("as_of") is None else str(run["as_of"]),
                horizon_days=run.get("horizon_days"),
                active=run["run_id"] == active,
            )
            for run in runs
        ]
    )


@router.get(
    "/active",
    responses={200: {"description": "The active run's metadata.json"}, 404: {"model": ErrorOut}},
)
async def active_model(state: StateDep) -> JSONResponse:
    """Return the active run's metadata: run id, dates, horizon, features, metrics, versions."""
    bundle = state.bundle
    if bundle is None:
        detail = state.model_error or NO_MODEL_MESSAGE
        raise HTTPException(status_code=404 if detail == NO_MODEL_MESSAGE else 503, detail=detail)
    return JSONResponse(_json_safe(dict(bundle.metadata)))
