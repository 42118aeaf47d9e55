"""Request ids and structured access logs, as a plain ASGI middleware (cheap on the hot path).

Every request gets an id: the caller's ``X-Request-ID`` when it is a short token of safe
characters, a fresh one otherwise. The id is echoed in the response header, attached to every log
record emitted while the request is handled (:class:`RequestIdFilter`), and written with method,
path, status and duration in one JSON access-log line (:class:`JsonFormatter`).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import time
import uuid
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_logger = logging.getLogger("retail_clv.api.access")
logger = logging.getLogger(__name__)

_REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("clv_request_id", default="-")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_HEADER = b"x-request-id"


def json_start(status: int, body: bytes) -> Message:
    """Return the ASGI ``http.response.start`` message of a JSON ``body``."""
    return {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
    }


class RequestIdMiddleware:
    """Assign a request id, echo it as ``X-Request-ID`` and log one access line per request.

    Parameters
    ----------
    app
        The wrapped ASGI application.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call (HTTP only; other scopes pass through)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = ""
        for name, value in scope.get("headers", ()):
            if name == _HEADER:
                candidate = value.decode("latin-1")
                if _SAFE_ID.match(candidate):
                    request_id = candidate
                break
        if not request_id:
            request_id = uuid.uuid4().hex
        token = _REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = 500
        encoded_id = request_id.encode("latin-1")

        started_response = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                started_response = True
                status = message["status"]
                headers = list(message.get("headers", ()))
                headers.append((_HEADER, encoded_id))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # A bug, not a user error: log the traceback, answer a JSON 500 naming the request id
            # (the id stays set so the log line carries it), never the exception text.
            status = 500
            logger.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started_response:
                raise
            body = json.dumps(
                {"detail": f"Internal server error; quote request id {request_id} in reports"}
            ).encode()
            await send_with_id(json_start(500, body))
            await send({"type": "http.response.body", "body": body})
            return
        finally:
            if access_logger.isEnabledFor(logging.INFO):
                # Built by hand and passed to handle(): skips the caller lookup of logger.info,
                # a sizeable share of the cost of the cheapest requests.
                method, path = scope.get("method"), scope.get("path")
                record = logging.LogRecord(
                    access_logger.name, logging.INFO, __file__, 0, "%s %s %d",
                    (method, path, status), None,
                )  # fmt: skip
                record.request_id = request_id
                record.method = method
                record.path = path
                record.status = status
                record.duration_ms = round((time.perf_counter() - started) * 1000.0, 3)
                record.client = (scope.get("client") or ("-",))[0]
                access_logger.handle(record)
        _REQUEST_ID.reset(token)


class RequestIdFilter(logging.Filter):
    """Add ``request_id`` to every log record (``"-"`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Attach the current request id and keep the record."""
        if not hasattr(record, "request_id"):
            record.request_id = _REQUEST_ID.get()
        return True


