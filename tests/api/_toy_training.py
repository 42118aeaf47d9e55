"""TEMPORARY stand-in for ``retail_clv.models.training`` until the real module lands.

Installed into ``sys.modules`` by the API conftest only when the real module is missing, so the
model-dependent API tests can run; it fits simple scikit-learn models on the real features.
"""

from __future__ import annotations

import datetime as dt
import types
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import PoissonRegressor, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from retail_clv.features import FEATURE_COLUMNS, customer_features, targets


@dataclass
class TrainResult:
    model1: Any
    model2: Any
    products_model: Any
    feature_names: list
    as_of: dt.date
    horizon_days: int
    metrics: dict
    holdout: Any
    best_params: dict
    cv_scores: dict
    feature_importance: list
    config: dict
    bgnbd_params: Any = None


def predict_frame(model1, model2, products_model, features, feature_names) -> pl.DataFrame:
    x = features.select(feature_names).fill_null(0.0).fill_nan(0.0).to_pandas()
    return pl.DataFrame(
        {
            "customer_id": features["customer_id"],
            "predicted_spend_30d_model1": np.maximum(0.0, model1.predict(x)),
            "predicted_spend_30d_model2": np.maximum(0.0, model2.predict(x)),
            "predicted_products_30d": np.maximum(0.0, products_model.predict(x)),
        }
    )


def train(purchases, cancellations, as_of, horizon_days=30, budget="default", progress=None):
    train_cut = as_of - dt.timedelta(days=horizon_days)
    feats = customer_features(purchases, cancellations, [train_cut])
    y = (
        feats.select("customer_id", "cutoff")
        .join(
            targets(purchases, [train_cut], horizon_days), on=["customer_id", "cutoff"], how="left"
        )
        .fill_null(0)
    )
    x = feats.select(FEATURE_COLUMNS).fill_null(0.0).fill_nan(0.0).to_pandas()
    model1 = make_pipeline(StandardScaler(), Ridge()).fit(x, y["spend"].to_numpy())
    model2 = RandomForestRegressor(n_estimators=10, random_state=0).fit(x, y["spend"].to_numpy())
    products = make_pipeline(StandardScaler(), PoissonRegressor(max_iter=300)).fit(
        x, y["n_products"].to_numpy()
    )
    if progress:
        progress(1.0, "done")
    block = {"r2": 0.3, "mae": 1.0, "rmse": 2.0, "spearman": 0.5, "gini": 0.4, "top10_capture": 0.3}
    metrics = {
        "cutoff": as_of.isoformat(),
        "horizon_days": horizon_days,
        "n_customers": feats.height,
        "models": {"model1": block, "model2": {**block, "r2": 0.35}, "products": {"r2": 0.1}},
        "baselines": {"mean": block},
    }
    return TrainResult(
        model1,
        model2,
        products,
        list(FEATURE_COLUMNS),
        as_of,
        horizon_days,
        metrics,
        None,
        {},
        {},
        [],
        {"budget": budget},
    )


def install() -> None:
    import sys

    module = types.ModuleType("retail_clv.models.training")
    module.train = train  # type: ignore[attr-defined]
    module.predict_frame = predict_frame  # type: ignore[attr-defined]
    module.TrainResult = TrainResult  # type: ignore[attr-defined]
    sys.modules["retail_clv.models.training"] = module
