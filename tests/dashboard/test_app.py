"""The dashboard's pages and error states, with the API stubbed at the HTTP boundary (respx)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import httpx
import pandas as pd
import polars as pl
import pytest
import respx
from streamlit import dataframe_util
from streamlit.testing.v1 import AppTest

from tests.dashboard.conftest import APP_PATH, CUSTOMER, FEATURES, PREDICTION

NO_MODEL = {"detail": "No model trained yet: run clv train or POST /train"}


def new_app() -> AppTest:
    return AppTest.from_file(APP_PATH, default_timeout=30)


def texts(elements: Any) -> list[str]:
    return [str(e.value) for e in elements]


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def vega_specs(at: AppTest) -> list[dict[str, Any]]:
    return [json.loads(e.proto.spec) for e in at.get("vega_lite_chart")]


def chart_data(at: AppTest, title: str) -> list[pd.DataFrame]:
    """The data sets embedded in the chart whose spec mentions ``title``."""
    for element in at.get("vega_lite_chart"):
        if title in element.proto.spec:
            return [
                dataframe_util.convert_arrow_bytes_to_pandas_df(ds.data.data)
                for ds in element.proto.datasets
            ]
    raise AssertionError(f"no chart titled {title!r}")


def upload(
    at: AppTest, name: str = "raw.csv", content: bytes = b"Invoice,StockCode\n1,2\n"
) -> None:
    at.file_uploader(key="pipeline_file").set_value((name, content, "text/csv"))
    at.run()


# -- Full Pipeline ----------------------------------------------------------------------------


def test_pipeline_page_invites_an_upload_and_shows_api_status(api: respx.MockRouter) -> None:
    at = new_app().run()
    assert not at.exception
    assert at.title[0].value == "Full Pipeline"
    assert any("Drop a file" in t for t in texts(at.info))
    assert any("API connected" in t and "20111210-quick" in t for t in texts(at.sidebar.success))


def test_upload_shows_report_predictions_and_charts(
    api: respx.MockRouter, sample_pipeline: dict[str, Any]
) -> None:
    route = api.post("/pipeline").respond(json=sample_pipeline)
    at = new_app().run()
    upload(at, content=b"raw bytes")
    assert not at.exception
    assert route.call_count == 1
    request = route.calls.last.request
    assert request.url.params["store"] == "false"
    body = request.content
    assert b'filename="raw.csv"' in body and b"raw bytes" in body

    shown = metrics(at)
    assert shown["Rows read"] == "1,234"
    assert shown["Rows loaded"] == "1,000"
    assert shown["Rows rejected"] == "200"
    assert shown["Duplicates"] == "34"
    assert shown["Customers"] == "3"

    # rejection chart: one bar per non-zero reason, with the API's counts
    reason_chart = next(s for s in vega_specs(at) if "Why rows were rejected" in json.dumps(s))
    assert "reason" in json.dumps(reason_chart["layer"][0]["encoding"])

    tables = at.dataframe
    sample = tables[0].value
    assert list(sample["reasons"]) == ["MISSING_CUSTOMER_ID", "CANCELLATION, NON_POSITIVE_QUANTITY"]
    predictions = tables[1].value
    assert list(predictions["customer_id"]) == ["12347", "13085", "=HYPERLINK(1)"]
    assert predictions["predicted_spend_30d_model1"].tolist() == [530.0, 120.5, 0.0]
    assert len(at.get("download_button")) == 1
    titles = json.dumps(vega_specs(at))
    for title in (
        "Distribution of predicted",
        "Top 20 customers",
        "Model 1 vs Model 2",
        "Predicted spend by country",
    ):
        assert title in titles

    # searching filters the table without uploading again
    at.text_input(key="pipeline_search").set_value("130").run()
    assert list(at.dataframe[1].value["customer_id"]) == ["13085"]
    assert route.call_count == 1


def test_predictions_heading_names_the_model_runs_horizon(
    api: respx.MockRouter, sample_pipeline: dict[str, Any]
) -> None:
    api.post("/pipeline").respond(json={**sample_pipeline, "horizon_days": 7})
    at = new_app().run()
    upload(at)
    assert not at.exception
    assert "Predictions for the next 7 days" in texts(at.subheader)


def test_report_warnings_and_an_unusable_file_are_shown(
    api: respx.MockRouter, sample_pipeline: dict[str, Any]
) -> None:
    sample_pipeline["report"]["warnings"] = [
        "slash dates such as '01/03/2010' could be read day-first or month-first"
    ]
    sample_pipeline["report"]["valid_lines"] = 0
    sample_pipeline["report"]["bad_date_examples"] = ["2010-13-45"]
    api.post("/pipeline").respond(json=sample_pipeline)
    at = new_app().run()
    upload(at)
    assert not at.exception
    assert any("could be read day-first or month-first" in t for t in texts(at.warning))
    assert any("No valid purchase line" in t and "`2010-13-45`" in t for t in texts(at.error))


def test_the_scale_warning_names_the_pages_switch_and_button(
    api: respx.MockRouter, sample_pipeline: dict[str, Any]
) -> None:
    from retail_clv.models.scoring import scale_note

    note = scale_note(
        {"spend_365d_median": 300.0, "spend_365d_p90": 900.0},
        pl.DataFrame({"spend_365d": [30_000.0, 60_000.0, 90_000.0]}),
    )
    assert note is not None
    sample_pipeline["report"]["warnings"] = [note]
    api.post("/pipeline").respond(json=sample_pipeline)
    at = new_app().run()
    upload(at)
    [warning] = [t for t in texts(at.warning) if "another scale" in t]
    assert "turn on *Save rows to the store*, then *Retrain* on the Models page" in warning
    assert "POST /train" not in warning and "clv train" not in warning


def test_a_clean_report_shows_no_warning(
    api: respx.MockRouter, sample_pipeline: dict[str, Any]
) -> None:
    api.post("/pipeline").respond(json=sample_pipeline)
    at = new_app().run()
    upload(at)
    assert not at.exception and not texts(at.warning) and not texts(at.error)


def test_rejection_chart_data_equals_report(
    api: respx.MockRouter, sample_pipeline: dict[str, Any]
) -> None:
    api.post("/pipeline").respond(json=sample_pipeline)
    at = new_app().run()
    upload(at)
    (data,) = chart_data(at, "Why rows were rejected")
    assert dict(zip(data["reason"], data["rows"], strict=True)) == {
        "MISSING_CUSTOMER_ID": 150,
        "NON_POSITIVE_QUANTITY": 40,
        "CANCELLATION": 40,
        "ZERO_PRICE": 10,
    }


@pytest.mark.parametrize(
    ("status", "detail", "kind", "expected"),
    [
        (400, "raw.csv has no Invoice column", "error", "Check the file"),
        (
            422,
            [{"loc": ["body", "file"], "msg": "Field required"}],
            "error",
            "file: Field required",
        ),
        (413, "File larger than 200 MB", "error", "CLV_MAX_UPLOAD_MB"),
        (404, NO_MODEL["detail"], "warning", "clv train"),
        (503, NO_MODEL["detail"], "warning", "Retrain"),
        (503, "Store unavailable", "error", "not ready"),
        (500, "boom", "error", "The API failed (500): boom"),
    ],
)
def test_upload_errors_are_friendly(
    api: respx.MockRouter, status: int, detail: Any, kind: str, expected: str
) -> None:
    api.post("/pipeline").respond(status, json={"detail": detail})
    at = new_app().run()
    upload(at)
    assert not at.exception
    messages = texts(at.error if kind == "error" else at.warning)
    assert any(expected in m for m in messages), messages
    assert not at.metric and not at.dataframe


def test_backend_down_says_how_to_start_it(api: respx.MockRouter) -> None:
    api.get("/ready").mock(side_effect=httpx.ConnectError("refused"))
    api.post("/pipeline").mock(side_effect=httpx.ConnectError("refused"))
    at = new_app().run()
    assert any("clv serve" in t for t in texts(at.sidebar.error))
    upload(at)
    assert not at.exception
    main_errors = texts(at.main.error)
    assert any("Cannot reach the retail-clv API at http://api.test" in m for m in main_errors)
    assert any("`clv serve`" in m for m in main_errors)


def test_backend_timeout_is_reported(api: respx.MockRouter) -> None:
    api.post("/pipeline").mock(side_effect=httpx.ReadTimeout("slow"))
    at = new_app().run()
    upload(at)
    assert not at.exception
    assert any("did not answer in time" in m for m in texts(at.main.error))


def test_an_api_that_never_takes_the_connection_is_unreachable_not_slow(
    api: respx.MockRouter,
) -> None:
    api.get("/ready").mock(side_effect=httpx.ConnectTimeout("no answer to SYN"))
    at = new_app().run()
    assert any("clv serve" in t for t in texts(at.sidebar.error))
    assert not any(t.startswith("API slow") for t in texts(at.sidebar.warning))


def test_a_slow_api_is_not_called_unreachable_in_the_sidebar(api: respx.MockRouter) -> None:
    api.get("/ready").mock(side_effect=httpx.ReadTimeout("slow"))
    at = new_app().run()
    assert not at.exception
    assert not any("clv serve" in t for t in texts(at.sidebar.error))
    assert any(
        t.startswith("API slow: it did not answer in time") for t in texts(at.sidebar.warning)
    )


def test_empty_predictions_are_explained(
    api: respx.MockRouter, sample_pipeline: dict[str, Any]
) -> None:
    sample_pipeline["predictions"] = []
    api.post("/pipeline").respond(json=sample_pipeline)
    at = new_app().run()
    upload(at)
    assert any("No customer could be scored" in t for t in texts(at.info))
    assert not at.get("download_button")


# -- Customers --------------------------------------------------------------------------------


def customers_page(at: AppTest, customer_id: str) -> AppTest:
    at.switch_page("views/customers.py").run()
    at.text_input(key="customer_query").set_value(customer_id).run()
    return at


def test_customer_lookup_shows_history_predictions_features(api: respx.MockRouter) -> None:
    api.get("/customers/13085").respond(json=CUSTOMER)
    api.get("/customers/13085/prediction").respond(json=PREDICTION)
    api.get("/customers/13085/features").respond(json=FEATURES)
    at = customers_page(new_app().run(), " 13085 ")
    assert not at.exception
    shown = metrics(at)
    assert shown["Total spend"] == "£12,345.68"
    assert shown["Orders"] == "42"
    assert shown["Last purchase"] == "2011-11-30"
    assert shown["Model 1 · predicted spend"] == "£120.50"
    assert shown["Model 2 · predicted spend"] == "£110.25"
    assert shown["Predicted distinct products"] == "7.2"
    assert "Spend per month" in json.dumps(vega_specs(at))
    features = at.dataframe[0].value
    assert features["feature"].tolist() == ["recency_days", "frequency", "monetary_90d"]
    assert features["value"].tolist() == ["10", "42", "1,500"]


def test_a_stored_score_of_an_earlier_run_shows_the_apis_note(api: respx.MockRouter) -> None:
    note = (
        "this score was written by model run 20111210-quick; the active model is run "
        "20111220-quick: run clv predict (or POST /train) to rescore"
    )
    api.get("/customers/13085").respond(json=CUSTOMER)
    api.get("/customers/13085/prediction").respond(json={**PREDICTION, "warnings": [note]})
    api.get("/customers/13085/features").respond(json=FEATURES)
    at = customers_page(new_app().run(), "13085")
    assert not at.exception
    assert metrics(at)["Model 1 · predicted spend"] == "£120.50"
    assert note in texts(at.warning)


def test_a_current_stored_score_shows_no_warning(api: respx.MockRouter) -> None:
    api.get("/customers/13085").respond(json=CUSTOMER)
    api.get("/customers/13085/prediction").respond(json={**PREDICTION, "warnings": []})
    api.get("/customers/13085/features").respond(json=FEATURES)
    at = customers_page(new_app().run(), "13085")
    assert not at.exception
    assert not at.warning


def test_currency_can_be_changed(api: respx.MockRouter) -> None:
    api.get("/customers/13085").respond(json=CUSTOMER)
    api.get("/customers/13085/prediction").respond(json=PREDICTION)
    api.get("/customers/13085/features").respond(json=FEATURES)
    at = new_app().run()
    at.sidebar.selectbox(key="currency").set_value("€").run()
    at = customers_page(at, "13085")
    assert metrics(at)["Total spend"] == "€12,345.68"


def test_unknown_customer_is_a_warning(api: respx.MockRouter) -> None:
    api.get("/customers/999").respond(404, json={"detail": "Customer 999 not found"})
    at = customers_page(new_app().run(), "999")
    assert not at.exception
    warnings = texts(at.warning)
    assert any("Customer 999 not found" in w and "clv ingest" in w for w in warnings)
    assert not at.metric


def test_customer_without_prediction_still_shows_history(api: respx.MockRouter) -> None:
    api.get("/customers/13085").respond(json=CUSTOMER)
    api.get("/customers/13085/prediction").respond(404, json=NO_MODEL)
    api.get("/customers/13085/features").respond(json=FEATURES)
    at = customers_page(new_app().run(), "13085")
    assert metrics(at)["Total spend"] == "£12,345.68"
    assert any("No model trained yet" in w for w in texts(at.warning))
    assert len(at.dataframe) == 1


def test_customers_page_backend_down(api: respx.MockRouter) -> None:
    api.get("/ready").mock(side_effect=httpx.ConnectError("refused"))
    api.get("/customers/13085").mock(side_effect=httpx.ConnectError("refused"))
    at = customers_page(new_app().run(), "13085")
    assert not at.exception
    assert any("Cannot reach" in m for m in texts(at.main.error))


# -- Models -----------------------------------------------------------------------------------


def models_page(at: AppTest) -> AppTest:
    return at.switch_page("views/models.py").run()


def test_models_page_shows_the_products_baselines(
    api: respx.MockRouter, sample_model: dict[str, Any]
) -> None:
    sample_model["metrics"]["products_baselines"] = {
        "mean": {"mae": 4.0, "spearman": None, "r2": -0.01},
        "last_window": {"mae": 3.0, "spearman": 0.25, "r2": 0.1},
    }
    api.get("/models/active").respond(json=sample_model)
    api.get("/models").respond(json={"runs": [{"run_id": "20111210-quick", "active": True}]})
    at = models_page(new_app().run())
    assert not at.exception
    [caption] = [c for c in texts(at.caption) if c.startswith("Products model")]
    assert "(baselines; mean: MAE 4.000" in caption
    assert "; last window: MAE 3.000 · Spearman 0.250 · R² 0.100)" in caption


def test_models_page_shows_the_runs_warnings(
    api: respx.MockRouter, sample_model: dict[str, Any]
) -> None:
    sample_model["metrics"]["warnings"] = ["Model 1 and Model 2 give the same predictions"]
    api.get("/models/active").respond(json=sample_model)
    api.get("/models").respond(json={"runs": [{"run_id": "20111210-quick", "active": True}]})
    at = models_page(new_app().run())
    assert not at.exception
    assert "Model 1 and Model 2 give the same predictions" in texts(at.warning)


def test_models_page_compares_models_and_baselines(
    api: respx.MockRouter, sample_model: dict[str, Any]
) -> None:
    api.get("/models/active").respond(json=sample_model)
    api.get("/models").respond(json={"runs": [{"run_id": "20111210-quick", "active": True}]})
    at = models_page(new_app().run())
    assert not at.exception
    table = at.dataframe[0].value
    assert table["Model"].tolist() == [
        "Model 1",
        "Model 2",
        "Baseline: mean",
        "Baseline: run rate",
        "Baseline: BG/NBD + Gamma-Gamma",
    ]
    assert table["R²"].tolist() == [0.412, 0.398, 0.0, 0.2, 0.25]
    assert table["MAE"].tolist() == [95.5, 97.0, 150.0, 120.0, 110.0]
    assert {"Gini", "Top-10% capture"} <= set(table.columns)
    titles = json.dumps(vega_specs(at))
    for title in ("Decile calibration", "Gain curve", "Feature importance"):
        assert title in titles
    assert any("Products model: MAE 2.500" in c for c in texts(at.caption))
    assert at.button[0].label == "Retrain"
    # no vs_baselines block in this run: no comparison table, the page still works
    assert not any("Comparison" in df.value.columns for df in at.dataframe)


def test_models_page_shows_how_sure_each_comparison_is(
    api: respx.MockRouter, sample_model: dict[str, Any]
) -> None:
    gap = {"delta": 0.05, "low": -0.02, "high": 0.11, "share_above_zero": 0.8}
    sample_model["horizon_days"] = 14
    sample_model["metrics"]["vs_baselines"] = {"model2": {"run_rate": {"r2": gap, "gini": gap}}}
    api.get("/models/active").respond(json=sample_model)
    api.get("/models").respond(json={"runs": [{"run_id": "20111210-quick", "active": True}]})
    at = models_page(new_app().run())
    assert not at.exception
    (gaps,) = [df.value for df in at.dataframe if "Comparison" in df.value.columns]
    assert gaps["Comparison"].tolist() == ["Model 2 − run rate"]
    assert gaps["R² interval"].tolist() == ["-0.020 … +0.110"]
    assert any("How sure is each comparison?" in c for c in texts(at.caption))
    assert any("Holdout: the 14 days after the cutoff" in c for c in texts(at.caption))


def test_models_page_without_model_offers_training(api: respx.MockRouter) -> None:
    api.get("/models/active").respond(404, json=NO_MODEL)
    at = models_page(new_app().run())
    assert not at.exception
    assert any("No model trained yet" in w and "Retrain" in w for w in texts(at.warning))
    assert at.button[0].label == "Retrain"


def test_retrain_polls_the_job_until_it_succeeds(
    api: respx.MockRouter, sample_model: dict[str, Any]
) -> None:
    api.get("/models/active").respond(404, json=NO_MODEL)
    train = api.post("/train").respond(202, json={"job_id": "job-1"})
    job = {"job_id": "job-1", "kind": "train", "error": None, "result": None}
    poll = api.get("/jobs/job-1").mock(
        side_effect=[
            httpx.Response(200, json=job | {"state": "running", "progress": 0.5, "message": "fit"}),
            httpx.Response(
                200,
                json=job
                | {
                    "state": "succeeded",
                    "progress": 1.0,
                    "message": "done",
                    "result": {"run_id": "new-run"},
                },
            ),
        ]
    )
    at = models_page(new_app().run())
    at.selectbox(key="train_budget").set_value("quick")
    at.button[0].click().run()
    assert not at.exception
    assert json.loads(train.calls.last.request.content) == {
        "as_of": None,
        "horizon_days": None,  # the server's CLV_HORIZON_DAYS
        "budget": "quick",
        "max_train_cutoffs": None,  # the server's CLV_MAX_TRAIN_CUTOFFS
    }
    assert poll.call_count == 2
    assert any("run `new-run` is now active" in s for s in texts(at.success))
    assert not any("store changed" in s for s in texts(at.success))


def _training_succeeds(api: respx.MockRouter, result: dict) -> respx.Route:
    """Mock an API without a model whose training job succeeds with ``result``."""
    api.get("/models/active").respond(404, json=NO_MODEL)
    train = api.post("/train").respond(202, json={"job_id": "job-1"})
    api.get("/jobs/job-1").respond(
        200,
        json={"job_id": "job-1", "kind": "train", "error": None, "state": "succeeded"}
        | {"progress": 1.0, "message": "done", "result": result},
    )
    return train


def test_retrain_sends_the_as_of_date_chosen_even_long_ago(api: respx.MockRouter) -> None:
    train = _training_succeeds(api, {"run_id": "new-run"})
    at = models_page(new_app().run())
    field = at.date_input(key="train_as_of")
    assert field.value is None  # the API's default date
    assert "when training refuses the default date" in field.help
    # Online Retail II's dates: Streamlit's default range (the last ten years) dropped them
    field.set_value(dt.date(2011, 11, 9)).run()
    at.button[0].click().run()
    assert not at.exception
    assert json.loads(train.calls.last.request.content)["as_of"] == "2011-11-09"


def test_retrain_says_when_the_store_changed_while_training(api: respx.MockRouter) -> None:
    _training_succeeds(api, {"run_id": "new-run", "store_changed": True})
    at = models_page(new_app().run())
    at.button[0].click().run()
    assert not at.exception
    [done] = [s for s in texts(at.success) if "is now active" in s]
    assert "The store changed while it trained: every customer now in the store was scored" in done


def test_retrain_shows_the_jobs_warnings(api: respx.MockRouter) -> None:
    result = {"run_id": "new-run", "warnings": ["the scores were written as of 2011-12-10"]}
    _training_succeeds(api, result)
    at = models_page(new_app().run())
    at.button[0].click().run()
    assert not at.exception
    [done] = [s for s in texts(at.success) if "is now active" in s]
    assert done.endswith(" Note: the scores were written as of 2011-12-10.")


def test_failed_training_is_reported(api: respx.MockRouter) -> None:
    api.get("/models/active").respond(404, json=NO_MODEL)
    api.post("/train").respond(202, json={"job_id": "job-2"})
    api.get("/jobs/job-2").respond(
        json={
            "job_id": "job-2",
            "kind": "train",
            "state": "failed",
            "progress": 0.3,
            "message": "",
            "error": "Not enough data",
            "result": None,
        }
    )
    at = models_page(new_app().run())
    at.button[0].click().run()
    assert any("Training failed: Not enough data" in e for e in texts(at.error))


def test_retrain_while_a_job_runs_is_refused_politely(api: respx.MockRouter) -> None:
    api.get("/models/active").respond(404, json=NO_MODEL)
    api.post("/train").respond(409, json={"detail": "A training job is already running"})
    at = models_page(new_app().run())
    at.button[0].click().run()
    assert not at.exception
    assert any("already running" in e and "Wait" in e for e in texts(at.error))


def test_retrain_sends_the_cap_on_training_cutoffs_and_shows_the_api_s_refusal(
    api: respx.MockRouter,
) -> None:
    api.get("/models/active").respond(404, json=NO_MODEL)
    detail = (
        "max_train_cutoffs 3 is too few for the quick budget with a horizon of 30 days: its "
        "time-aware folds need at least 4 training cutoffs (28 days apart). Send 4 or more."
    )
    train = api.post("/train").respond(422, json={"detail": detail})
    at = models_page(new_app().run())
    at.number_input(key="train_max_cutoffs").set_value(3)
    at.button[0].click().run()
    assert not at.exception
    assert json.loads(train.calls.last.request.content)["max_train_cutoffs"] == 3
    assert any("Send 4 or more" in e for e in texts(at.error))


def test_models_page_backend_down(api: respx.MockRouter) -> None:
    api.get("/ready").mock(side_effect=httpx.ConnectError("refused"))
    api.get("/models/active").mock(side_effect=httpx.ConnectError("refused"))
    at = models_page(new_app().run())
    assert not at.exception
    assert any("Cannot reach" in m and "clv serve" in m for m in texts(at.main.error))


def test_unexpected_answer_shape_is_a_message_not_a_traceback(api: respx.MockRouter) -> None:
    api.get("/models/active").respond(json={"run_id": "r", "metrics": {"models": "oops"}})
    at = models_page(new_app().run())
    assert not at.exception
    assert any("Something went wrong while drawing this page" in e for e in texts(at.error))


def test_store_toggle_sends_store_true_and_the_api_key(
    api: respx.MockRouter, sample_pipeline: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLV_API_KEY", "k3y-for-tests")
    route = api.post("/pipeline").respond(json=sample_pipeline)
    at = new_app().run()
    at.toggle[0].set_value(True).run()
    upload(at)
    request = route.calls.last.request
    assert request.url.params["store"] == "true"
    assert request.headers["X-API-Key"] == "k3y-for-tests"


def test_a_file_saved_once_is_not_saved_again_when_a_switch_changes(
    api: respx.MockRouter, sample_pipeline: dict[str, Any]
) -> None:
    route = api.post("/pipeline").respond(json=sample_pipeline)
    at = new_app().run()
    at.toggle[0].set_value(True).run()
    upload(at)
    assert route.calls.last.request.url.params["store"] == "true"
    assert not any("already saved" in t for t in texts(at.info))
    at.text_input(key="pipeline_search").set_value("130").run()  # a rerun sends nothing
    assert route.call_count == 1
    assert not any("already saved" in t for t in texts(at.info))
    at.toggle[1].set_value(True).run()  # day-first: scored again, not stored twice
    assert route.call_count == 2
    assert route.calls.last.request.url.params["store"] == "false"
    assert route.calls.last.request.url.params["day_first"] == "true"
    [note] = [t for t in texts(at.info) if "already saved" in t]
    assert "slash dates read in the order decided for the file" in note
    assert "undo that upload with *Undo this upload* below" in note
    assert "on the server" not in note and "clv undo-ingest" not in note
    upload(at, name="other.csv", content=b"other bytes")  # a new file is saved as asked
    assert route.call_count == 3
    assert route.calls.last.request.url.params["store"] == "true"


def test_column_names_typed_on_the_page_are_sent_as_the_apis_mapping(
    api: respx.MockRouter, sample_pipeline: dict[str, Any]
) -> None:
    route = api.post("/pipeline").respond(json=sample_pipeline)
    at = new_app().run()
    upload(at)
    assert route.calls.last.request.url.params.get_list("column") == []
    at.text_input(key="pipeline_column_invoice").set_value(" Name ").run()  # re-sent, mapped
    assert route.call_count == 2
    assert route.calls.last.request.url.params.get_list("column") == ["invoice=Name"]
    at.text_input(key="pipeline_column_customer_id").set_value("Email").run()
    assert route.calls.last.request.url.params.get_list("column") == [
        "invoice=Name",
        "customer_id=Email",
    ]


def _shop_workbook(tmp_path: Any, sheets: tuple[str, ...]) -> bytes:
    from tests.ingest.test_pipeline import _orders, _workbook

    return _workbook(tmp_path / "shop.xlsx", {name: _orders(1) for name in sheets}).read_bytes()


def test_workbook_sheets_lists_the_sheets_of_an_xlsx_only(tmp_path: Any) -> None:
    from retail_clv.dashboard.views.pipeline import workbook_sheets

    names = ("Orders", 'R&D "<2011>"', "Rücksendungen")
    assert workbook_sheets(_shop_workbook(tmp_path, names)) == list(names)
    for content in (b"Invoice,StockCode\n1,2\n", b"PK\x03\x04 not a zip", b""):
        assert workbook_sheets(content) == []
    # a damaged LZMA-compressed workbook part escaped as LZMAError and took the page down
    from tests.ingest.test_readers import corrupt_lzma_workbook

    assert workbook_sheets(corrupt_lzma_workbook()) == []


def test_the_sheets_of_a_workbook_are_chosen_on_the_page_and_sent(
    api: respx.MockRouter, sample_pipeline: dict[str, Any], tmp_path: Any
) -> None:
    route = api.post("/pipeline").respond(json=sample_pipeline)
    at = new_app().run()
    upload(at, "shop.xlsx", _shop_workbook(tmp_path, ("Orders", "Orders 2", "Returns")))
    [choice] = at.multiselect
    assert (choice.label, choice.value) == ("Sheets to read", ["Orders", "Orders 2", "Returns"])
    # every sheet chosen: the API's own default, which skips sheets without transactions
    assert route.calls.last.request.url.params.get_list("sheet") == []
    choice.unselect("Returns").run()
    assert route.call_count == 2
    assert route.calls.last.request.url.params.get_list("sheet") == ["Orders", "Orders 2"]
    at.multiselect[0].set_value([]).run()  # nothing to read: nothing is sent
    assert route.call_count == 2
    assert "Choose at least one sheet to read." in texts(at.info)
    upload(at, "one.xlsx", _shop_workbook(tmp_path, ("Orders",)))  # one sheet: no choice
    assert not at.multiselect
    assert route.calls.last.request.url.params.get_list("sheet") == []


def test_adding_a_sheet_after_a_save_saves_the_added_rows(
    api: respx.MockRouter, sample_pipeline: dict[str, Any], tmp_path: Any
) -> None:
    # a save was remembered per file: the rows of a sheet added afterwards were scored, never
    # stored, with a note about slash dates
    stored = {"run_id": 7, "rows_loaded": 2, "rows_duplicate": 0, "warnings": []}
    route = api.post("/pipeline").respond(json={**sample_pipeline, "stored": [stored]})
    at = new_app().run()
    upload(at, "shop.xlsx", _shop_workbook(tmp_path, ("Orders", "Orders 2", "Returns")))
    at.multiselect[0].set_value(["Orders"]).run()
    at.toggle[0].set_value(True).run()  # saves Orders
    at.multiselect[0].set_value(["Orders", "Orders 2"]).run()  # adds a sheet: saved
    at.multiselect[0].set_value(["Orders"]).run()  # saved before: scored, not saved again
    at.multiselect[0].set_value(["Orders 2", "Orders"]).run()  # the same sheets, reordered
    at.multiselect[0].set_value(["Orders", "Orders 2", "Returns"]).run()  # every sheet: new
    at.multiselect[0].set_value(["Returns"]).run()  # within "every sheet": not saved again
    sent = [
        (c.request.url.params["store"], c.request.url.params.get_list("sheet")) for c in route.calls
    ]
    assert sent == [
        ("false", []),
        ("false", ["Orders"]),
        ("true", ["Orders"]),
        ("true", ["Orders", "Orders 2"]),
        ("false", ["Orders"]),
        ("false", ["Orders 2", "Orders"]),
        ("true", []),
        ("false", ["Returns"]),
    ]
    assert any("already saved" in t for t in texts(at.info))


def test_a_returns_sheet_error_names_the_sheet_choice(api: respx.MockRouter) -> None:
    from retail_clv.dashboard.views.pipeline import page_wording

    api.post("/pipeline").respond(
        422,
        json={
            "detail": "required column 'price' is missing in shop.xlsx (sheet 'Returns'). Sheet "
            "'Orders' of shop.xlsx holds transactions; if sheet 'Returns' holds something else "
            "(returns, stock...), ingest only the sheets of transactions (send it again with "
            "the query parameter sheet=<sheet name> for each sheet to read: 'Orders'), or save "
            "them alone as CSV and ingest that"
        },
    )
    at = new_app().run()
    upload(at)
    [error] = [t for t in texts(at.error) if "'Returns'" in t]
    assert (
        "ingest only the sheets of transactions (under *Sheets to read* (shown for .xlsx "
        "files), keep only: 'Orders')" in error
    )
    assert "query parameter" not in error
    skipped = "sheet 'Returns' (3 rows) was skipped, not read as transactions: not chosen with "
    assert page_wording(skipped + "the query parameter sheet=; the rows of 'Orders' were read") == (
        skipped.removesuffix("with ") + "under *Sheets to read*; the rows of 'Orders' were read"
    )


def test_a_saved_upload_says_what_was_saved_and_the_stores_own_warnings(
    api: respx.MockRouter, sample_pipeline: dict[str, Any]
) -> None:
    repeat = (
        "5 of the 5 new purchase lines repeat sales already in the store ... if they are "
        "repeats, take this file out again with POST /ingest-runs/RUN_ID/undo (RUN_ID: the "
        "report's run_id; later runs that skipped duplicates must be undone first) so those "
        "sales are not counted twice."
    )
    stored = {"run_id": 7, "rows_loaded": 5, "rows_duplicate": 2, "warnings": [repeat]}
    api.post("/pipeline").respond(json={**sample_pipeline, "stored": [stored]})
    at = new_app().run()
    at.toggle[0].set_value(True).run()
    upload(at)
    [saved] = [t for t in texts(at.success) if t.startswith("Saved to the store")]
    # "already there" counted the file's own repeated rows as stored before
    assert saved == (
        "Saved to the store: 5 purchase lines loaded, 2 duplicates skipped (rows repeated "
        "within the file or already in the store); ingest run 7."
    )
    [warning] = [t for t in texts(at.warning) if t.startswith("Store:")]
    assert "take this upload out again with *Undo this upload* below" in warning
    assert "POST /ingest-runs" not in warning and "RUN_ID" not in warning
    assert "on the server" not in warning and "clv undo-ingest" not in warning
    assert at.button(key="pipeline_undo_7").label == "Undo this upload"


def test_day_first_switch_sends_day_first_and_warnings_name_the_switch(
    api: respx.MockRouter, sample_pipeline: dict[str, Any]
) -> None:
    sample_pipeline["report"]["warnings"] = [
        "3 slash dates could be read day-first or month-first (...). If the export writes the "
        "day first, send it again with the query parameter day_first=true (if its rows were "
        "stored, undo that ingest run first: POST /ingest-runs/RUN_ID/undo)"
    ]
    route = api.post("/pipeline").respond(json=sample_pipeline)
    at = new_app().run()
    upload(at)
    assert route.calls.last.request.url.params["day_first"] == "false"
    [warning] = [t for t in texts(at.warning) if "day-first or month-first" in t]
    assert "the *Day-first dates* switch" in warning and "query parameter" not in warning
    assert "undo that upload first with its *Undo this upload* button" in warning
    assert "POST /ingest-runs" not in warning
    at.toggle[1].set_value(True).run()  # switching re-sends the same file
    assert route.call_count == 2
    assert route.calls.last.request.url.params["day_first"] == "true"


def test_missing_column_error_says_to_rename_the_column(api: respx.MockRouter) -> None:
    api.post("/pipeline").respond(
        422,
        json={
            "detail": "required column 'customer_id' is missing in 'x.csv'; columns found: "
            "'Kunde'. Map it explicitly with the query parameter "
            "column=customer_id=<column name>"
        },
    )
    at = new_app().run()
    upload(at)
    assert not at.exception
    [error] = [t for t in texts(at.error) if "customer_id" in t]
    assert "Type the name of the column that holds it under *Column names in your file*" in error
    assert "or rename it to 'customer_id' in the file" in error
    assert "query parameter" not in error


def test_several_missing_columns_say_to_rename_them(api: respx.MockRouter) -> None:
    api.post("/pipeline").respond(
        422,
        json={
            "detail": "required columns 'price', 'customer_id' are missing in 'x.csv'; columns "
            "found: 'Kunde'. Map each explicitly with the query parameters "
            "column=price=<column name>, column=customer_id=<column name>"
        },
    )
    at = new_app().run()
    upload(at)
    [error] = [t for t in texts(at.error) if "customer_id" in t]
    assert "Type the names of the columns that hold them under *Column names in your file*" in error
    assert "query parameter" not in error


def test_configured_currency_comes_first(monkeypatch: pytest.MonkeyPatch) -> None:
    from retail_clv.config import get_settings
    from retail_clv.dashboard import common

    assert common.currency_choices()[0] == "£"
    monkeypatch.setenv("CLV_CURRENCY_SYMBOL", "CHF ")
    get_settings.cache_clear()
    assert common.currency_choices() == ["CHF ", "£", "€", "$", ""]
    assert common.default_currency() == "CHF "


def test_try_again_after_the_backend_comes_back(
    api: respx.MockRouter, sample_pipeline: dict[str, Any]
) -> None:
    route = api.post("/pipeline").mock(
        side_effect=[httpx.ConnectError("refused"), httpx.Response(200, json=sample_pipeline)]
    )
    at = new_app().run()
    upload(at)
    assert any("Cannot reach" in m for m in texts(at.main.error))
    assert not at.metric
    at.button(key="pipeline_retry").click().run()
    assert not at.exception
    assert route.call_count == 2
    assert metrics(at)["Rows read"] == "1,234"
    assert not at.main.error


# -- Undo this upload -------------------------------------------------------------------------

UNDONE = {
    "run_id": 7,
    "status": "undone",
    "deleted": {"transactions": 5, "cancellations": 0, "rejected_data": 1, "customers": 2},
}


def saved_upload(api: respx.MockRouter, sample_pipeline: dict[str, Any]) -> tuple[AppTest, Any]:
    """The page after a file was saved to the store as ingest run 7; the /pipeline route."""
    stored = {"run_id": 7, "rows_loaded": 5, "rows_duplicate": 0, "warnings": []}
    route = api.post("/pipeline").respond(json={**sample_pipeline, "stored": [stored]})
    at = new_app().run()
    at.toggle[0].set_value(True).run()
    upload(at)
    assert not at.exception
    return at, route


def test_an_upload_not_saved_offers_no_undo(
    api: respx.MockRouter, sample_pipeline: dict[str, Any]
) -> None:
    api.post("/pipeline").respond(json=sample_pipeline)
    at = new_app().run()
    upload(at)
    assert not [b for b in at.button if b.label == "Undo this upload"]


def test_undo_this_upload_takes_the_saved_rows_out_and_says_what_left(
    api: respx.MockRouter, sample_pipeline: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLV_API_KEY", "k3y-for-tests")
    undo = api.post("/ingest-runs/7/undo").respond(json=UNDONE)
    at, pipeline = saved_upload(api, sample_pipeline)
    assert undo.call_count == 0  # nothing is undone before the click
    at.button(key="pipeline_undo_7").click().run()
    assert not at.exception
    assert undo.call_count == 1
    assert undo.calls.last.request.headers["X-API-Key"] == "k3y-for-tests"
    [done] = [t for t in texts(at.success) if t.startswith("Upload undone")]
    assert done.startswith(
        "Upload undone: ingest run 7 was taken out of the store (5 purchase lines, 0 "
        "cancellations, 1 rejected row removed, and 2 customers left without any purchase or "
        "cancellation)."
    )
    assert "*Retrain* on the Models page" in done
    assert not [b for b in at.button if b.label == "Undo this upload"]
    at.text_input(key="pipeline_search").set_value("130").run()  # a rerun undoes nothing more
    assert undo.call_count == 1 and pipeline.call_count == 1
    # undone, the file is not "already saved": a switch change saves its rows again
    at.toggle[1].set_value(True).run()
    assert pipeline.call_count == 2
    assert pipeline.calls.last.request.url.params["store"] == "true"
    assert not any("already saved" in t for t in texts(at.info))


@pytest.mark.parametrize(
    ("status", "detail", "shown"),
    [
        (
            409,
            "ingest run 7 has later runs that skipped rows as duplicates (9): some may be rows "
            "of run 7, which would then be lost; undo those runs first (newest first)",
            "must be undone first, newest first",
        ),
        (409, "ingest run 7 was already undone", "already undone has nothing left"),
        (404, "there is no ingest run 7 in the store (see GET /ingest-runs)", "restarted"),
        (401, "Missing API key: send it in the X-API-Key header", "Set CLV_API_KEY"),
    ],
)
def test_an_undo_the_api_refuses_shows_its_reason_on_the_page(
    api: respx.MockRouter,
    sample_pipeline: dict[str, Any],
    status: int,
    detail: str,
    shown: str,
) -> None:
    api.post("/ingest-runs/7/undo").respond(status, json={"detail": detail})
    at, _ = saved_upload(api, sample_pipeline)
    at.button(key="pipeline_undo_7").click().run()
    assert not at.exception
    [message] = [
        t for t in texts(at.main.error) + texts(at.main.warning) if "run 7" in t or "API key" in t
    ]
    assert message.startswith(detail.replace(" (see GET /ingest-runs)", ""))
    assert shown in message
    assert "Wait for the running job" not in message
    assert not [t for t in texts(at.success) if t.startswith("Upload undone")]
    assert at.button(key="pipeline_undo_7").label == "Undo this upload"  # can be tried again


def test_a_file_saved_before_can_be_undone_from_the_not_saved_again_note(
    api: respx.MockRouter, sample_pipeline: dict[str, Any]
) -> None:
    undo = api.post("/ingest-runs/7/undo").respond(json=UNDONE)
    at, pipeline = saved_upload(api, sample_pipeline)
    pipeline.respond(json=sample_pipeline)  # scored, not saved, from now on
    at.toggle[1].set_value(True).run()  # day-first: scored again, not saved twice
    assert pipeline.calls.last.request.url.params["store"] == "false"
    assert any("already saved" in t for t in texts(at.info))
    at.button(key="pipeline_undo_7").click().run()
    assert not at.exception
    assert undo.call_count == 1
    assert not any("already saved" in t for t in texts(at.info))
    assert any(t.startswith("Upload undone: ingest run 7") for t in texts(at.success))
    at.toggle[1].set_value(False).run()  # now the file's rows are saved again, read as asked
    assert pipeline.calls.last.request.url.params["store"] == "true"


# -- The store's ingest runs ------------------------------------------------------------------

RUNS = {
    "runs": [
        {
            "run_id": run_id,
            "source_file": name,
            "sheet": None,
            "file_format": "csv",
            "encoding": "utf-8",
            "started_at": f"2026-11-2{run_id}T10:00:00.123456Z",
            "finished_at": f"2026-11-2{run_id}T10:00:09Z",
            "status": status,
            "rows_read": 1200 * run_id,
            "rows_loaded": 1000 * run_id,
            "rows_rejected": 150 * run_id,
            "rows_duplicate": 50 * run_id,
        }
        for run_id, name, status in [
            (8, "march.csv", "succeeded"),
            (7, "feb.csv", "undone"),
            (6, "jan.csv", "succeeded"),
        ]
    ]
}


def runs_table(at: AppTest) -> pd.DataFrame:
    [table] = [d.value for d in at.dataframe if "Started (UTC)" in d.value.columns]
    return table


def test_the_ingest_runs_list_is_fetched_only_when_asked_for(api: respx.MockRouter) -> None:
    route = api.get("/ingest-runs").respond(json=RUNS)
    at = new_app().run()
    assert route.call_count == 0
    at.toggle(key="pipeline_show_runs").set_value(True).run()
    assert not at.exception
    assert route.call_count == 1
    table = runs_table(at)
    assert table["Run"].tolist() == [8, 7, 6]  # newest first, as the API lists them
    assert table["File"].tolist() == ["march.csv", "feb.csv", "jan.csv"]
    assert table["Started (UTC)"].tolist()[0] == "2026-11-28 10:00:00"
    assert table["Status"].tolist() == ["succeeded", "undone", "succeeded"]
    assert table["Loaded"].tolist() == [8000, 7000, 6000]
    # only runs whose rows are still in the store can be taken out
    assert at.selectbox(key="pipeline_runs_choice").options == [
        "Run 8 · march.csv",
        "Run 6 · jan.csv",
    ]


def test_an_earlier_run_is_undone_from_the_list_and_its_outcome_stays(
    api: respx.MockRouter,
) -> None:
    listed = api.get("/ingest-runs").respond(json=RUNS)
    undo = api.post("/ingest-runs/6/undo").respond(json={**UNDONE, "run_id": 6})
    at = new_app().run()
    at.toggle(key="pipeline_show_runs").set_value(True).run()
    at.selectbox(key="pipeline_runs_choice").set_value(6).run()
    assert undo.call_count == 0
    at.button(key="runs_undo_6").click().run()
    assert not at.exception
    assert undo.call_count == 1
    # the list now says run 6 is undone; the message stays on the page
    after = {"runs": [r if r["run_id"] != 6 else {**r, "status": "undone"} for r in RUNS["runs"]]}
    listed.respond(json=after)
    at.run()
    assert runs_table(at)["Status"].tolist() == ["succeeded", "undone", "undone"]
    [done] = [t for t in texts(at.success) if t.startswith("Upload undone: ingest run 6")]
    assert done.endswith("*Retrain* on the Models page to update them.")  # no file on the page
    assert undo.call_count == 1


def test_a_refused_undo_from_the_list_says_what_to_undo_first(api: respx.MockRouter) -> None:
    api.get("/ingest-runs").respond(json=RUNS)
    detail = (
        "ingest run 6 has later runs that skipped rows as duplicates (8): some may be rows of "
        "run 6, which would then be lost; undo those runs first (newest first)"
    )
    api.post("/ingest-runs/6/undo").respond(409, json={"detail": detail})
    at = new_app().run()
    at.toggle(key="pipeline_show_runs").set_value(True).run()
    at.selectbox(key="pipeline_runs_choice").set_value(6).run()
    at.button(key="runs_undo_6").click().run()
    assert not at.exception
    [message] = [t for t in texts(at.main.error) if "run 6" in t]
    assert message.startswith(detail)
    assert "must be undone first, newest first" in message
    assert at.button(key="runs_undo_6").label == "Undo this upload"


def test_the_list_and_the_saved_upload_offer_the_same_run_without_clashing(
    api: respx.MockRouter, sample_pipeline: dict[str, Any]
) -> None:
    api.get("/ingest-runs").respond(
        json={"runs": [{**RUNS["runs"][1], "status": "succeeded"}]}  # run 7, just saved
    )
    undo = api.post("/ingest-runs/7/undo").respond(json=UNDONE)
    at, _ = saved_upload(api, sample_pipeline)
    at.toggle(key="pipeline_show_runs").set_value(True).run()
    assert not at.exception
    assert at.button(key="runs_undo_7").label == "Undo this upload"
    assert at.button(key="pipeline_undo_7").label == "Undo this upload"
    at.button(key="runs_undo_7").click().run()
    assert not at.exception
    assert undo.call_count == 1
    # both places now say it is undone, and neither offers the button again
    assert len([t for t in texts(at.success) if t.startswith("Upload undone: ingest run 7")]) == 2
    assert not [b for b in at.button if b.label == "Undo this upload"]


@pytest.mark.parametrize(
    ("answer", "shown"),
    [
        ({"runs": []}, "The store holds no ingest run yet."),
        (
            {"runs": [{**RUNS["runs"][1]}]},
            "Every ingest run of the store is undone or still running.",
        ),
    ],
)
def test_a_store_with_nothing_to_undo_says_so(
    api: respx.MockRouter, answer: dict[str, Any], shown: str
) -> None:
    api.get("/ingest-runs").respond(json=answer)
    at = new_app().run()
    at.toggle(key="pipeline_show_runs").set_value(True).run()
    assert not at.exception
    assert shown in texts(at.info) + texts(at.caption)
    assert not [b for b in at.button if b.label == "Undo this upload"]


def test_a_file_saved_with_the_list_open_is_listed_at_once(
    api: respx.MockRouter, sample_pipeline: dict[str, Any]
) -> None:
    saved = {**RUNS["runs"][0], "run_id": 9, "source_file": "raw.csv"}
    listed = api.get("/ingest-runs").respond(json=RUNS)
    at = new_app().run()
    at.toggle(key="pipeline_show_runs").set_value(True).run()
    assert runs_table(at)["Run"].tolist() == [8, 7, 6]
    stored = {"run_id": 9, "rows_loaded": 5, "rows_duplicate": 0, "warnings": []}
    pipeline = api.post("/pipeline").respond(json={**sample_pipeline, "stored": [stored]})
    # the store holds run 9 only once the upload has been saved
    listed.mock(
        side_effect=lambda request: httpx.Response(
            200, json={"runs": [saved, *RUNS["runs"]]} if pipeline.called else RUNS
        )
    )
    at.toggle[0].set_value(True).run()  # Save rows to the store
    upload(at)
    assert not at.exception
    # the list is drawn after the upload was saved, in the same run of the page
    assert runs_table(at)["Run"].tolist() == [9, 8, 7, 6]
    assert at.selectbox(key="pipeline_runs_choice").options[0] == "Run 9 · raw.csv"
