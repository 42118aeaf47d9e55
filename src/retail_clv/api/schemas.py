"""Request and response models of the API (separate families, GUIDE item 8).

Request bodies forbid unknown fields, so a typo is a 422 naming the field instead of a silently
ignored value. Response models document the JSON shapes of ``docs/api.md`` and the dashboard.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from retail_clv.ingest.rules import MAX_ID_LENGTH, normalise_customer_id

MAX_PREDICT_ITEMS = 10_000


def _number_as_text(value: Any) -> Any:
    """Accept a JSON number as a customer id (clients building JSON from CSVs send 12346).

    A whole number is written without decimals (``1.5e3`` is ``"1500"``, as ``1500.0`` in a
    file is); infinity and NaN are refused.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("a customer id must be text or a finite number")
        if value.is_integer():
            return str(int(value))
    return str(value)


def _readable_id(value: Any) -> Any:
    """Refuse a blank, over-long or NUL-holding id in words.

    The constraints below would say "at most 64 items" and quote a regular expression
    (:data:`~retail_clv.ingest.rules.MAX_ID_LENGTH`, the longest id ingestion stores).
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text:
        raise ValueError("a customer id cannot be blank")
    if len(text) > MAX_ID_LENGTH:
        raise ValueError(f"a customer id has at most {MAX_ID_LENGTH} characters, not {len(text):,}")
    if "\x00" in text:
        raise ValueError("a customer id cannot hold a NUL character")
    return value


CustomerId = Annotated[
    str,
    # before-validators run last-declared first: the number becomes text, then is checked
    BeforeValidator(_readable_id),
    BeforeValidator(_number_as_text),
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=MAX_ID_LENGTH, pattern=r"^[^\x00]+$"
    ),
    AfterValidator(normalise_customer_id),
]


def _not_nullable(schema: dict[str, Any]) -> None:
    """Drop the ``null`` branch from an optional field's JSON schema (null is refused)."""
    branches = schema.pop("anyOf", None)
    if branches is None:
        return
    kept = [b for b in branches if b.get("type") != "null"]
    if len(kept) == 1:
        schema.update(kept[0])
    else:
        schema["anyOf"] = kept
    if schema.get("default", 0) is None:
        del schema["default"]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorOut(BaseModel):
    """Every error: a human-readable message (422 may carry a list of ``{loc, msg}``)."""

    detail: str | list[dict[str, Any]]


class HealthOut(BaseModel):
    """Liveness answer."""

    status: Literal["ok"] = "ok"


class ReadyOut(BaseModel):
    """Readiness answer: database reachable and a model loaded."""

    status: Literal["ready"] = "ready"
    database: Literal["ok"] = "ok"
    model_run_id: str


class RunOut(BaseModel):
    """One model run of the registry."""

    run_id: str
    trained_at: str | None = None
    as_of: str | None = None
    horizon_days: int | None = None
    active: bool


class RunsOut(BaseModel):
    """Every model run, the active one flagged."""

    runs: list[RunOut]


class HistoryMonth(BaseModel):
    """A customer's spend and number of orders in one calendar month."""

    month: str = Field(examples=["2011-01"])
    spend: float
    orders: int


class CustomerOut(BaseModel):
    """A customer's purchase history from the store."""

    customer_id: str
    country: str | None
    first_seen: datetime | None
    last_purchase: datetime | None
    total_spend: float
    orders: int
    history: list[HistoryMonth]


class CustomerFeaturesOut(BaseModel):
    """The model inputs of one customer as of a date."""

    customer_id: str
    as_of: date
    features: dict[str, float | None]
    warnings: list[str] = Field(
        default_factory=list,
        description="Set when as_of lies after the day after the store's last purchase",
    )


class CustomerPredictionOut(BaseModel):
    """A customer's stored score (``predictions`` table), flagged when another run is active."""

    customer_id: str
    predicted_spend_30d_model1: float | None
    predicted_spend_30d_model2: float | None
    predicted_products_30d: float | None
    as_of: date
    horizon_days: int
    model_run_id: str
    warnings: list[str] = Field(
        default_factory=list,
        description="What to check about this score: written by another run than the active one",
    )


