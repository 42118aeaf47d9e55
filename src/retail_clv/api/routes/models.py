"""Model runs of the registry and the active model's metadata."""

from __future__ import annotations

import re
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


def public_database_url(url: Any) -> str | None:
    """Return the store URL a run records as anyone may read it: scheme and database name.

    Reads need no API key, so the user name, password, host, port and query (which can name
    certificate files) are left out, and an SQLite file keeps its name but not its folder:
    ``postgresql+psycopg://clv_admin@db.internal:5432/retail`` -> ``postgresql+psycopg://…/retail``,
    ``sqlite:////srv/clv/data/retail.db`` -> ``sqlite:///…/retail.db``. The run on disk keeps
    what it recorded (the checksummed ``metadata.json`` is never rewritten).

    Parameters
    ----------
    url
        ``data_fingerprint.database_url`` of a run's metadata (``None`` when not recorded).

    Returns
    -------
    str or None
        The redacted URL; ``None`` when ``url`` is ``None``.
    """
    if url is None:
        return None
    text = str(url)
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(text)
    except Exception:  # noqa: BLE001 - not a SQLAlchemy URL: keep a plain scheme at most
        scheme = text.partition("://")[0] if "://" in text else ""
        return f"{scheme}://…" if re.fullmatch(r"[A-Za-z][\w+.-]{0,40}", scheme) else "…"
    database = (parsed.database or "").split("?", 1)[0]
    if parsed.get_backend_name() == "sqlite":
        if not database or database == ":memory:":
            return f"{parsed.drivername}://" + (f"/{database}" if database else "")
        name = re.split(r"[\\/]", database)[-1]
        return f"{parsed.drivername}:///" + (name if name == database else f"…/{name}")
    return f"{parsed.drivername}://…" + (f"/{database}" if database else "")


def public_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """Return a run's metadata as ``GET /models/active`` serves it: JSON-safe, store URL redacted.

    Parameters
    ----------
    metadata
        ``metadata.json`` of the run.

    Returns
    -------
    dict
        A copy with NaN/inf as ``None`` and ``data_fingerprint.database_url`` passed through
        :func:`public_database_url`.
    """
    public: dict[str, Any] = _json_safe(dict(metadata))
    fingerprint = public.get("data_fingerprint")
    if isinstance(fingerprint, dict) and "database_url" in fingerprint:
        public["data_fingerprint"] = {
            **fingerprint,
            "database_url": public_database_url(fingerprint["database_url"]),
        }
    return public


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
    """Return the active run's metadata: run id, dates, horizon, features, metrics, versions.

    The store URL of its data fingerprint is reduced to its scheme and database name.
    """
    bundle = state.bundle
    if bundle is None:
        detail = state.model_error or NO_MODEL_MESSAGE
        raise HTTPException(status_code=404 if detail == NO_MODEL_MESSAGE else 503, detail=detail)
    return JSONResponse(public_metadata(bundle.metadata))
