"""Fixtures of the API tests: one small store and one trained model per session, copied per test.

The session store is a synthetic retailer (300 customers, 13 months) ingested with the real
ingestion code; the model is trained once with the real training code and the ``quick`` budget,
saved with the registry, and every customer is scored into the ``predictions`` table. Tests get a
*copy* of the store file so that writes never leak between tests.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from threadpoolctl import threadpool_limits

from retail_clv.api import create_app
from retail_clv.config import Settings

SYNTH_START = dt.date(2010, 1, 1)


@dataclass(frozen=True)
class ApiData:
    raw_csv: Path
    db_path: Path
    models_dir: Path
    run_id: str
    scored_ids: list[str]
    as_of: dt.date
    rows_read: int
    rows_rejected: int
    reason_counts: dict[str, int]


def _build_store(root: Path) -> tuple[Path, Path, Any]:
    from retail_clv.ingest.pipeline import ingest_files
    from retail_clv.store.db import get_engine
    from retail_clv.synth import generate

    raw = root / "synth.csv"
    generate(customers=300, start=SYNTH_START, months=13, seed=7, out=raw)
    db = root / "store.db"
    engine = get_engine(f"sqlite:///{db}")
    [report] = ingest_files([raw], engine, progress=False)
    return raw, db, (engine, report)


@pytest.fixture(scope="session")
def api_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, Any]]:
    """A synthetic raw CSV and the store built from it (no model)."""
    root = tmp_path_factory.mktemp("api-store")
    raw, db, (engine, report) = _build_store(root)
    engine.dispose()
    return raw, db, report.to_dict()


@pytest.fixture(scope="session")
def api_data(
    tmp_path_factory: pytest.TempPathFactory, api_store: tuple[Path, Path, dict[str, Any]]
) -> ApiData:
    """The store plus a model trained on it (quick budget) and its stored predictions."""
    from retail_clv.models import training
    from retail_clv.models.registry import data_fingerprint, load_run, save_run
    from retail_clv.models.scoring import default_as_of, default_training_as_of, score
    from retail_clv.store.db import get_engine
    from retail_clv.store.predictions import write_predictions
    from retail_clv.store.queries import read_cancellations, read_purchases

    raw, store_db, report = api_store
    root = tmp_path_factory.mktemp("api-model")
    db = root / "store.db"
    shutil.copy(store_db, db)
    engine = get_engine(f"sqlite:///{db}")
    purchases, cancellations = read_purchases(engine), read_cancellations(engine)
    # One native thread: on a shared 2-core machine OpenMP threads spinning against each other
    # turned this 2-second fit into minutes (measured).
    with threadpool_limits(limits=1):
        result = training.train(
            purchases,
            cancellations,
            as_of=default_training_as_of(purchases, 30),
            horizon_days=30,
            budget="quick",
        )
    models_dir = root / "models"
    run_dir = save_run(result, models_dir, data_fingerprint(purchases))
    bundle = load_run(models_dir)
    as_of = default_as_of(purchases)
    scored = score(bundle, purchases, cancellations, as_of=as_of)
    write_predictions(engine, scored, bundle.run_id, as_of, 30)
    engine.dispose()
    return ApiData(
        raw_csv=raw,
        db_path=db,
        models_dir=models_dir,
        run_id=run_dir.name,
        scored_ids=scored.get_column("customer_id").to_list(),
        as_of=as_of,
        rows_read=report["rows_read"],
        rows_rejected=report["rows_rejected"],
        reason_counts=report["reason_counts"],
    )


ClientFactory = Callable[..., TestClient]


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[ClientFactory]:
    """Build started TestClients on copies of a store / models folder, with any settings."""
    started: list[TestClient] = []

    def factory(
        db: Path | None = None, models_dir: Path | None = None, **settings: Any
    ) -> TestClient:
        target_db = tmp_path / f"store-{len(started)}.db"
        if db is not None:
            shutil.copy(db, target_db)
        models = tmp_path / f"models-{len(started)}"
        if models_dir is not None:
            shutil.copytree(models_dir, models, symlinks=True)
        config = Settings(database_url=f"sqlite:///{target_db}", models_dir=models, **settings)
        client = TestClient(create_app(config, warm_up=False))
        client.__enter__()
        started.append(client)
        return client

    yield factory
    for client in started:
        client.__exit__(None, None, None)


@pytest.fixture
def empty_client(make_client: ClientFactory) -> TestClient:
    """An API on an empty store with no model."""
    return make_client()


@pytest.fixture
def store_client(make_client: ClientFactory, api_store: tuple[Path, Path, Any]) -> TestClient:
    """An API on the synthetic store, without any model."""
    return make_client(db=api_store[1])


@pytest.fixture
def client(make_client: ClientFactory, api_data: ApiData) -> TestClient:
    """An API on the synthetic store with the trained model and stored predictions."""
    return make_client(db=api_data.db_path, models_dir=api_data.models_dir)


def table_counts(db: Path) -> dict[str, int]:
    """Row count of every data table of a store file."""
    import sqlite3

    with sqlite3.connect(db) as conn:
        return {
            name: conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0]  # noqa: S608
            for name in (
                "transactions",
                "cancellations",
                "rejected_data",
                "ingest_runs",
                "customers",
                "products",
                "predictions",
            )
        }


def db_path_of(client: TestClient) -> Path:
    """The SQLite file behind a test client."""
    url = client.app.state.clv.settings.database_url  # type: ignore[attr-defined]
    return Path(url.removeprefix("sqlite:///"))
