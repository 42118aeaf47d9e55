"""The FastAPI application factory.

``create_app()`` wires the routers (one per resource), the error translation, CORS and the
request-id middleware. Its lifespan opens the store, loads the active model once (from the models
directory, checksums verified by the registry), loads the prediction cache and starts a small
task that reloads that cache when the ``predictions`` table changes. ``clv serve`` runs it with
uvicorn (``retail_clv.api.app:create_app``, factory mode).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.cors import CORSMiddleware

from retail_clv import __version__
from retail_clv.api import services
from retail_clv.api.deps import API_KEY_HEADER
from retail_clv.api.errors import install_error_handlers
from retail_clv.api.middleware import BodySizeLimit, PredictionFastPath, RequestIdMiddleware
from retail_clv.api.routes import (
    customers,
    health,
    ingest,
    ingest_runs,
    jobs,
    models,
    pipeline,
    predict,
    rejections,
)
from retail_clv.api.state import ApiState
from retail_clv.config import Settings, get_settings

logger = logging.getLogger(__name__)

DESCRIPTION = (
    "Predict each customer's spend and number of distinct products in the next 30 days from a "
    "raw retail transaction log. Mutating endpoints need the `X-API-Key` header when "
    '`CLV_API_KEY` is set. Errors are `{"detail": ...}`.'
)


async def _refresh_predictions(state: ApiState, interval: float) -> None:
    """Follow ``models/latest`` and reload the prediction cache when the table changes."""
    while True:
        await asyncio.sleep(interval)
        try:
            await run_in_threadpool(state.follow_latest)
        except Exception as exc:  # noqa: BLE001 - keep serving the loaded model
            logger.warning("checking models/latest failed: %s", exc)
        try:
            await run_in_threadpool(state.predictions.refresh, state.engine)
        except Exception as exc:  # noqa: BLE001 - keep serving the last good cache
            logger.warning("prediction cache refresh failed: %s", exc)


def create_app(
    settings: Settings | None = None,
    *,
    prediction_refresh_seconds: float = 2.0,
    warm_up: bool = True,
    model_threads: int | None = 1,
) -> FastAPI:
    """Build the retail-clv API.

    Parameters
    ----------
    settings
        Settings to run with; default :func:`retail_clv.config.get_settings` (``CLV_*`` env).
    prediction_refresh_seconds
        How often the in-memory copy of the ``predictions`` table checks for changes.
    warm_up
        After start-up, load the store and score it with the active model in the background,
        so the first ``/predict`` does not pay for it.
    model_threads
        Limit of the native thread pools (OpenMP, BLAS) used by scoring and training in this
        process; ``None`` leaves them alone. One thread keeps a core free for requests on a small
        machine, and avoids OpenMP threads spinning against each other when the CPU is shared,
        which was measured to make a small training run take minutes instead of seconds.

    Returns
    -------
    fastapi.FastAPI
        The application; its state (``app.state.clv``) exists once the lifespan has started.
    """
    from retail_clv.logging import hide_repeated_warnings

    hide_repeated_warnings()  # also in each worker process of ``uvicorn --factory``
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        limiter = None
        if model_threads is not None:
            from threadpoolctl import threadpool_limits

            limiter = threadpool_limits(limits=model_threads)
        engine = await run_in_threadpool(services.open_engine, settings.database_url)
        state = ApiState(settings, engine)
        await run_in_threadpool(state.reload_model)
        try:
            await run_in_threadpool(state.predictions.refresh, engine, True)
        except Exception as exc:  # noqa: BLE001 - the API still starts; /ready tells the story
            logger.warning("prediction cache not loaded: %s", exc)
        app.state.clv = state
        refresher = asyncio.create_task(_refresh_predictions(state, prediction_refresh_seconds))
        warm = asyncio.create_task(run_in_threadpool(state.warm_up)) if warm_up else None
        loaded = state.bundle
        logger.info(
            "retail-clv API ready (model: %s)",
            loaded.run_id if loaded is not None else state.model_error,
        )
        try:
            yield
        finally:
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher
            if warm is not None:
                with contextlib.suppress(Exception):
                    await warm
            state.jobs.shutdown(timeout=1.0)
            engine.dispose()
            if limiter is not None:
                limiter.restore_original_limits()

    app = FastAPI(
        title="retail-clv API",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    # Last added is outermost: request id -> CORS -> body size limit -> prediction fast path
    # -> FastAPI.
    app.add_middleware(PredictionFastPath)
    app.add_middleware(BodySizeLimit)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(settings.cors_origins),
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Content-Type", "Accept", API_KEY_HEADER, "X-Request-ID"],
        expose_headers=["X-Request-ID", "X-Ingest-Run-Id"],
    )
    app.add_middleware(RequestIdMiddleware)
    for module in (
        health,
        models,
        customers,
        predict,
        pipeline,
        ingest,
        ingest_runs,
        jobs,
        rejections,
    ):
        app.include_router(module.router)
    return app
