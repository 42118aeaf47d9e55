"""Chart builders: the Vega-Lite specs encode the expected fields and carry the right data."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from retail_clv.dashboard import charts, frames
from tests.dashboard.conftest import ACTIVE_MODEL, PIPELINE_RESULT


def spec(chart: Any) -> dict[str, Any]:
    return chart.to_dict()


def datasets(chart: Any) -> list[list[dict[str, Any]]]:
    return list(spec(chart).get("datasets", {}).values())


def predictions(n: int = 0) -> pd.DataFrame:
    if not n:
        return frames.predictions_frame(PIPELINE_RESULT["predictions"])
    rng = np.random.default_rng(0)
    return frames.predictions_frame(
        [
            {
                "customer_id": str(i),
                "country": ["UK", "FR", "DE"][i % 3],
                "predicted_spend_30d_model1": float(v),
                "predicted_spend_30d_model2": float(v) * 0.9,
            }
            for i, v in enumerate(rng.gamma(0.5, 100.0, n))
        ]
    )


def test_rejection_chart_encodes_reason_and_rows() -> None:
    chart = charts.rejection_reasons_chart(frames.reason_frame({"A": 3, "B": 7}))
    s = spec(chart)
    assert s["title"] == "Why rows were rejected"
    bars = s["layer"][0]
    assert bars["mark"]["type"] == "bar"
    assert bars["encoding"]["y"]["field"] == "reason"
    assert bars["encoding"]["x"]["field"] == "rows"
    (data,) = datasets(chart)
    assert data == [{"reason": "B", "rows": 7}, {"reason": "A", "rows": 3}]


def test_histogram_counts_every_customer_and_folds_the_tail() -> None:
    table = predictions(1000)
    hist = charts.spend_histogram_frame(table, "predicted_spend_30d_model1", bins=20)
    assert len(hist) == 20
    assert hist["customers"].sum() == 1000
    assert hist["bin_end"].iloc[-1] == np.quantile(table["predicted_spend_30d_model1"], 0.99)
    constant = pd.DataFrame({"x": [5.0, 5.0]})
    assert charts.spend_histogram_frame(constant, "x")["customers"].sum() == 2
    assert charts.spend_histogram_frame(pd.DataFrame({"x": []}), "x").empty


def test_spend_distribution_chart_is_prebinned() -> None:
    chart = charts.spend_distribution_chart(predictions(500), "predicted_spend_30d_model2", "€")
    s = spec(chart)
    assert s["encoding"]["x"]["bin"] == "binned"
    assert s["encoding"]["x"]["title"] == "Predicted 30-day spend (€)"
    (data,) = datasets(chart)
    assert sum(d["customers"] for d in data) == 500


def test_top_customers_chart_keeps_the_n_largest() -> None:
    table = predictions(100)
    chart = charts.top_customers_chart(table, "predicted_spend_30d_model1", n=20)
    (data,) = datasets(chart)
    assert len(data) == 20
    expected = table.nlargest(20, "predicted_spend_30d_model1")["customer_id"].tolist()
    assert [d["customer_id"] for d in data] == expected
    assert spec(chart)["encoding"]["y"]["sort"] == "-x"
    assert spec(chart)["title"] == "Top 20 customers by predicted spend"
    one = charts.top_customers_chart(table, "predicted_spend_30d_model1", n=1)
    assert spec(one)["title"] == "Top 1 customer by predicted spend"


def test_scatter_samples_large_inputs_and_says_so() -> None:
    small = charts.model_scatter_chart(predictions())
    assert "random sample" not in json.dumps(spec(small))
    points = [d for d in datasets(small) if "customer_id" in d[0]][0]
    assert len(points) == 3
    big = charts.model_scatter_chart(predictions(charts.MAX_POINTS + 500))
    s = spec(big)
    assert s["title"]["text"] == "Model 1 vs Model 2"
    assert s["title"]["subtitle"].startswith(f"{charts.MAX_POINTS:,} of 4,500 customers")
    points = [d for d in datasets(big) if "customer_id" in d[0]][0]
    assert len(points) == charts.MAX_POINTS
    assert len({d["customer_id"] for d in points}) == charts.MAX_POINTS
    table = predictions(charts.MAX_POINTS + 500)
    shown = {d["customer_id"] for d in points}
    for column in charts.MODEL_COLUMNS.values():
        assert set(table.nlargest(charts.KEEP_TOP, column)["customer_id"]) <= shown
    layer = s["layer"][1]["encoding"]
    assert layer["x"]["field"] == "predicted_spend_30d_model1"
    assert layer["y"]["field"] == "predicted_spend_30d_model2"


def test_country_chart_sums_per_country() -> None:
    table = predictions(30)
    chart = charts.country_spend_chart(table, "predicted_spend_30d_model1")
    (data,) = datasets(chart)
    totals = table.groupby("country")["predicted_spend_30d_model1"].sum()
    assert {d["country"]: round(d["spend"], 6) for d in data} == {
        k: round(v, 6) for k, v in totals.items()
    }
    assert all(d["customers"] == 10 for d in data)


def test_model_charts() -> None:
    metrics = ACTIVE_MODEL["metrics"]
    calibration = spec(charts.calibration_chart(frames.calibration_frame(metrics)))
    assert calibration["facet"]["column"]["field"] == "model"
    assert calibration["spec"]["encoding"]["color"]["field"] == "series"
    gain = spec(charts.gain_curve_chart(frames.gain_frame(metrics)))
    assert gain["layer"][1]["encoding"]["y"]["field"] == "fraction_spend"
    importance = charts.feature_importance_chart(
        frames.importance_frame(ACTIVE_MODEL["feature_importance"]), n=2
    )
    (data,) = datasets(importance)
    assert [d["feature"] for d in data] == ["monetary_90d", "frequency"]


def test_history_chart() -> None:
    history = frames.history_frame([{"month": "2011-01", "spend": 3.0, "orders": 1}])
    s = spec(charts.history_chart(history, "£"))
    assert s["encoding"]["y"]["title"] == "Spend (£)"
    assert s["encoding"]["x"]["field"] == "month"
