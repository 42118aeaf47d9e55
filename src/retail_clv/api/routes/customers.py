"""A customer's history, features and stored prediction."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import polars as pl
from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from retail_clv.api.deps import StateDep
from retail_clv.api.schemas import (
    CustomerFeaturesOut,
    CustomerOut,
    CustomerPredictionOut,
    ErrorOut,
    HistoryMonth,
    normalise_customer_id,
)
from retail_clv.api.state import ApiState, finite_or_none

router = APIRouter(prefix="/customers", tags=["customers"])

#: A customer id as a path segment (``%2F`` for '/'); NUL is refused (no store can hold it).
CustomerPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[^\x00]+$")]


def _not_in_store(customer_id: str) -> HTTPException:
    return HTTPException(
        status_code=404, detail=f"Customer '{customer_id}' has no purchase in the store"
    )


def _history(state: ApiState, customer_id: str) -> CustomerOut:
    frames = state.store.get(state.engine)
    rows = frames.purchases.filter(pl.col("customer_id") == customer_id)
    if rows.height == 0:
        raise _not_in_store(customer_id)
    rows = rows.sort("invoice_date").with_columns(
        (pl.col("quantity") * pl.col("price")).alias("amount")
    )
    monthly = (
        rows.group_by(pl.col("invoice_date").dt.strftime("%Y-%m").alias("month"))
        .agg(
            pl.col("amount").sum().round(2).alias("spend"),  # money: cents, not float noise
            pl.col("invoice").n_unique().alias("orders"),
        )
        .sort("month")
    )
    dates = rows.get_column("invoice_date")
    # the first country, as the features, the predictions and the customers table have it
    first_country = rows.sort(["invoice_date", "country"], nulls_last=True)["country"][0]
    return CustomerOut(
        customer_id=customer_id,
        country=first_country,
        first_seen=dates[0],
        last_purchase=dates[-1],
        total_spend=round(float(rows.get_column("amount").sum()), 2),
        orders=rows.get_column("invoice").n_unique(),
        history=[HistoryMonth(**row) for row in monthly.to_dicts()],
    )


def _features(state: ApiState, customer_id: str, as_of: date | None) -> CustomerFeaturesOut:
    frames = state.store.get(state.engine)
    cutoff = as_of or frames.default_as_of
    if cutoff is None:
        raise _not_in_store(customer_id)
    table = frames.features(cutoff).filter(pl.col("customer_id") == customer_id)
    if table.height == 0:
        raise HTTPException(
            status_code=404,
            detail=f"Customer '{customer_id}' has no purchase before {cutoff.isoformat()}",
        )
    row = table.row(0, named=True)
    names: list[str]
    bundle = state.bundle
    if bundle is not None:
        names = list(bundle.metadata["feature_names"])
    else:
        from retail_clv.features import FEATURE_COLUMNS

        names = list(FEATURE_COLUMNS)
    values: dict[str, Any] = {
        name: finite_or_none(None if row.get(name) is None else float(row[name])) for name in names
    }
    from retail_clv.models.scoring import late_as_of_note

    after_data = frames.default_as_of
    late = late_as_of_note(cutoff, after_data, "as_of") if after_data is not None else None
    notes = [late] if late else []
    if as_of is None and frames.isolated_note is not None:  # a mistyped last date?
        notes.insert(0, frames.isolated_note)
    return CustomerFeaturesOut(
        customer_id=customer_id, as_of=cutoff, features=values, warnings=notes
    )


@router.get(
    "/{customer_id:path}/features",
    response_model=CustomerFeaturesOut,
    responses={404: {"model": ErrorOut}},
)
def customer_features(
    customer_id: CustomerPath,
    state: StateDep,
    as_of: Annotated[date | None, Query(description="Default: day after the last purchase")] = None,
) -> CustomerFeaturesOut:
    """Return the active model's input features of one customer as of a date."""
    return _features(state, normalise_customer_id(customer_id), as_of)


@router.get(
    "/{customer_id:path}/prediction",
    response_model=None,
    responses={200: {"model": CustomerPredictionOut}, 404: {"model": ErrorOut}},
)
async def customer_prediction(customer_id: CustomerPath, request: Request) -> Response:
    """Return the customer's stored score: both models' 30-day spend, products, as-of, run id.

    Served from an in-memory copy of the ``predictions`` table (pre-serialised JSON); a miss is
    checked against the table itself before answering 404. The score is the one ``clv predict``
    or ``POST /train`` stored: when it was written by another run than the active model,
    ``warnings`` says so and names both runs.
    """
    state: ApiState = request.app.state.clv
    customer_id = normalise_customer_id(customer_id)
    body = state.predictions.get(customer_id)
    if body is None:
        body = await run_in_threadpool(state.predictions.lookup_database, state.engine, customer_id)
        if body is None:
            raise HTTPException(
                status_code=404,
                detail=(
                    f"No stored prediction for customer '{customer_id}': unknown customer, or "
                    "predictions not written yet (clv predict, POST /train)"
                ),
            )
    return Response(body, media_type="application/json")


# Declared last: the id may contain '/', so the suffixed routes above must match first.
@router.get("/{customer_id:path}", response_model=CustomerOut, responses={404: {"model": ErrorOut}})
def customer(customer_id: CustomerPath, state: StateDep) -> CustomerOut:
    """Return a customer's country, first and last purchase, total spend and monthly history."""
    return _history(state, normalise_customer_id(customer_id))
