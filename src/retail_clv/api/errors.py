"""Translate domain errors into HTTP answers: always ``{"detail": ...}``, never a traceback.

Core code raises :class:`retail_clv.errors.RetailClvError` subclasses; this module maps each
class to a 4xx/503 status at the edge (GUIDE item 9). Anything else is a bug: the request-id
middleware logs its traceback and answers a 500 that carries the request id, never the text.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from retail_clv.errors import (
    IngestRunConflictError,
    InputFileError,
    ModelMismatchError,
    ModelNotFoundError,
    NotEnoughDataError,
    RetailClvError,
    SchemaError,
    SettingError,
    StoreError,
    TrainingDivergedError,
    UnknownIngestRunError,
)

logger = logging.getLogger(__name__)

#: Status code of each domain error class; the most specific class listed wins (MRO order).
STATUS_BY_ERROR: dict[type[RetailClvError], int] = {
    InputFileError: 422,
    SchemaError: 422,
    NotEnoughDataError: 422,
    SettingError: 422,
    TrainingDivergedError: 422,
    ModelNotFoundError: 503,
    ModelMismatchError: 503,
    StoreError: 503,
    UnknownIngestRunError: 404,
    IngestRunConflictError: 409,
}


def status_for(exc: RetailClvError) -> int:
    """Return the HTTP status of a domain error (400 for classes not listed).

    Parameters
    ----------
    exc
        The domain error raised by core code.

    Returns
    -------
    int
        The status code from :data:`STATUS_BY_ERROR` of the closest class in the MRO.
    """
    for klass in type(exc).__mro__:
        if klass in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[klass]
    return 400


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RetailClvError)
    status = status_for(exc)
    logger.info(
        "domain error %s -> %d: %s", type(exc).__name__, status, exc, extra={"status": status}
    )
    return JSONResponse({"detail": str(exc)}, status_code=status)


def _short_errors(errors: Any) -> list[dict[str, Any]]:
    """Keep ``loc``, ``msg`` and ``type`` of each validation error; never echo the input back."""
    return [
        {"loc": list(err.get("loc", ())), "msg": str(err.get("msg", "")), "type": err.get("type")}
        for err in errors
    ]


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": _short_errors(exc.errors())}, status_code=422)


async def _store_unreachable(request: Request, exc: Exception) -> JSONResponse:
    from retail_clv.store.db import describe_database_error

    # The driver's text can name hosts and users: it goes to the log, the client gets its kind.
    logger.warning(
        "store unavailable -> 503: %s", describe_database_error(exc), extra={"status": 503}
    )
    kind = type(getattr(exc, "orig", None) or exc).__name__
    return JSONResponse(
        {
            "detail": f"The store is unavailable ({kind}); retry once the database is back "
            "(the server log has the reason)"
        },
        status_code=503,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the domain-error and validation-error handlers on ``app``.

    Parameters
    ----------
    app
        The FastAPI application being built by :func:`retail_clv.api.app.create_app`.
    """
    app.add_exception_handler(RetailClvError, _domain_error)
    from retail_clv.store.db import database_errors

    for error in database_errors(unreachable_only=True):
        app.add_exception_handler(error, _store_unreachable)
    app.add_exception_handler(RequestValidationError, _validation_error)
