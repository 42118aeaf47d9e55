from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
import sqlalchemy as sa

from retail_clv.errors import StoreError
from retail_clv.store.db import get_engine
from retail_clv.store.predictions import (
    PREDICTION_COLUMNS,
    read_prediction,
    read_predictions,
    write_predictions,
)


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def engine(request, tmp_path):
    """The migrated store on SQLite, and on a real PostgreSQL server (dialect-specific upsert)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'p.db'}"
    else:
        url = request.getfixturevalue("postgresql_url")
    engine = get_engine(url)
    assert engine.dialect.name == request.param
    yield engine
    engine.dispose()


def _scores(ids: list[str], base: float) -> pl.DataFrame:
    n = len(ids)
    return pl.DataFrame(
        {
            "customer_id": ids,
            "country": ["United Kingdom"] * n,
            "predicted_spend_30d_model1": [base + i for i in range(n)],
            "predicted_spend_30d_model2": [base + 0.5 + i for i in range(n)],
            "predicted_products_30d": [float(i) for i in range(n)],
            "r2_model1": [0.6] * n,
            "r2_model2": [0.7] * n,
        }
    )


def test_write_then_read_one_customer(engine) -> None:
    written = write_predictions(
        engine, _scores(["1", "2"], 10.0), "20261127T150102Z-aaaaaa", dt.date(2011, 12, 10), 30
    )
    assert written == 2
    got = read_prediction(engine, "2")
    assert got is not None
    created_at = got.pop("created_at")
    assert dt.datetime.fromisoformat(created_at) <= dt.datetime.now(dt.UTC).replace(tzinfo=None)
    assert got == {
        "customer_id": "2",
        "predicted_spend_30d_model1": 11.0,
        "predicted_spend_30d_model2": 11.5,
        "predicted_products_30d": 1.0,
        "as_of": "2011-12-10",
        "horizon_days": 30,
        "model_run_id": "20261127T150102Z-aaaaaa",
    }
    assert read_prediction(engine, "nobody") is None


def test_second_write_upserts_newest_score_and_keeps_others(engine) -> None:
    write_predictions(engine, _scores(["1", "2"], 10.0), "run-a", dt.date(2011, 11, 1), 30)
    write_predictions(engine, _scores(["2", "3"], 100.0), "run-b", dt.date(2011, 12, 1), 30)
    frame = read_predictions(engine)
    assert frame.columns == PREDICTION_COLUMNS
    assert frame["customer_id"].to_list() == ["1", "2", "3"]
    assert frame["model_run_id"].to_list() == ["run-a", "run-b", "run-b"]
    assert frame["predicted_spend_30d_model1"].to_list() == [10.0, 100.0, 101.0]
    assert frame["as_of"].to_list() == [dt.date(2011, 11, 1), dt.date(2011, 12, 1)] + [
        dt.date(2011, 12, 1)
    ]


def test_replace_all_keeps_only_the_new_scores(engine) -> None:
    write_predictions(engine, _scores(["1", "2"], 10.0), "run-a", dt.date(2011, 11, 1), 30)
    write_predictions(
        engine, _scores(["2", "3"], 100.0), "run-b", dt.date(2011, 12, 1), 30, replace_all=True
    )
    frame = read_predictions(engine)
    assert frame["customer_id"].to_list() == ["2", "3"]
    assert frame["model_run_id"].to_list() == ["run-b", "run-b"]


def test_batch_lookup_returns_known_ids_only_across_chunks(engine) -> None:
    ids = [f"c{i:04d}" for i in range(1200)]  # more than one 500-id chunk
    write_predictions(engine, _scores(ids, 1.0), "run-a", dt.date(2011, 12, 10), 30)
    wanted = ids[::3] + ["unknown"]
    frame = read_predictions(engine, wanted)
    assert frame["customer_id"].to_list() == sorted(ids[::3])
    assert (
        frame.filter(pl.col("customer_id") == "c0003")["predicted_spend_30d_model2"].item() == 4.5
    )
    empty = read_predictions(engine, ["nobody"])
    assert empty.height == 0 and empty.columns == PREDICTION_COLUMNS
    assert empty.schema["as_of"] == pl.Date


def test_failed_write_changes_nothing(engine) -> None:
    write_predictions(engine, _scores(["1"], 10.0), "run-a", dt.date(2011, 11, 1), 30)
    bad = _scores(["1", "2"], 50.0).with_columns(
        pl.when(pl.col("customer_id") == "2")
        .then(None)
        .otherwise(pl.col("predicted_products_30d"))
        .alias("predicted_products_30d")
    )
    with pytest.raises(StoreError, match="missing values"):
        write_predictions(engine, bad, "run-b", dt.date(2011, 12, 1), 30)
    assert read_prediction(engine, "1")["model_run_id"] == "run-a"


def test_a_refused_write_is_a_store_error_and_changes_nothing(engine) -> None:
    write_predictions(engine, _scores(["1"], 10.0), "run-a", dt.date(2011, 11, 1), 30)

    def refuse(conn, cursor, statement, *args) -> None:
        if statement.lstrip().upper().startswith(("INSERT", "DELETE")):
            raise sa.exc.OperationalError(statement, {}, Exception("permission denied"))

    sa.event.listen(engine, "before_cursor_execute", refuse)
    try:
        with pytest.raises(StoreError, match="still holds the previous scores") as caught:
            write_predictions(
                engine,
                _scores(["1", "2"], 50.0),
                "run-b",
                dt.date(2011, 12, 1),
                30,
                replace_all=True,
            )
        assert "permission denied" in str(caught.value)
    finally:
        sa.event.remove(engine, "before_cursor_execute", refuse)
    assert read_prediction(engine, "1")["model_run_id"] == "run-a"


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (
            _scores(["1"], 1.0).with_columns(predicted_spend_30d_model2=float("nan")),
            "missing values",
        ),
        (_scores(["1"], 1.0).drop("predicted_products_30d"), "lacks columns: predicted_products"),
        (_scores(["1", "1"], 1.0), "repeated customer ids"),
    ],
)
def test_invalid_frames_are_refused(engine, frame, message) -> None:
    with pytest.raises(StoreError, match=message):
        write_predictions(engine, frame, "run-a", dt.date(2011, 11, 1), 30)
    assert read_predictions(engine).height == 0


def test_write_is_one_transaction(engine, monkeypatch) -> None:
    """A failure on the second chunk rolls back the first."""
    import retail_clv.store.predictions as module

    monkeypatch.setattr(module, "_CHUNK", 2)
    calls = {"n": 0}

    def fail_second_statement(*args, **kwargs) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("connection lost")

    sa.event.listen(engine, "before_execute", fail_second_statement)
    try:
        with pytest.raises(RuntimeError, match="connection lost"):
            write_predictions(
                engine, _scores(["1", "2", "3"], 1.0), "run-a", dt.date(2011, 1, 1), 30
            )
    finally:
        sa.event.remove(engine, "before_execute", fail_second_statement)
    assert calls["n"] == 2
    assert read_predictions(engine).height == 0


def test_the_api_s_training_scores_replace_the_whole_table(engine: sa.Engine) -> None:
    from retail_clv.api import services

    write_predictions(engine, _scores(["1", "gone"], 10.0), "run-a", dt.date(2011, 11, 1), 30)
    services.write_predictions(engine, _scores(["1"], 20.0), "run-b", dt.date(2011, 12, 1), 30)
    table = read_predictions(engine)
    assert table["customer_id"].to_list() == ["1"] and table["model_run_id"].to_list() == ["run-b"]
