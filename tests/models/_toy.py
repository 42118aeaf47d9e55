"""A real, small TrainResult built from simple fitted scikit-learn estimators on a toy frame."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import polars as pl
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import PoissonRegressor, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from retail_clv.models.training import TrainResult

TOY_FEATURES = ["recency_days", "frequency", "monetary"]


def toy_metrics() -> dict:
    block = {"r2": 0.5, "mae": 10.0, "rmse": 20.0, "spearman": 0.6, "gini": 0.7}
    return {
        "cutoff": "2011-11-09",
        "horizon_days": 30,
        "n_customers": 40,
        "models": {
            "model1": {**block, "r2": 0.61, "top10_capture": 0.5},
            "model2": {**block, "r2": 0.67, "top10_capture": 0.6},
            "products": {"mae": 1.5, "spearman": 0.4, "r2": 0.2},
        },
        "baselines": {
            "mean": {**block, "r2": -0.01, "gini": 0.0, "top10_capture": 0.1},
            "run_rate": {**block, "r2": 0.48, "top10_capture": 0.55},
            "bgnbd_gg": {**block, "r2": float("nan"), "top10_capture": 0.5},
        },
        "calibration": {
            "model1": [
                {"decile": d, "mean_predicted": 10.0 * d, "mean_actual": 9.0 * d, "n": 4}
                for d in range(1, 11)
            ],
            "model2": [
                {"decile": d, "mean_predicted": 11.0 * d, "mean_actual": 9.5 * d, "n": 4}
                for d in range(1, 11)
            ],
        },
        "gain_curve": {
            name: [
                {"fraction_customers": x / 4, "fraction_spend": min(1.0, (x / 4) ** p)}
                for x in range(5)
            ]
            for name, p in (("model1", 0.5), ("model2", 0.4), ("perfect", 0.2))
        },
    }


def toy_features(n: int = 40, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "customer_id": [f"{12000 + i}" for i in range(n)],
            "cutoff": [dt.date(2011, 11, 9)] * n,
            "country": ["United Kingdom"] * (n - 1) + ["France"],
            "recency_days": rng.integers(0, 300, n).astype(float),
            "frequency": rng.integers(1, 20, n).astype(float),
            "monetary": rng.gamma(2.0, 200.0, n),
        }
    )


def toy_result(seed: int = 0) -> TrainResult:
    features = toy_features(seed=seed)
    x = features.select(TOY_FEATURES).to_pandas()
    rng = np.random.default_rng(seed)
    spend = np.maximum(0.0, 0.1 * x["monetary"] - 0.2 * x["recency_days"] + rng.normal(0, 5, 40))
    products = rng.poisson(1 + x["frequency"] / 5)
    model1 = make_pipeline(StandardScaler(), Ridge(alpha=1.0)).fit(x, spend)
    model2 = RandomForestRegressor(n_estimators=5, random_state=seed).fit(x, spend)
    products_model = make_pipeline(StandardScaler(), PoissonRegressor()).fit(x, products)
    holdout = pl.DataFrame(
        {
            "customer_id": features["customer_id"],
            "actual_spend": spend.to_numpy(),
            "actual_products": products.astype(float),
            "pred_model1": model1.predict(x),
            "pred_model2": model2.predict(x),
        }
    )
    return TrainResult(
        model1=model1,
        model2=model2,
        products_model=products_model,
        feature_names=list(TOY_FEATURES),
        as_of=dt.date(2011, 11, 9),
        horizon_days=30,
        metrics=toy_metrics(),
        holdout=holdout,
        best_params={"model1": {"final_estimator__alpha": 1.0}, "model2": {"rf__max_depth": 6}},
        cv_scores={"model1": [0.5, 0.55], "model2": [0.6, 0.62]},
        feature_importance=[
            {"feature": "monetary", "importance": 0.6},
            {"feature": "recency_days", "importance": 0.3},
            {"feature": "frequency", "importance": 0.1},
        ],
        config={"budget": "quick", "seed": seed},
        bgnbd_params=None,
    )


def as_pandas(features: pl.DataFrame) -> pd.DataFrame:
    return features.select(TOY_FEATURES).to_pandas()
