"""Pieces shared by the upload endpoints (``/pipeline``, ``/ingest``)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import HTTPException, Query

from retail_clv.api.schemas import ErrorOut
from retail_clv.api.uploads import SavedUpload
from retail_clv.errors import RetailClvError

#: ``?column=customer_id=Cust No`` (repeatable): explicit column mapping, like ``--column``.
ColumnQuery = Annotated[
    list[str] | None,
    Query(
        max_length=20,
        description="Explicit column mapping FIELD=Column Name (repeatable), e.g. "
        "customer_id=Cust No; default: recognised automatically",
    ),
]

#: ``?sheet=Orders`` (repeatable): read only these sheets of a workbook, like ``--sheet``.
SheetQuery = Annotated[
    list[str] | None,
    Query(
        max_length=100,
        description="Read only this sheet of an Excel workbook (repeatable), e.g. "
        "sheet=Orders&sheet=Orders 2; default: every sheet that holds transactions. Refused "
        "for a file without sheets (CSV, Parquet) and for a name the workbook lacks",
    ),
]

#: ``?day_first=true``: read slash dates day-first, like ``clv ingest --day-first``.
DayFirstQuery = Annotated[
    bool,
    Query(
        description="Read slash and dashed dates day-first (01/03/2010 or 01-03-2010 = 1 March) "
        "instead of deciding per column (a value such as 25/12/2010 proves day-first, "
        "12/25/2010 month-first; without one, the reading that keeps the dates closer "
        "together, else month-first)"
    ),
]
#: ``?month_first=true``: read slash dates month-first, like ``clv ingest --month-first``.
MonthFirstQuery = Annotated[
    bool,
    Query(
        description="Read slash and dashed dates month-first (01/03/2010 = 3 January) instead "
        "of deciding per column"
    ),
]


def date_order(day_first: bool, month_first: bool) -> bool | None:
    """Return the forced order of slash dates (True day-first, False month-first, None: decide).

    Raises
    ------
    fastapi.HTTPException
        422 when both are asked for.
    """
    if day_first and month_first:
        raise HTTPException(
            status_code=422, detail="Send day_first=true or month_first=true, not both"
        )
    return True if day_first else (False if month_first else None)


#: The core's messages name CLI options; an upload's client sets query parameters instead.
def _query_parameters(match: re.Match[str]) -> str:
    fields = re.findall(r"--column (\w+)=", match.group(1))
    return " with the query parameters " + ", ".join(f"column={f}=<column name>" for f in fields)


def _sheet_parameters(match: re.Match[str]) -> str:
    try:
        names = shlex.split(match.group(1))[1::2]  # --sheet NAME --sheet NAME ...
    except ValueError:  # a sheet name holding " FILE)" cut the command short: no names then
        names = []
    listed = ": " + ", ".join(repr(name) for name in names) if names else ", named above"
    return (
        "(send it again with the query parameter sheet=<sheet name> for each sheet to read"
        + listed
        + ")"
    )


_API_WORDING: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    (
        re.compile(r'(?<=Map each explicitly): ((?:--column \w+="<column name>" ?)+)'),
        _query_parameters,
    ),
    (re.compile(r'--column (\w+)="<column name>"'), r"the query parameter column=\1=<column name>"),
    (re.compile(r'e\.g\. --column customer_id="Cust No"'), "e.g. column=customer_id=Cust No"),
    (re.compile(r"--column\b"), "column parameter"),
    (
        re.compile(
            r"undo this ingest run \(clv undo-ingest with the run id of the report\) and "
            r"ingest it again with --(day|month)-first"
        ),
        r"send it again with the query parameter \1_first=true (if its rows were stored, "
        "undo that ingest run first: POST /ingest-runs/RUN_ID/undo)",
    ),
    (re.compile(r"\(clv ingest ((?:--sheet .+?)+) FILE\)"), _sheet_parameters),
    (
        re.compile(
            r"--sheet applies to Excel workbooks \(ingest this file without it, in a command "
            r"of its own\)"
        ),
        "the query parameter sheet= applies to Excel workbooks (send this file without it)",
    ),
    (re.compile(r"--sheet\b"), "the query parameter sheet="),
    (re.compile(r"--day-first\b"), "the query parameter day_first=true"),
    (re.compile(r"--month-first\b"), "the query parameter month_first=true"),
    (
        re.compile(r"undo that ingest run first: clv undo-ingest\)"),
        "undo that ingest run first: POST /ingest-runs/RUN_ID/undo)",
    ),
    (
        re.compile(r"with clv undo-ingest and its ingest run id \(in the report;"),
        "with POST /ingest-runs/RUN_ID/undo (RUN_ID: the report's run_id;",
    ),
)


def api_wording(message: str, upload: SavedUpload | None = None) -> str:
    """Reword a core message for an API client.

    The server's temporary copy of the upload is named by the client's file name, CLI options
    (``--column``, ``--day-first``, ``--sheet``) become the upload endpoints' query parameters,
    and ``clv undo-ingest`` becomes ``POST /ingest-runs/RUN_ID/undo``.

    Parameters
    ----------
    message : str
        Error or warning text from the ingestion code.
    upload : SavedUpload, optional
        The upload the message is about.

    Returns
    -------
    str
        The reworded message.
    """
    if upload is not None:
        message = message.replace(str(upload.path), upload.original_name)
        message = message.replace(str(upload.folder), "(upload)")
        # the report's own name of the file is the server copy's, sanitised ("M_rz.csv")
        message = message.replace(upload.path.name, upload.original_name)
    for pattern, replacement in _API_WORDING:
        message = pattern.sub(replacement, message)
    return message


def for_the_client(report: dict[str, Any], upload: SavedUpload) -> dict[str, Any]:
    """Return an ingest report as the uploader sees it: their file name, reworded warnings.

    Parameters
    ----------
    report : dict
        ``IngestReport.to_dict()`` of the server's copy of the upload.
    upload : SavedUpload
        The upload.

    Returns
    -------
    dict
        The report with ``source_file`` the client's file name and :func:`api_wording` applied
        to every warning.
    """
    warnings = [api_wording(w, upload) for w in report.get("warnings", [])]
    return {**report, "source_file": upload.original_name, "warnings": warnings}


def prefers_csv(accept: str) -> bool:
    """Say whether an ``Accept`` header asks for ``text/csv`` rather than JSON.

    Quality values are honoured: CSV is chosen when ``text/csv`` has a quality above zero,
    above that of ``application/json`` (on a tie, the one listed first wins) and at least that
    of the wildcards ``*/*`` / ``text/*`` / ``application/*`` (a named type beats a wildcard).

    Parameters
    ----------
    accept : str
        The request's ``Accept`` header ("" when absent).

    Returns
    -------
    bool
        True when the client asked for CSV.
    """
    quality: dict[str, float] = {}
    order: dict[str, int] = {}
    for position, item in enumerate(accept.split(",")):
        media, *params = (part.strip() for part in item.split(";"))
        media = media.lower()
        if not media:
            continue
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = min(1.0, max(0.0, float(value)))
                except ValueError:
                    q = 0.0
        quality[media] = max(q, quality.get(media, 0.0))
        order.setdefault(media, position)
    csv_q = quality.get("text/csv", 0.0)
    if csv_q <= 0:
        return False
    wildcard_q = max(quality.get(w, 0.0) for w in ("*/*", "text/*", "application/*"))
    if csv_q < wildcard_q:
        return False
    json_q = quality.get("application/json")
    if json_q is None or csv_q > json_q:
        return True
    return csv_q == json_q and order["text/csv"] < order["application/json"]


@contextmanager
def worded_for_the_client(upload: SavedUpload | None = None) -> Iterator[None]:
    """Re-raise domain errors raised inside the block with :func:`api_wording` applied."""
    try:
        yield
    except RetailClvError as exc:
        worded = api_wording(str(exc), upload)
        if worded == str(exc):
            raise
        raise type(exc)(worded) from exc


#: OpenAPI description of the multipart body (the routes parse the stream themselves).
UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "Raw CSV, Excel (.xlsx/.xls) or Parquet transaction log",
                        }
                    },
                }
            }
        },
    }
}

UPLOAD_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Malformed multipart body"},
    413: {"model": ErrorOut, "description": "Upload larger than CLV_MAX_UPLOAD_MB"},
    415: {"model": ErrorOut, "description": "Not multipart, or not CSV/Excel/Parquet content"},
    422: {"model": ErrorOut, "description": "File unreadable or missing required columns"},
}

AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "CLV_API_KEY is set and X-API-Key is missing"},
    403: {"model": ErrorOut, "description": "X-API-Key does not match"},
}
