"""Reusable ``Annotated`` dependencies of the routes (GUIDE item 8).

They are ``async`` on purpose: none of them blocks, and FastAPI would otherwise run each one
on the thread pool, which costs more than the lookups they guard.

``StateDep``, ``SettingsDep``, ``EngineDep`` and ``BundleDep`` reach the process state built at
start-up; ``ApiKeyDep`` guards the mutating endpoints when ``CLV_API_KEY`` is set (401 when the
key is missing, 403 when it is wrong, compared in constant time).
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader

from retail_clv.api.state import ApiState
from retail_clv.config import Settings

API_KEY_HEADER = "X-API-Key"
_api_key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False)


async def get_state(request: Request) -> ApiState:
    """Return the :class:`ApiState` built by the lifespan of the app."""
    state: ApiState = request.app.state.clv
    return state


StateDep = Annotated[ApiState, Depends(get_state)]


async def get_settings_dep(state: StateDep) -> Settings:
    """Return the settings the app runs with."""
    return state.settings


async def get_engine_dep(state: StateDep) -> sa.Engine:
    """Return the store's engine."""
    return state.engine


async def get_bundle(state: StateDep) -> Any:
    """Return the active model bundle (503 with the reason when none is loaded)."""
    return state.require_bundle()


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
EngineDep = Annotated[sa.Engine, Depends(get_engine_dep)]
BundleDep = Annotated[Any, Depends(get_bundle)]


async def check_api_key(
    state: StateDep, key: Annotated[str | None, Depends(_api_key_header)]
) -> None:
    """Require the ``X-API-Key`` header to match ``CLV_API_KEY`` when one is configured.

    Raises
    ------
    fastapi.HTTPException
        401 when the header is missing, 403 when it does not match.
    """
    expected = state.settings.api_key
    if expected is None:
        return
    if not key:
        raise HTTPException(
            status_code=401,
            detail=f"Missing API key: send it in the {API_KEY_HEADER} header",
            headers={"WWW-Authenticate": "ApiKey"},
        )
    if not secrets.compare_digest(key.encode("utf-8"), expected.encode("utf-8")):
        raise HTTPException(status_code=403, detail="Invalid API key")


ApiKeyDep = Depends(check_api_key)
