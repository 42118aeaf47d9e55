"""Shaping the API's JSON into tables, and the download CSV."""

from __future__ import annotations

import io
import math
from typing import Any

import pandas as pd

from retail_clv.dashboard import frames
from tests.dashboard.conftest import ACTIVE_MODEL, PIPELINE_RESULT


def test_predictions_frame_orders_columns_and_rows() -> None:
    table = frames.predictions_frame(PIPELINE_RESULT["predictions"])
    assert list(table.columns) == frames.PREDICTION_COLUMNS
    assert table["customer_id"].tolist() == ["12347", "13085", "=HYPERLINK(1)"]
    assert table["predicted_spend_30d_model2"].tolist() == [480.0, 110.25, 1.5]


def test_predictions_frame_tolerates_missing_fields_and_nulls() -> None:
    table = frames.predictions_frame(
        [
            {"customer_id": "1", "predicted_spend_30d_model1": None},
            {"customer_id": "2", "predicted_spend_30d_model1": 5},
        ]
    )
    assert list(table.columns) == frames.PREDICTION_COLUMNS
    assert table["customer_id"].tolist() == ["2", "1"]
    assert math.isnan(table["r2_model1"].iloc[0])


def test_empty_predictions_frame_has_the_columns() -> None:
    table = frames.predictions_frame([])
    assert table.empty and list(table.columns) == frames.PREDICTION_COLUMNS


def test_filter_is_literal_and_case_insensitive() -> None:
    table = frames.predictions_frame(
        [{"customer_id": c, "predicted_spend_30d_model1": 1.0} for c in ["A.1", "a21", "B1"]]
    )
    assert frames.filter_predictions(table, " a.1 ")["customer_id"].tolist() == ["A.1"]
    assert frames.filter_predictions(table, "")["customer_id"].tolist() == ["A.1", "a21", "B1"]
    assert frames.filter_predictions(table, "zz").empty


def test_csv_has_exact_columns_and_neutralised_cells() -> None:
    table = frames.predictions_frame(PIPELINE_RESULT["predictions"])
    data = frames.predictions_csv(table)
    lines = data.decode().splitlines()
    assert lines[0] == (
        "customer_id,predicted_spend_30d_model1,predicted_spend_30d_model2,"
        "predicted_products_30d,r2_model1,r2_model2"
    )
    back = pd.read_csv(io.BytesIO(data), dtype={"customer_id": str})
    assert len(back) == 3
    assert back["customer_id"].tolist() == ["12347", "13085", "'=HYPERLINK(1)"]
    assert back["predicted_spend_30d_model1"].tolist() == [530.0, 120.5, 0.0]
    sixty = frames.predictions_csv(table, horizon_days=60).decode().splitlines()
    assert sixty[0] == (
        "customer_id,predicted_spend_60d_model1,predicted_spend_60d_model2,"
        "predicted_products_60d,r2_model1,r2_model2"
    )
    assert sixty[1:] == lines[1:]


