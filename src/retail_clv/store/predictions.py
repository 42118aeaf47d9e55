"""Read and write the ``predictions`` table: the latest score of each customer.

``clv predict`` writes the scores of every customer; the API serves them. The table holds one
row per customer (primary key ``customer_id``): writing upserts, so a customer's row always
carries the newest score with the model run id and as-of date that produced it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from typing import Any

import polars as pl
import sqlalchemy as sa

from retail_clv.errors import StoreError
from retail_clv.store.schema import predictions

__all__ = ["PREDICTION_COLUMNS", "read_prediction", "read_predictions", "write_predictions"]

logger = logging.getLogger(__name__)

#: Frame column (scoring / API name) -> table column.
_FRAME_TO_TABLE: dict[str, str] = {
    "predicted_spend_30d_model1": "predicted_spend_model1",
    "predicted_spend_30d_model2": "predicted_spend_model2",
    "predicted_products_30d": "predicted_products",
}

#: Columns of :func:`read_predictions` (and keys of :func:`read_prediction`).
PREDICTION_COLUMNS: list[str] = [
    "customer_id",
    "predicted_spend_30d_model1",
    "predicted_spend_30d_model2",
    "predicted_products_30d",
    "as_of",
    "horizon_days",
    "model_run_id",
    "created_at",
]

_CHUNK = 500  # rows per statement; keeps SQLite below its bound-parameter limit


def _upsert_statement(engine: sa.Engine) -> Any:
    """Return an INSERT ... ON CONFLICT (customer_id) DO UPDATE for the engine's dialect."""
    from sqlalchemy.dialects import postgresql, sqlite

    name = engine.dialect.name
    statement: Any
    if name == "sqlite":
        statement = sqlite.insert(predictions)
    elif name == "postgresql":
        statement = postgresql.insert(predictions)
    else:  # pragma: no cover - the store supports SQLite and PostgreSQL only
        raise StoreError(f"unsupported database dialect for predictions: {name}")
    updated = {
        column.name: statement.excluded[column.name]
        for column in predictions.columns
        if column.name != "customer_id"
    }
    return statement.on_conflict_do_update(index_elements=["customer_id"], set_=updated)


def write_predictions(
    engine: sa.Engine,
    frame: pl.DataFrame,
    run_id: str,
    as_of: dt.date,
    horizon_days: int,
    *,
    replace_all: bool = False,
) -> int:
    """Store scores, replacing each customer's previous score, in one transaction.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The store (schema already created, e.g. by ``get_engine``).
    frame : polars.DataFrame
        Scores with ``customer_id, predicted_spend_30d_model1, predicted_spend_30d_model2,
        predicted_products_30d`` (extra columns are ignored).
    run_id : str
        Id of the model run that produced the scores.
    as_of : datetime.date
        Scoring date.
    horizon_days : int
        Prediction horizon of the run.
    replace_all : bool, default False
        Also delete the scores of customers absent from ``frame`` (same transaction), so the
        table holds exactly this scoring; ``clv predict`` does this. By default other
        customers' scores are kept (upsert only).

    Returns
    -------
    int
        Number of customers written.

    Raises
    ------
    StoreError
        When a required column is missing, a customer id repeats, a score is null or NaN, or
        the database refuses the write (e.g. a read-only user); nothing is changed then.
    """
    needed = ["customer_id", *_FRAME_TO_TABLE]
    missing = [name for name in needed if name not in frame.columns]
    if missing:
        raise StoreError(f"predictions frame lacks columns: {', '.join(missing)}")
    rows = frame.select(needed)
    if rows["customer_id"].is_duplicated().any():
        raise StoreError("predictions frame has repeated customer ids")
    scores = rows.select(pl.col(list(_FRAME_TO_TABLE)).cast(pl.Float64))
    if (
        rows.null_count().sum_horizontal().item()
        or scores.select(pl.any_horizontal(pl.all().is_nan().any())).item()
    ):
        raise StoreError("predictions frame has missing values (null or NaN scores)")
    created_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    records = (
        rows.rename(_FRAME_TO_TABLE)
        .with_columns(
            pl.col("customer_id").cast(pl.String),
            pl.lit(run_id).alias("model_run_id"),
            pl.lit(as_of, dtype=pl.Date).alias("as_of"),
            pl.lit(int(horizon_days)).alias("horizon_days"),
            pl.lit(created_at, dtype=pl.Datetime("us")).alias("created_at"),
        )
        .to_dicts()
    )
    statement = _upsert_statement(engine)
    try:
        with engine.begin() as connection:
            if replace_all:
                connection.execute(sa.delete(predictions))
            for start in range(0, len(records), _CHUNK):
                connection.execute(statement, records[start : start + _CHUNK])
    except sa.exc.SQLAlchemyError as exc:
        from retail_clv.store.db import describe_database_error

        raise StoreError(
            f"storing the scores in the predictions table failed, the table still holds the "
            f"previous scores: {describe_database_error(exc)}"
        ) from exc
    logger.info("stored %d predictions of run %s (as of %s)", len(records), run_id, as_of)
    return len(records)


