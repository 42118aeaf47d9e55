"""Pieces shared by the upload endpoints (``/pipeline``, ``/ingest``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query

from retail_clv.api.schemas import ErrorOut

#: ``?column=customer_id=Cust No`` (repeatable): explicit column mapping, like ``--column``.
ColumnQuery = Annotated[
    list[str] | None,
    Query(
        max_length=20,
        description="Explicit column mapping FIELD=Column Name (repeatable), e.g. "
        "customer_id=Cust No; default: recognised automatically",
    ),
]

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
