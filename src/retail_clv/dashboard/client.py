"""A small typed HTTP client of the retail-clv API, used by the dashboard.

The dashboard holds no model or cleaning logic of its own: every number it shows comes
from the API through this client. Transport failures and error responses are translated
into :class:`DashboardError` subclasses whose message says what happened and whose
``hint`` says what the user can do next, so the pages never show a traceback.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any, Literal, TypedDict, cast
from urllib.parse import quote

import httpx

from retail_clv.errors import RetailClvError

logger = logging.getLogger(__name__)

#: Header carrying the API key on mutating requests when ``CLV_API_KEY`` is set.
API_KEY_HEADER = "X-API-Key"

DEFAULT_TIMEOUT = 10.0
#: Cleaning + scoring a whole upload can take a while on a big file.
PIPELINE_TIMEOUT = 600.0


class DashboardError(RetailClvError):
    """An API call failed; ``str(error)`` says what happened, ``hint`` what to do next."""

    def __init__(self, message: str, hint: str = "", status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.status_code = status_code


class BackendUnavailableError(DashboardError):
    """The API cannot be reached (connection refused, DNS failure, ...)."""


class BackendTimeoutError(DashboardError):
    """The API did not answer in time."""


class NotFoundError(DashboardError):
    """The API answered 404 for a resource (customer, job, ...)."""


class NoModelError(NotFoundError):
    """No model has been trained yet, so there is nothing to predict with."""


class InvalidRequestError(DashboardError):
    """The API refused the request (400, 413, 415, 422): usually a bad upload."""


class AuthError(DashboardError):
    """The API requires an API key (401/403)."""


class ConflictError(DashboardError):
    """The API refused because something is already running (409)."""


class ServerError(DashboardError):
    """The API failed with a 5xx error."""


class Job(TypedDict, total=False):
    """State of a background job (``GET /jobs/{job_id}``)."""

    job_id: str
    kind: str
    state: Literal["queued", "running", "succeeded", "failed"]
    progress: float
    message: str | None
    error: str | None
    result: Any


def _detail_text(detail: Any) -> str:
    """Render an API ``detail`` (a string, or a 422 list of ``{"loc", "msg"}``) as text."""
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                msg = str(item.get("msg", item))
                parts.append(f"{loc}: {msg}" if loc else msg)
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return "" if detail is None else str(detail)


def _response_detail(response: httpx.Response) -> str:
    """Extract the human-readable ``detail`` of an error response."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "detail" in body:
        text = _detail_text(body["detail"])
        if text:
            return text
    text = response.text.strip()
    if text and len(text) < 300 and not text.lstrip().startswith("<"):
        return text
    return response.reason_phrase or f"HTTP {response.status_code}"


