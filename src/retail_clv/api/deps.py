"""Reusable ``Annotated`` dependencies of the routes (GUIDE item 8).

They are ``async`` on purpose: none of them blocks, and FastAPI would otherwise run each one
on the thread pool, which costs more than the lookups they guard.

``StateDep`` and ``BundleDep`` reach the process state built at
start-up; ``ApiKeyDep`` guards the mutating endpoints when ``CLV_API_KEY`` is set (401 when the
key is missing, 403 when it is wrong, compared in constant time). FastAPI reads and validates a
JSON body before it runs any dependency, so the routers of protected endpoints use
:class:`KeyFirstRoute`, which checks the key before the request is parsed: a caller without the
key never learns anything about the body it sent.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Response
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader

from retail_clv.api.state import ApiState

API_KEY_HEADER = "X-API-Key"
_api_key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False)


async def get_state(request: Request) -> ApiState:
    """Return the :class:`ApiState` built by the lifespan of the app."""
    state: ApiState = request.app.state.clv
    return state


StateDep = Annotated[ApiState, Depends(get_state)]


async def get_bundle(state: StateDep) -> Any:
    """Return the active model bundle (503 with the reason when none is loaded)."""
    return state.require_bundle()


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


#: Attribute of an endpoint naming when it needs the key, set by :func:`api_key_when`.
_KEY_CONDITION = "_clv_api_key_when"


def api_key_when(
    condition: Callable[[Request], bool],
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark an endpoint that needs the API key only for some requests (e.g. ``?store=true``).

    Put it under the route decorator. :class:`KeyFirstRoute` then checks the key first when
    ``condition(request)`` is true; the endpoint should still check it itself once its parameters
    are validated, as ``POST /pipeline`` does.

    Parameters
    ----------
    condition
        Says from the raw request (nothing parsed yet) whether the key is needed.

    Returns
    -------
    callable
        The decorator; it returns the endpoint unchanged but for the mark.
    """

    def mark(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        setattr(endpoint, _KEY_CONDITION, condition)
        return endpoint

    return mark


class KeyFirstRoute(APIRoute):
    """A route that checks the API key before FastAPI reads, parses or validates the request.

    FastAPI decodes a JSON body before solving any dependency, so ``POST /train`` with a
    malformed body answered 422 to a caller without the key, and 401 only once the JSON was
    valid. A route of a router built with ``route_class=KeyFirstRoute`` whose dependencies
    include :data:`ApiKeyDep` (or whose endpoint is marked with :func:`api_key_when`) answers
    401/403 before anything else. The dependency still runs afterwards (a cheap second check) and
    documents the header in the OpenAPI schema. Other routes of the router are unchanged.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Return FastAPI's handler, behind the key check when this route needs one."""
        handler = super().get_route_handler()
        condition: Callable[[Request], bool] | None = getattr(self.endpoint, _KEY_CONDITION, None)
        if condition is None and any(
            dependency.call is check_api_key for dependency in self.dependant.dependencies
        ):
            condition = _always
        if condition is None:
            return handler
        needs_key = condition

        async def key_first(request: Request) -> Response:
            if needs_key(request):
                await check_api_key(request.app.state.clv, request.headers.get(API_KEY_HEADER))
            return await handler(request)

        return key_first


def _always(request: Request) -> bool:
    return True