def _row_to_dict(row: sa.Row[Any]) -> dict[str, Any]:
    as_of = row.as_of
    created_at = row.created_at
    return {
        "customer_id": row.customer_id,
        "predicted_spend_30d_model1": float(row.predicted_spend_model1),
        "predicted_spend_30d_model2": float(row.predicted_spend_model2),
        "predicted_products_30d": float(row.predicted_products),
        "as_of": as_of.isoformat() if as_of is not None else None,
        "horizon_days": int(row.horizon_days),
        "model_run_id": row.model_run_id,
        "created_at": created_at.isoformat() if created_at is not None else None,
    }


def read_prediction(engine: sa.Engine, customer_id: str) -> dict[str, Any] | None:
    """Return the stored score of one customer, or ``None`` when there is none.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The store.
    customer_id : str
        Normalised customer id.

    Returns
    -------
    dict or None
        ``{"customer_id", "predicted_spend_30d_model1", "predicted_spend_30d_model2",
        "predicted_products_30d", "as_of" (ISO date), "horizon_days", "model_run_id",
        "created_at" (ISO, UTC)}``.
    """
    query = sa.select(predictions).where(predictions.c.customer_id == str(customer_id))
    with engine.connect() as connection:
        row = connection.execute(query).first()
    return None if row is None else _row_to_dict(row)


def read_predictions(engine: sa.Engine, customer_ids: Iterable[str] | None = None) -> pl.DataFrame:
    """Return the stored scores of many customers at once (batch lookup).

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The store.
    customer_ids : iterable of str, optional
        Customers to look up; ``None`` returns every stored score. Unknown ids are simply
        absent from the result.

    Returns
    -------
    polars.DataFrame
        Columns :data:`PREDICTION_COLUMNS` (``as_of`` as Date, ``created_at`` as Datetime),
        sorted by ``customer_id``.
    """
    ids: Sequence[str] | None = None
    if customer_ids is not None:
        ids = sorted({str(c) for c in customer_ids})
    queries = []
    if ids is None:
        queries.append(sa.select(predictions))
    else:
        queries = [
            sa.select(predictions).where(predictions.c.customer_id.in_(ids[i : i + _CHUNK]))
            for i in range(0, len(ids), _CHUNK)
        ]
    rows: list[dict[str, Any]] = []
    with engine.connect() as connection:
        for query in queries:
            rows.extend(dict(row._mapping) for row in connection.execute(query))
    schema: dict[str, Any] = {
        "customer_id": pl.String,
        "model_run_id": pl.String,
        "as_of": pl.Date,
        "horizon_days": pl.Int64,
        "predicted_spend_model1": pl.Float64,
        "predicted_spend_model2": pl.Float64,
        "predicted_products": pl.Float64,
        "created_at": pl.Datetime("us"),
    }
    frame = pl.DataFrame(rows, schema=schema) if rows else pl.DataFrame(schema=schema)
    return (
        frame.rename({table: name for name, table in _FRAME_TO_TABLE.items()})
        .select(PREDICTION_COLUMNS)
        .sort("customer_id")
    )
