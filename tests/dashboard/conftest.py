"""Fixtures of the dashboard tests: a stubbed API (respx) and sample API documents."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import respx

import retail_clv.dashboard
from retail_clv.config import get_settings

API = "http://api.test"
APP_PATH = Path(retail_clv.dashboard.__file__).resolve().parent / "app.py"

PIPELINE_RESULT: dict[str, Any] = {
    "report": {
        "source_file": "raw.csv",
        "sheet": None,
        "file_format": "csv",
        "encoding": "utf-8",
        "rows_read": 1234,
        "rows_loaded": 1000,
        "rows_rejected": 200,
        "rows_duplicate": 34,
        "reason_counts": {
            "MISSING_CUSTOMER_ID": 150,
            "NON_POSITIVE_QUANTITY": 40,
            "CANCELLATION": 40,
            "ZERO_PRICE": 10,
            "BAD_DATE": 0,
        },
        "customers": 3,
        "products": 57,
        "date_min": "2010-12-01",
        "date_max": "2011-12-09",
        "uncategorised_products": 0,
    },
    "rejected_sample": [
        {
            "row_number": 7,
            "reasons": "MISSING_CUSTOMER_ID",
            "raw_invoice": "536365",
            "raw_customer_id": "",
        },
        {
            "row_number": 9,
            "reasons": "CANCELLATION|NON_POSITIVE_QUANTITY",
            "raw_invoice": "C536379",
            "raw_customer_id": "14527",
        },
    ],
    "as_of": "2011-12-10",
    "model_run_id": "20111210-quick",
    "r2_model1": 0.412,
    "r2_model2": 0.398,
    "predictions": [
        {
            "customer_id": "13085",
            "country": "United Kingdom",
            "predicted_spend_30d_model1": 120.5,
            "predicted_spend_30d_model2": 110.25,
            "predicted_products_30d": 7.2,
            "r2_model1": 0.412,
            "r2_model2": 0.398,
        },
        {
            "customer_id": "12347",
            "country": "Iceland",
            "predicted_spend_30d_model1": 530.0,
            "predicted_spend_30d_model2": 480.0,
            "predicted_products_30d": 20.0,
            "r2_model1": 0.412,
            "r2_model2": 0.398,
        },
        {
            "customer_id": "=HYPERLINK(1)",
            "country": "France",
            "predicted_spend_30d_model1": 0.0,
            "predicted_spend_30d_model2": 1.5,
            "predicted_products_30d": 0.0,
            "r2_model1": 0.412,
            "r2_model2": 0.398,
        },
    ],
}


def _model_metrics(r2: float, mae: float) -> dict[str, float]:
    return {
        "r2": r2,
        "mae": mae,
        "rmse": mae * 3,
        "spearman": 0.6,
        "gini": 0.7,
        "top10_capture": 0.55,
    }


ACTIVE_MODEL: dict[str, Any] = {
    "run_id": "20111210-quick",
    "trained_at": "2026-11-27T14:00:00+00:00",
    "as_of": "2011-11-09",
    "horizon_days": 30,
    "feature_names": ["recency_days", "frequency", "monetary_90d"],
    "metrics": {
        "cutoff": "2011-11-09",
        "horizon_days": 30,
        "n_customers": 5714,
        "models": {
            "model1": _model_metrics(0.412, 95.5),
            "model2": _model_metrics(0.398, 97.0),
            "products": {"mae": 2.5, "spearman": 0.5, "r2": 0.3},
        },
        "baselines": {
            "mean": _model_metrics(0.0, 150.0),
            "run_rate": _model_metrics(0.2, 120.0),
            "bgnbd_gg": _model_metrics(0.25, 110.0),
        },
        "calibration": {
            "model1": [
                {"decile": d, "mean_predicted": 10.0 * d, "mean_actual": 9.0 * d, "n": 571}
                for d in range(1, 11)
            ],
            "model2": [
                {"decile": d, "mean_predicted": 11.0 * d, "mean_actual": 9.0 * d, "n": 571}
                for d in range(1, 11)
            ],
        },
        "gain_curve": {
            key: [
                {"fraction_customers": x / 10, "fraction_spend": min(1.0, (x / 10) ** p)}
                for x in range(11)
            ]
            for key, p in (("model1", 0.4), ("model2", 0.45), ("perfect", 0.2))
        },
    },
    "feature_importance": [
        {"feature": "monetary_90d", "importance": 0.5},
        {"feature": "frequency", "importance": 0.3},
        {"feature": "recency_days", "importance": 0.2},
    ],
}

CUSTOMER: dict[str, Any] = {
    "customer_id": "13085",
    "country": "United Kingdom",
    "first_seen": "2009-12-01",
    "last_purchase": "2011-11-30",
    "total_spend": 12345.678,
    "orders": 42,
    "history": [
        {"month": "2011-01", "spend": 300.0, "orders": 2},
        {"month": "2011-02", "spend": 150.5, "orders": 1},
    ],
}

PREDICTION: dict[str, Any] = {
    "customer_id": "13085",
    "predicted_spend_30d_model1": 120.5,
    "predicted_spend_30d_model2": 110.25,
    "predicted_products_30d": 7.2,
    "as_of": "2011-12-10",
    "horizon_days": 30,
    "model_run_id": "20111210-quick",
}

FEATURES: dict[str, Any] = {
    "customer_id": "13085",
    "as_of": "2011-12-10",
    "features": {"recency_days": 10.0, "frequency": 42.0, "monetary_90d": 1500.25},
}


@pytest.fixture
def sample_pipeline() -> dict[str, Any]:
    """A ``POST /pipeline`` answer (deep copy, free to modify)."""
    return copy.deepcopy(PIPELINE_RESULT)


@pytest.fixture
def sample_model() -> dict[str, Any]:
    """A ``GET /models/active`` answer (deep copy)."""
    return copy.deepcopy(ACTIVE_MODEL)


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[respx.MockRouter]:
    """Point the dashboard at a fake API and stub ``/ready``; tests add their routes."""
    monkeypatch.setenv("CLV_API_URL", API)
    get_settings.cache_clear()
    with respx.mock(base_url=API, assert_all_called=False) as router:
        router.get("/ready").respond(
            json={"status": "ready", "database": "ok", "model_run_id": "20111210-quick"}
        )
        yield router