def test_neutralise_formulas_covers_every_trigger() -> None:
    values = pd.Series(["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "12-3", "ok"])
    assert frames.neutralise_formulas(values).tolist() == [
        "'=1+1",
        "'+1",
        "'-1",
        "'@SUM(A1)",
        "'\tx",
        "'\rx",
        "12-3",
        "ok",
    ]


def test_reason_frame_sorts_and_drops_zero() -> None:
    table = frames.reason_frame({"B": 2, "A": 2, "C": 0, "D": 9})
    assert table["reason"].tolist() == ["D", "A", "B"]
    assert table["rows"].tolist() == [9, 2, 2]


def test_rejected_sample_frame() -> None:
    sample: list[dict[str, Any]] = [
        {
            "source_file": "/tmp/x",
            "sheet": None,
            "row_number": 3,
            "reasons": "A|B",
            "raw_invoice": "C1",
        },
    ]
    table = frames.rejected_sample_frame(sample)
    assert list(table.columns) == ["row_number", "reasons", "invoice"]
    assert table.iloc[0].tolist() == [3, "A, B", "C1"]
    assert frames.rejected_sample_frame([]).empty


def test_metrics_frame_side_by_side() -> None:
    table = frames.metrics_frame(ACTIVE_MODEL["metrics"])
    assert table["Model"].tolist()[:2] == ["Model 1", "Model 2"]
    assert len(table) == 5
    row = table.set_index("Model").loc["Model 1"]
    assert row["R²"] == 0.412 and row["MAE"] == 95.5 and row["Top-10% capture"] == 0.55
    partial = frames.metrics_frame({"models": {"model1": {"r2": 0.1}}, "baselines": None})
    assert len(partial) == 1 and math.isnan(partial["MAE"].iloc[0])


def test_calibration_and_gain_frames() -> None:
    calibration = frames.calibration_frame(ACTIVE_MODEL["metrics"])
    assert len(calibration) == 2 * 10 * 2
    first = calibration[(calibration["model"] == "Model 2") & (calibration["decile"] == 3)]
    assert dict(zip(first["series"], first["mean_spend"], strict=True)) == {
        "Predicted": 33.0,
        "Actual": 27.0,
    }
    gain = frames.gain_frame(ACTIVE_MODEL["metrics"])
    assert set(gain["model"]) == {"Model 1", "Model 2", "Perfect ranking"}
    assert frames.calibration_frame({}).empty and frames.gain_frame({}).empty


def test_history_importance_features() -> None:
    history = frames.history_frame(
        [
            {"month": "2011-02", "spend": 1.5, "orders": 1},
            {"month": "2011-01", "spend": 3, "orders": 2},
        ]
    )
    assert history["month"].dt.month.tolist() == [1, 2]
    importance = frames.importance_frame(ACTIVE_MODEL["feature_importance"][::-1])
    assert importance["feature"].tolist() == ["monetary_90d", "frequency", "recency_days"]
    features = frames.features_frame({"a": 0.123456, "b": 123456.789, "c": None, "d": 3})
    assert features["value"].tolist() == ["0.1235", "123,456.79", "", "3"]


def test_gaps_frame_lists_each_comparison_and_skips_malformed_entries() -> None:
    gap = {"delta": 0.078, "low": -0.054, "high": 0.15, "share_above_zero": 0.8}
    gini = {"delta": 0.022, "low": 0.016, "high": 0.028, "share_above_zero": 1.0}
    metrics = {
        "vs_baselines": {
            "model2": {"run_rate": {"r2": gap, "gini": gini}, "bgnbd_gg": {"r2": gap}},
            "model1": "oops",
        }
    }
    table = frames.gaps_frame(metrics)
    assert table.to_dict("records") == [
        {
            "Comparison": "Model 2 − run rate",
            "R² difference": 0.078,
            "R² interval": "-0.054 … +0.150",
            "Gini difference": 0.022,
            "Gini interval": "+0.016 … +0.028",
        }
    ]
    assert frames.gaps_frame({}).empty and frames.gaps_frame({"vs_baselines": None}).empty


def test_the_download_is_the_file_clv_predict_writes_for_the_same_scores() -> None:
    import polars as pl

    from retail_clv.models.scoring import to_csv_frame

    scored = pl.DataFrame(
        {
            "customer_id": ["b2", "a1", "=x"],
            "country": ["UK"] * 3,
            "predicted_spend_30d_model1": [663.0870940706693, 0.0, 12.5],
            "predicted_spend_30d_model2": [1.23456, 100.0, 0.1],
            "predicted_products_30d": [3.3333, 0.0, 1.0],
            "r2_model1": [0.5551234] * 3,
            "r2_model2": [0.56] * 3,
        }
    )
    cli = to_csv_frame(scored.sort("customer_id")).write_csv()
    download = frames.predictions_csv(frames.predictions_frame(scored.to_dicts())).decode()
    assert download == cli
    assert download.splitlines()[3] == "b2,663.09,1.23,3.33,0.5551,0.56"


def test_ingest_runs_frame_titles_columns_and_cuts_the_time_to_the_second() -> None:
    runs = [
        {
            "run_id": 3,
            "source_file": "=HYPERLINK(x).csv",
            "sheet": None,
            "file_format": "csv",
            "encoding": "utf-8",
            "started_at": "2026-11-28T09:59:58.987654Z",
            "finished_at": None,
            "status": "running",
            "rows_read": 10,
            "rows_loaded": 7,
            "rows_rejected": 2,
            "rows_duplicate": 1,
        }
    ]
    table = frames.ingest_runs_frame(runs)
    assert list(table.columns) == [
        "Run", "File", "Started (UTC)", "Status", "Rows read", "Loaded", "Rejected", "Duplicates"
    ]  # fmt: skip
    assert table.iloc[0].tolist() == [
        3, "=HYPERLINK(x).csv", "2026-11-28 09:59:58", "running", 10, 7, 2, 1
    ]  # fmt: skip
    assert frames.ingest_runs_frame([]).empty