class ApiClient:
    """Client of the retail-clv API.

    Parameters
    ----------
    base_url : str
        Root URL of the API, e.g. ``"http://localhost:8000"``.
    api_key : str or None, optional
        Sent as ``X-API-Key`` on every request when set.
    timeout : float, default 10
        Timeout in seconds of ordinary requests (uploads use ``PIPELINE_TIMEOUT``).
    transport : httpx.BaseTransport or None, optional
        Custom transport (tests); ``None`` uses the network.

    Examples
    --------
    >>> client = ApiClient("http://localhost:8000")
    >>> client.base_url
    'http://localhost:8000'
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self._transport = transport

    # -- plumbing -------------------------------------------------------------------------

    def _unavailable_hint(self) -> str:
        return (
            f"Start the API with `clv serve` (or `make serve`) so it listens on {self.base_url}, "
            "or point the dashboard at it with the CLV_API_URL environment variable."
        )

    def _request(
        self,
        method: str,
        path: str,
        *,
        timeout: float | None = None,
        not_found_hint: str = "",
        conflict_hint: str = "",
        **kwargs: Any,
    ) -> httpx.Response:
        """Send one request and translate every failure into a :class:`DashboardError`."""
        headers = dict(kwargs.pop("headers", None) or {})
        if self.api_key:
            headers[API_KEY_HEADER] = self.api_key
        url = f"{self.base_url}{path}"
        try:
            with httpx.Client(timeout=timeout or self.timeout, transport=self._transport) as http:
                response = http.request(method, url, headers=headers, **kwargs)
        except httpx.ConnectTimeout as exc:  # never took the connection: down, not busy
            logger.warning("%s %s: connection timed out: %s", method, url, exc)
            raise BackendUnavailableError(
                f"Cannot reach the retail-clv API at {self.base_url}.",
                hint=self._unavailable_hint(),
            ) from exc
        except httpx.TimeoutException as exc:
            logger.warning("%s %s timed out: %s", method, url, exc)
            raise BackendTimeoutError(
                f"The retail-clv API at {self.base_url} did not answer in time.",
                hint="It may be busy (training or scoring a large file): wait a moment and "
                "try again. If it keeps happening, check the terminal running `clv serve`.",
            ) from exc
        except httpx.TransportError as exc:
            logger.warning("%s %s failed: %s", method, url, exc)
            raise BackendUnavailableError(
                f"Cannot reach the retail-clv API at {self.base_url}.",
                hint=self._unavailable_hint(),
            ) from exc
        if response.is_success:
            return response
        self._raise_for_status(response, not_found_hint, conflict_hint)
        raise AssertionError("unreachable")  # pragma: no cover

    def _raise_for_status(
        self, response: httpx.Response, not_found_hint: str, conflict_hint: str = ""
    ) -> None:
        """Raise the :class:`DashboardError` matching an error response."""
        status = response.status_code
        detail = _response_detail(response)
        logger.info("API answered %s: %s", status, detail)
        if status in (404, 503) and _is_no_model(detail):
            raise NoModelError(
                detail,
                hint="Train a model first: run `clv train` (or `clv demo`), or use the Retrain "
                "button on the Models page.",
                status_code=status,
            )
        if status == 404:
            raise NotFoundError(detail, hint=not_found_hint, status_code=status)
        if status in (401, 403):
            raise AuthError(
                detail,
                hint="Set CLV_API_KEY to the API's key in the dashboard's environment.",
                status_code=status,
            )
        if status == 409:
            raise ConflictError(
                detail,
                hint=conflict_hint or "Wait for the running job to finish.",
                status_code=status,
            )
        if status == 413:
            raise InvalidRequestError(
                detail,
                hint="The file is larger than the API accepts (CLV_MAX_UPLOAD_MB): compress a "
                "CSV with gzip and drop the .csv.gz, split the file, or raise the limit.",
                status_code=status,
            )
        if 400 <= status < 500:
            raise InvalidRequestError(
                detail,
                hint="Check the file: it must be a CSV or XLSX export of transactions with "
                "Invoice, StockCode, Quantity, InvoiceDate, Price and Customer ID columns.",
                status_code=status,
            )
        if status == 503:
            raise ServerError(
                detail,
                hint="The API is up but not ready; see the terminal running `clv serve`.",
                status_code=status,
            )
        raise ServerError(
            f"The API failed ({status}): {detail}",
            hint="See the terminal running `clv serve` for details, then try again.",
            status_code=status,
        )

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self._request(method, path, **kwargs)
        try:
            body = response.json()
        except ValueError as exc:
            raise ServerError(
                f"The API answered {path} with something that is not JSON.",
                hint="Check that CLV_API_URL points at the retail-clv API.",
            ) from exc
        if not isinstance(body, dict):
            raise ServerError(
                f"The API answered {path} with an unexpected shape.",
                hint="Check that the dashboard and the API are the same retail-clv version.",
            )
        return body

    # -- endpoints ------------------------------------------------------------------------

    def ready(self) -> dict[str, Any]:
        """Return ``GET /ready``: ``{"status", "database", "model_run_id"}``.

        Returns
        -------
        dict
            The readiness document (raises :class:`ServerError` on 503).
        """
        return self._json("GET", "/ready", timeout=min(self.timeout, 3.0))

    def active_model(self) -> dict[str, Any]:
        """Return the active model run's metadata (``GET /models/active``).

        Returns
        -------
        dict
            ``run_id, trained_at, as_of, horizon_days, feature_names, metrics,
            feature_importance, ...``; raises :class:`NoModelError` when none is trained.
        """
        return self._json("GET", "/models/active")

    def list_models(self) -> list[dict[str, Any]]:
        """Return the stored runs (``GET /models``).

        Returns
        -------
        list of dict
            ``run_id, trained_at, as_of, horizon_days, active`` per run.
        """
        return cast(list[dict[str, Any]], self._json("GET", "/models").get("runs", []))

    def _customer_path(self, customer_id: str, suffix: str = "") -> str:
        return f"/customers/{quote(customer_id.strip(), safe='')}{suffix}"

    def customer(self, customer_id: str) -> dict[str, Any]:
        """Return a stored customer's summary and monthly history (``GET /customers/{id}``).

        Parameters
        ----------
        customer_id : str
            The customer id, e.g. ``"13085"``.

        Returns
        -------
        dict
            ``customer_id, country, first_seen, last_purchase, total_spend, orders, history``.
        """
        return self._json(
            "GET",
            self._customer_path(customer_id),
            not_found_hint="Check the id (e.g. 13085), or ingest the file that holds this "
            "customer with `clv ingest` (or the Full Pipeline page with 'Save rows to the "
            "store' on).",
        )

    def customer_features(self, customer_id: str) -> dict[str, Any]:
        """Return the features of a customer (``GET /customers/{id}/features``).

        Parameters
        ----------
        customer_id : str
            The customer id.

        Returns
        -------
        dict
            ``customer_id, as_of, features`` (feature name -> value).
        """
        return self._json("GET", self._customer_path(customer_id, "/features"))

    def customer_prediction(self, customer_id: str) -> dict[str, Any]:
        """Return both models' predictions for a customer (``GET /customers/{id}/prediction``).

        Parameters
        ----------
        customer_id : str
            The customer id.

        Returns
        -------
        dict
            ``customer_id, predicted_spend_30d_model1, predicted_spend_30d_model2,
            predicted_products_30d, as_of, horizon_days, model_run_id, warnings`` (a note when
            the stored score was written by another run than the active model).
        """
        return self._json(
            "GET",
            self._customer_path(customer_id, "/prediction"),
            not_found_hint="Run `clv predict` to score the stored customers.",
        )

    def run_pipeline(
        self,
        filename: str,
        content: bytes,
        store: bool = False,
        day_first: bool = False,
        columns: dict[str, str] | None = None,
        sheets: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Clean and score one raw file (``POST /pipeline``).

        Parameters
        ----------
        filename : str
            Name of the uploaded file (its extension tells the API the format).
        content : bytes
            The raw file.
        store : bool, default False
            Also load the cleaned rows into the store.
        day_first : bool, default False
            Read slash dates day-first (``?day_first=true``) instead of deciding per column.
        columns : dict of str to str, optional
            Field -> column name of the file (``?column=field=name``, repeated), for exports
            whose column names the API does not recognise.
        sheets : sequence of str, optional
            The sheets of an Excel workbook to read (``?sheet=name``, repeated); empty: every
            sheet that holds transactions.

        Returns
        -------
        dict
            ``report, rejected_sample, as_of, model_run_id, r2_model1, r2_model2,
            predictions``.
        """
        return self._json(
            "POST",
            "/pipeline",
            params=[
                ("store", str(store).lower()),
                ("day_first", str(day_first).lower()),
                *(("column", f"{field}={name}") for field, name in (columns or {}).items()),
                *(("sheet", name) for name in sheets),
            ],
            files={"file": (filename, content, _guess_mime(filename))},
            timeout=PIPELINE_TIMEOUT,
        )

    def list_ingest_runs(self) -> list[dict[str, Any]]:
        """Return the store's ingest runs, newest first (``GET /ingest-runs``).

        Returns
        -------
        list of dict
            ``run_id, source_file, sheet, file_format, encoding, started_at, finished_at,
            status ("succeeded", "undone" or "running"), rows_read, rows_loaded,
            rows_rejected, rows_duplicate`` per run.
        """
        return cast(list[dict[str, Any]], self._json("GET", "/ingest-runs").get("runs", []))

    def undo_ingest_run(self, run_id: int) -> dict[str, Any]:
        """Take an ingest run's rows out of the store again (``POST /ingest-runs/{id}/undo``).

        Parameters
        ----------
        run_id : int
            The ingest run, as ``stored`` of :meth:`run_pipeline` names it (``run_id``).

        Returns
        -------
        dict
            ``run_id, status ("undone"), deleted`` (rows deleted per table: ``transactions,
            cancellations, rejected_data, customers``). Raises :class:`NotFoundError` for a run
            the store does not hold, :class:`ConflictError` for one already undone or with later
            runs that skipped its rows as duplicates, :class:`AuthError` without the API key.
        """
        return self._json(
            "POST",
            f"/ingest-runs/{int(run_id)}/undo",
            not_found_hint="The API's store does not hold this upload: was the API restarted "
            "on another database?",
            conflict_hint="Nothing was changed. An upload already undone has nothing left to "
            "take out; uploads saved after this one that skipped its rows as duplicates must be "
            "undone first, newest first.",
        )

    def start_training(
        self,
        budget: Literal["quick", "default"] = "quick",
        horizon_days: int | None = None,
        max_train_cutoffs: int | None = None,
        as_of: dt.date | None = None,
    ) -> str:
        """Start retraining in the background (``POST /train``) and return the job id.

        Parameters
        ----------
        budget : {"quick", "default"}
            Hyper-parameter search budget.
        horizon_days : int, optional
            Prediction horizon; None (sent as null) is the API server's ``CLV_HORIZON_DAYS``.
        max_train_cutoffs : int, optional
            Train on the newest N cutoffs only; None (sent as null) is the API server's
            ``CLV_MAX_TRAIN_CUTOFFS`` (unset there: all history).
        as_of : datetime.date, optional
            Train on windows ending by this date; None (sent as null): the last purchase date
            minus the horizon.

        Returns
        -------
        str
            The job id to poll with :meth:`job`.
        """
        body = self._json(
            "POST",
            "/train",
            json={
                "as_of": None if as_of is None else as_of.isoformat(),
                "horizon_days": horizon_days,
                "budget": budget,
                "max_train_cutoffs": max_train_cutoffs,
            },
        )
        return str(body["job_id"])

    def job(self, job_id: str) -> Job:
        """Return the state of a background job (``GET /jobs/{job_id}``).

        Parameters
        ----------
        job_id : str
            Id returned by :meth:`start_training`.

        Returns
        -------
        Job
            ``job_id, kind, state, progress (0..1), message, error, result``.
        """
        return cast(
            Job,
            self._json(
                "GET",
                f"/jobs/{job_id}",
                not_found_hint="The API may have restarted and forgotten the job; "
                "start training again.",
            ),
        )


def _is_no_model(detail: str) -> bool:
    """Whether an error detail says that no model has been trained yet."""
    lower = detail.lower()
    return lower.startswith("no model") or ("no model" in lower and "train" in lower)


def _guess_mime(filename: str) -> str:
    """Return the MIME type of an upload from its extension."""
    lower = filename.lower()
    if lower.endswith(".xlsx"):
        return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    if lower.endswith(".gz"):
        return "application/gzip"
    if lower.endswith(".csv"):
        return "text/csv"
    return "application/octet-stream"
