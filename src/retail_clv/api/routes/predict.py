"""Real-time predictions for customer ids (from the store) or for feature rows."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import polars as pl
from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, create_model

from retail_clv.api.deps import BundleDep, StateDep
from retail_clv.api.schemas import CustomerId, ErrorOut, PredictIn, PredictOut

router = APIRouter(tags=["predictions"])

PREDICTION_COLUMNS = (
    "customer_id",
    "country",
    "predicted_spend_30d_model1",
    "predicted_spend_30d_model2",
    "predicted_products_30d",
    "r2_model1",
    "r2_model2",
)


def prediction_records(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """Return the prediction columns of ``frame`` as JSON-safe dicts (NaN becomes null).

    Parameters
    ----------
    frame
        Output of ``scoring.score`` or ``ModelBundle.predict``.

    Returns
    -------
    list of dict
        One dict per customer with the columns of :data:`PREDICTION_COLUMNS` present in ``frame``.
    """
    columns = [c for c in PREDICTION_COLUMNS if c in frame.columns]
    frame = frame.select(columns).with_columns(
        pl.col(pl.Float32, pl.Float64).fill_nan(None).cast(pl.Float64)
    )
    return frame.to_dicts()


#: Largest magnitude a feature may have: the tree learners compute in float32.
FEATURE_LIMIT = float(np.finfo(np.float32).max)


@lru_cache(maxsize=8)
def _row_adapter(feature_names: tuple[str, ...]) -> TypeAdapter[list[Any]]:
    """Build (once per feature list) a validator of feature rows that forbids unknown fields.

    A feature may be ``null`` (undefined, as the store's own interval features are for
    one-purchase-day customers): the models handle it as they did in training.
    """
    fields: dict[str, Any] = {"customer_id": (CustomerId, ...)}
    for name in feature_names:
        fields[name] = (
            float | None,
            Field(allow_inf_nan=False, ge=-FEATURE_LIMIT, le=FEATURE_LIMIT),
        )
    model = create_model(  # type: ignore[call-overload]
        "FeatureRow", __config__=ConfigDict(extra="forbid", strict=False), **fields
    )
    return TypeAdapter(list[model])  # type: ignore[valid-type]


def _validate_rows(rows: list[dict[str, Any]], feature_names: list[str]) -> pl.DataFrame:
    adapter = _row_adapter(tuple(feature_names))
    try:
        validated = adapter.validate_python(rows)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        for error in errors:
            error["loc"] = ("body", "rows", *error["loc"])
            if error["type"] == "extra_forbidden":
                error["msg"] = f"unknown field '{error['loc'][-1]}' (not a feature of the model)"
            elif error["type"] == "missing":
                error["msg"] = f"missing field '{error['loc'][-1]}'"
        raise RequestValidationError(errors) from None
    records = [row.model_dump() for row in validated]
    return pl.DataFrame(
        records,
        schema={"customer_id": pl.Utf8, **{name: pl.Float64 for name in feature_names}},
    )


def _predict_ids(state: StateDep, bundle: Any, body: PredictIn) -> PredictOut:
    assert body.customer_ids is not None
    frames = state.store.get(state.engine)
    cutoff = body.as_of or frames.default_as_of
    wanted = pl.DataFrame({"customer_id": list(dict.fromkeys(body.customer_ids))})
    wanted = wanted.with_row_index("_order")
    scored = pl.DataFrame(schema={"customer_id": pl.Utf8})
    if cutoff is not None:
        scored = frames.scores(bundle, cutoff)
    ordered = wanted.join(scored, on="customer_id", how="inner").sort("_order")
    unknown = wanted.join(scored.select("customer_id"), on="customer_id", how="anti").sort("_order")
    from retail_clv.models.scoring import as_of_notes, trained_on_this_store

    served = state.engine.url.render_as_string(hide_password=True)
    same_store = trained_on_this_store(bundle, served)
    notes = (
        []
        if cutoff is None
        else as_of_notes(cutoff, frames.default_as_of, bundle, "as_of", same_store=same_store)
    )
    if body.as_of is None and frames.isolated_note is not None:
        notes.insert(0, frames.isolated_note)
    return PredictOut(
        model_run_id=bundle.run_id,
        as_of=cutoff,
        horizon_days=int(bundle.metadata.get("horizon_days", 30)),
        predictions=prediction_records(ordered),  # type: ignore[arg-type]
        unknown_customer_ids=unknown.get_column("customer_id").to_list(),
        warnings=notes,
    )


@router.post(
    "/predict",
    response_model=PredictOut,
    responses={422: {"model": ErrorOut}, 503: {"model": ErrorOut}},
)
def predict(body: PredictIn, state: StateDep, bundle: BundleDep) -> PredictOut:
    """Score up to 10,000 customers with both models.

    With ``customer_ids``: features come from the store as of ``as_of`` (default: the day after
    the last purchase); ids without purchases before that date are listed in
    ``unknown_customer_ids`` and never scored. With ``rows``: every row must carry ``customer_id``
    and exactly the active model's features (422 naming any missing or unknown field).
    """
    if body.customer_ids is not None:
        return _predict_ids(state, bundle, body)
    assert body.rows is not None
    features = _validate_rows(body.rows, list(bundle.metadata["feature_names"]))
    predicted = bundle.predict(features)
    return PredictOut(
        model_run_id=bundle.run_id,
        as_of=None,
        horizon_days=int(bundle.metadata.get("horizon_days", 30)),
        predictions=prediction_records(predicted),  # type: ignore[arg-type]
        unknown_customer_ids=[],
    )