_STANDARD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object per line: time, level, logger, message and extras."""

    _second: int = -1
    _stamp: str = ""

    def _timestamp(self, created: float) -> str:
        second = int(created)
        if second != self._second:  # strftime once per second, not once per record
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(second))
            self._second = second
        return self._stamp

    def format(self, record: logging.LogRecord) -> str:
        """Return the JSON line of ``record``."""
        payload: dict[str, Any] = {
            "ts": self._timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and key[0] != "_":
                payload[key] = value
        if record.exc_info:
            payload["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def server_logging_config(level: str = "INFO", access_log: bool = True) -> dict[str, Any]:
    """Return the ``logging.config.dictConfig`` used by ``clv serve`` in every worker.

    Parameters
    ----------
    level
        Level of the ``retail_clv`` and ``uvicorn`` loggers.
    access_log
        Whether one JSON line per request is written (logger ``retail_clv.api.access``).

    Returns
    -------
    dict
        A dictConfig mapping: JSON lines on stderr, request ids on every record, uvicorn's own
        access log disabled (ours replaces it).
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "retail_clv.api.middleware.RequestIdFilter"}},
        "formatters": {"json": {"()": "retail_clv.api.middleware.JsonFormatter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "filters": ["request_id"],
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "retail_clv": {"handlers": ["stderr"], "level": level, "propagate": False},
            "retail_clv.api.access": {
                "handlers": ["stderr"],
                "level": "INFO" if access_log else "WARNING",
                "propagate": False,
            },
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }


class PredictionFastPath:
    """Answer ``GET /customers/{id}/prediction`` straight from the prediction cache.

    The hottest endpoint is a dictionary lookup of a pre-serialised body; going through the
    router, the dependency resolver and response validation would cost several times more than
    the lookup itself. A cache miss (unknown customer, row written by another process since the
    last refresh) falls through to the regular FastAPI route, which checks the table and answers
    404 with its message. The route also keeps the endpoint in the OpenAPI schema.

    Parameters
    ----------
    app
        The wrapped ASGI application (its ``state.clv`` holds the cache once started).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve a cache hit, pass everything else through."""
        if scope["type"] == "http" and scope["method"] == "GET":
            path: str = scope["path"]
            if path.startswith("/customers/") and path.endswith("/prediction"):
                customer_id = path[11:-11]
                state = getattr(scope["app"].state, "clv", None) if "app" in scope else None
                if state is not None and 0 < len(customer_id) <= 64 and "/" not in customer_id:
                    body = state.predictions.get(customer_id)
                    if body is not None:
                        await send(json_start(200, body))
                        await send({"type": "http.response.body", "body": body})
                        return
        await self.app(scope, receive, send)


#: Largest body of a request that is not a multipart upload (JSON): ``POST /predict`` at its
#: cap of 10,000 customers with every feature given is about 7 MB. Uploads have their own limit
#: (``CLV_MAX_UPLOAD_MB``), enforced while the multipart body streams to disk.
MAX_JSON_BODY_BYTES = 16_000_000


def _too_large(limit: int) -> str:
    return (
        f"Request body too large: the limit is {limit / 1_000_000:g} MB for a JSON body "
        "(POST /predict takes at most 10,000 customers per request)"
    )


async def _send_413(send: Send, limit: int) -> None:
    body = json.dumps({"detail": _too_large(limit)}).encode()
    await send(json_start(413, body))
    await send({"type": "http.response.body", "body": body})


#: Routes whose body is a multipart upload, bounded by ``CLV_MAX_UPLOAD_MB`` as it streams to
#: disk (``api/uploads.py``), which also answers a body that is not multipart (415).
UPLOAD_PATHS = frozenset({"/pipeline", "/ingest"})
#: Methods whose body the API reads.
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class BodySizeLimit:
    """Refuse (413) a request body larger than :data:`MAX_JSON_BODY_BYTES` (uploads aside).

    Checked on ``Content-Length`` before anything is read (a client announcing 300 MB is answered
    at once instead of waited for), then while the body arrives (chunked requests). Without it a
    250 MB JSON body was read whole and parsed, about 0.5 GB of server memory, before a 422.
    Only ``POST``/``PUT``/``PATCH`` bodies outside :data:`UPLOAD_PATHS` are counted, whatever
    their content type (a ``multipart`` type on ``/predict`` does not lift the limit). Added
    inside the CORS middleware, so a browser sees the 413 with its CORS headers.

    Parameters
    ----------
    app
        The wrapped ASGI application.
    limit
        Largest body in bytes (default :data:`MAX_JSON_BODY_BYTES`).
    """

    def __init__(self, app: ASGIApp, limit: int | None = None) -> None:
        self.app = app
        self.limit = MAX_JSON_BODY_BYTES if limit is None else limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass a request through with its body counted (HTTP bodies outside uploads only)."""
        if (
            scope["type"] != "http"
            or scope.get("method") not in _BODY_METHODS
            or scope.get("path") in UPLOAD_PATHS
        ):
            await self.app(scope, receive, send)
            return
        declared = next(
            (value for name, value in scope.get("headers", ()) if name == b"content-length"), b""
        ).strip()
        if declared.isdigit() and int(declared) > self.limit:
            await _send_413(send, self.limit)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    # an HTTPException passes FastAPI's body parsing unchanged (any other error
                    # there becomes a 400) and is answered by the app's handler as JSON
                    raise HTTPException(413, detail=_too_large(self.limit))
            return message

        await self.app(scope, counted, send)