class PredictIn(_Input):
    """Either customer ids (scored from the store as of a date) or ready feature rows."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [
                {"required": ["customer_ids"], "not": {"required": ["rows"]}},
                {
                    "required": ["rows"],
                    "not": {"anyOf": [{"required": ["customer_ids"]}, {"required": ["as_of"]}]},
                },
            ]
        },
    )

    customer_ids: list[CustomerId] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_PREDICT_ITEMS,
        description="Customer ids (strings; JSON numbers such as 13085 are accepted)",
        json_schema_extra=_not_nullable,
    )
    as_of: date | None = Field(
        default=None, description="Cutoff for customer_ids; default: day after the last purchase"
    )
    rows: list[dict[str, Any]] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_PREDICT_ITEMS,
        description="Each row: customer_id and every feature of the active model (numbers, "
        "or null where a feature is undefined)",
        json_schema_extra=_not_nullable,
    )

    @field_validator("customer_ids", "rows", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("must not be null; leave the field out instead")
        return value

    @model_validator(mode="after")
    def _exactly_one_input(self) -> PredictIn:
        if (self.customer_ids is None) == (self.rows is None):
            raise ValueError("give exactly one of 'customer_ids' or 'rows'")
        if self.rows is not None and self.as_of is not None:
            raise ValueError("'as_of' applies to 'customer_ids' only; feature rows are dated")
        return self


class PredictionRow(BaseModel):
    """The predictions of one customer."""

    customer_id: str
    country: str | None = None
    predicted_spend_30d_model1: float | None
    predicted_spend_30d_model2: float | None
    predicted_products_30d: float | None
    r2_model1: float | None = None
    r2_model2: float | None = None


class PredictOut(BaseModel):
    """Answer of ``POST /predict``."""

    model_run_id: str
    as_of: date | None
    horizon_days: int = Field(
        description="Days the predictions cover (the model run's horizon; columns say 30d)"
    )
    predictions: list[PredictionRow]
    unknown_customer_ids: list[str]
    warnings: list[str] = Field(
        default_factory=list, description="What to check about these scores (e.g. a late as_of)"
    )


class PipelineOut(BaseModel):
    """Answer of ``POST /pipeline``: cleaning report, rejected sample and predictions."""

    report: dict[str, Any]
    rejected_sample: list[dict[str, Any]]
    as_of: date | None
    model_run_id: str
    horizon_days: int = Field(
        description="Days the predictions cover (the model run's horizon; columns say 30d)"
    )
    r2_model1: float | None = Field(
        description="R² of Model 1 on its run's held-out window of the training data (not "
        "measured on this upload)"
    )
    r2_model2: float | None = Field(
        description="R² of Model 2 on its run's held-out window of the training data"
    )
    predictions: list[PredictionRow]
    stored: list[dict[str, Any]] | None = Field(
        default=None, description="Ingest reports when ?store=true, else null"
    )


class IngestOut(BaseModel):
    """Answer of ``POST /ingest``."""

    reports: list[dict[str, Any]]


class TrainIn(_Input):
    """Body of ``POST /train``."""

    as_of: date | None = Field(
        default=None, description="Training cutoff; default: horizon_days before the data ends"
    )
    horizon_days: int | None = Field(
        default=None, ge=1, le=366, description="Default: the server's CLV_HORIZON_DAYS (30)"
    )
    budget: Literal["quick", "default"] = "quick"
    max_train_cutoffs: int | None = Field(
        default=None,
        ge=1,
        description="Train on at most this many cutoffs, the newest; default: the server's "
        "CLV_MAX_TRAIN_CUTOFFS (unset: all history)",
    )
    write_predictions: bool = Field(
        default=True, description="Rescore every customer with the new run afterwards"
    )


class JobAccepted(BaseModel):
    """A background job was started."""

    job_id: str


class JobOut(BaseModel):
    """State of a background job; ``error`` holds the failure message."""

    job_id: str
    kind: str
    state: Literal["queued", "running", "succeeded", "failed"]
    progress: float
    message: str | None
    error: str | None
    result: dict[str, Any] | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class RejectionsOut(BaseModel):
    """One page of the ``rejected_data`` audit."""

    total: int
    page: int
    page_size: int
    items: list[dict[str, Any]]


class IngestRunOut(BaseModel):
    """One ingest run of the store, as ``clv ingest-runs`` lists it."""

    run_id: int = Field(description="The id POST /ingest-runs/{run_id}/undo takes")
    source_file: str = Field(description="Name of the file ingested (no folder)")
    sheet: str | None = Field(description="Workbook sheets read, null for other formats")
    file_format: str
    encoding: str | None
    started_at: datetime = Field(description="UTC")
    finished_at: datetime | None = Field(description="UTC; null while the run is in flight")
    status: str = Field(description="succeeded, undone, or running while in flight")
    rows_read: int
    rows_loaded: int
    rows_rejected: int
    rows_duplicate: int


class IngestRunsOut(BaseModel):
    """Answer of ``GET /ingest-runs``: every ingest run, newest first."""

    runs: list[IngestRunOut]


class UndoneRows(BaseModel):
    """Rows an undo deleted, per table."""

    transactions: int = Field(description="Purchase lines")
    cancellations: int
    rejected_data: int = Field(description="Rejected rows of the run")
    customers: int = Field(description="Customers left without any purchase or cancellation")


class UndoOut(BaseModel):
    """Answer of ``POST /ingest-runs/{run_id}/undo``."""

    run_id: int
    status: Literal["undone"] = "undone"
    deleted: UndoneRows
