"""Training runs as background jobs, and their state."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Path

from retail_clv.api import services
from retail_clv.api.deps import ApiKeyDep, KeyFirstRoute, StateDep
from retail_clv.api.jobs import JobConflictError, ProgressFn
from retail_clv.api.routes.uploads_common import AUTH_ERRORS
from retail_clv.api.schemas import ErrorOut, JobAccepted, JobOut, TrainIn
from retail_clv.api.state import ApiState

logger = logging.getLogger(__name__)
router = APIRouter(tags=["jobs"], route_class=KeyFirstRoute)


def _training_work(state: ApiState, body: TrainIn) -> Any:
    horizon_days = body.horizon_days or state.settings.horizon_days
    cap: int | None = body.max_train_cutoffs
    name, remedy = "max_train_cutoffs", "Send {needed} or more."
    if cap is None:
        cap, name = state.settings.max_train_cutoffs, "the server's CLV_MAX_TRAIN_CUTOFFS"
        remedy = "Send max_train_cutoffs of {needed} or more, or have CLV_MAX_TRAIN_CUTOFFS raised."
    # checked before the job starts, so a cap the budget cannot use is a 422, not a failed job
    services.check_max_train_cutoffs(cap, body.budget, horizon_days, name, remedy)

    def work(progress: ProgressFn) -> dict[str, Any]:
        result = services.run_training(
            state.engine,
            state.settings.models_dir,
            body.as_of,
            horizon_days,
            body.budget,
            progress,
            write_scores=body.write_predictions,
            n_jobs=state.settings.n_jobs,
            max_train_cutoffs=cap,
        )
        progress(0.98, "loading the new model")
        state.reload_model()
        state.predictions.refresh(state.engine, force=True)
        loaded = state.bundle
        result["loaded"] = loaded is not None and loaded.run_id == result["run_id"]
        return result

    return work


@router.post(
    "/train",
    status_code=202,
    response_model=JobAccepted,
    dependencies=[ApiKeyDep],
    responses={
        **AUTH_ERRORS,
        409: {"model": ErrorOut, "description": "A training job runs"},
        422: {"model": ErrorOut, "description": "max_train_cutoffs below the budget's need"},
    },
)
def train(state: StateDep, body: Annotated[TrainIn | None, Body()] = None) -> JobAccepted:
    """Start a training run on the store as a background job; poll ``GET /jobs/{job_id}``.

    Only one training job runs at a time (409 otherwise). When it succeeds the new run becomes
    the active model and, unless ``write_predictions`` is false, every customer is rescored.
    """
    body = body or TrainIn()
    try:
        job = state.jobs.submit("train", _training_work(state, body))
    except JobConflictError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    return JobAccepted(job_id=job.job_id)


@router.get("/jobs/{job_id}", response_model=JobOut, responses={404: {"model": ErrorOut}})
async def job(job_id: Annotated[str, Path(min_length=1, max_length=64)], state: StateDep) -> JobOut:
    """Return the state, progress, message, result or error of a background job."""
    found = state.jobs.get(job_id)
    if found is None:
        raise HTTPException(status_code=404, detail=f"No job with id '{job_id}'")
    return JobOut(**found.to_dict())


@router.get("/jobs", response_model=list[JobOut])
async def jobs(state: StateDep) -> list[JobOut]:
    """List every job this server process remembers, oldest first."""
    return [JobOut(**j.to_dict()) for j in state.jobs.jobs()]
