"""ApiClient: requests it sends and the translation of every failure into a DashboardError."""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest
import respx

from retail_clv.dashboard.client import (
    ApiClient,
    AuthError,
    BackendTimeoutError,
    BackendUnavailableError,
    ConflictError,
    DashboardError,
    InvalidRequestError,
    NoModelError,
    NotFoundError,
    ServerError,
)
from retail_clv.errors import RetailClvError

API = "http://api.test"


@pytest.fixture
def router() -> respx.MockRouter:
    with respx.mock(base_url=API) as mock:
        yield mock


def test_connection_refused_says_how_to_start_the_api(router: respx.MockRouter) -> None:
    router.get("/models/active").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(
        BackendUnavailableError, match=r"Cannot reach .* at http://api.test\."
    ) as info:
        ApiClient(API + "/").active_model()
    assert "clv serve" in info.value.hint and "CLV_API_URL" in info.value.hint
    assert isinstance(info.value, RetailClvError)


def test_timeout_is_its_own_error(router: respx.MockRouter) -> None:
    router.get("/models/active").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(BackendTimeoutError, match="did not answer in time"):
        ApiClient(API).active_model()


@pytest.mark.parametrize("status", [404, 503])
def test_no_model_is_recognised_from_the_detail(router: respx.MockRouter, status: int) -> None:
    router.get("/models/active").respond(
        status, json={"detail": "No model trained yet: run clv train or POST /train"}
    )
    with pytest.raises(NoModelError, match="No model trained yet") as info:
        ApiClient(API).active_model()
    assert "clv train" in info.value.hint
    assert info.value.status_code == status


def test_unknown_customer_is_not_found_not_no_model(router: respx.MockRouter) -> None:
    router.get("/customers/42").respond(
        404, json={"detail": "Customer '42' has no purchase in the store"}
    )
    with pytest.raises(NotFoundError, match="Customer '42' has no purchase") as info:
        ApiClient(API).customer("42")
    assert not isinstance(info.value, NoModelError)
    assert "clv ingest" in info.value.hint


def test_customer_id_is_stripped_and_quoted(router: respx.MockRouter) -> None:
    route = router.get("/customers/a%2Fb%20c/features").respond(
        json={"customer_id": "a/b c", "as_of": "2011-12-10", "features": {}}
    )
    assert ApiClient(API).customer_features(" a/b c ")["customer_id"] == "a/b c"
    assert route.called


@pytest.mark.parametrize(
    ("status", "body", "error", "message"),
    [
        (
            422,
            {"detail": [{"loc": ["body", "file"], "msg": "Field required"}]},
            InvalidRequestError,
            "file: Field required",
        ),
        (
            422,
            {"detail": "raw.csv: missing column Invoice"},
            InvalidRequestError,
            "missing column Invoice",
        ),
        (413, {"detail": "Upload larger than 1 MB"}, InvalidRequestError, "larger than 1 MB"),
        (401, {"detail": "Missing X-API-Key"}, AuthError, "Missing X-API-Key"),
        (409, {"detail": "A training job is already running"}, ConflictError, "already running"),
        (
            500,
            {"detail": "Internal error (request id abc)"},
            ServerError,
            r"The API failed \(500\): Internal error \(request id abc\)",
        ),
        (502, "<html>Bad gateway</html>", ServerError, r"The API failed \(502\): Bad Gateway"),
    ],
)
def test_error_statuses_are_translated(
    router: respx.MockRouter, status: int, body: object, error: type, message: str
) -> None:
    if isinstance(body, dict):
        router.post("/pipeline").respond(status, json=body)
    else:
        router.post("/pipeline").respond(status, text=str(body))
    with pytest.raises(error, match=message) as info:
        ApiClient(API).run_pipeline("raw.csv", b"x")
    assert isinstance(info.value, DashboardError)
    assert info.value.hint
    assert info.value.status_code == status


def test_pipeline_upload_is_multipart_with_store_flag_and_key(router: respx.MockRouter) -> None:
    route = router.post("/pipeline").respond(json={"report": {}, "predictions": []})
    ApiClient(API, api_key="s3cret").run_pipeline("sales.xlsx", b"PK\x03\x04", store=True)
    request = route.calls.last.request
    assert request.url.params["store"] == "true"
    assert request.headers["X-API-Key"] == "s3cret"
    assert request.headers["content-type"].startswith("multipart/form-data")
    assert b'name="file"; filename="sales.xlsx"' in request.content
    assert b"spreadsheetml" in request.content


def test_pipeline_sends_each_chosen_sheet_as_a_sheet_parameter(
    router: respx.MockRouter,
) -> None:
    route = router.post("/pipeline").respond(json={"report": {}, "predictions": []})
    client = ApiClient(API)
    client.run_pipeline("shop.xlsx", b"PK\x03\x04", sheets=["Orders", "Orders 2"])
    assert route.calls.last.request.url.params.get_list("sheet") == ["Orders", "Orders 2"]
    client.run_pipeline("shop.xlsx", b"PK\x03\x04")  # no choice: the API reads every sheet
    assert "sheet" not in route.calls.last.request.url.params


def test_no_key_header_without_a_key(router: respx.MockRouter) -> None:
    route = router.get("/ready").respond(json={"status": "ready", "model_run_id": "r"})
    ApiClient(API).ready()
    assert "X-API-Key" not in route.calls.last.request.headers


def test_training_body_and_job_polling(router: respx.MockRouter) -> None:
    train = router.post("/train").respond(202, json={"job_id": "j1"})
    router.get("/jobs/j1").respond(
        json={
            "job_id": "j1",
            "kind": "train",
            "state": "running",
            "progress": 0.25,
            "message": "tuning",
            "error": None,
            "result": None,
        }
    )
    client = ApiClient(API)
    assert client.start_training(budget="default", horizon_days=14, max_train_cutoffs=13) == "j1"
    assert json.loads(train.calls.last.request.content) == {
        "as_of": None,
        "horizon_days": 14,
        "budget": "default",
        "max_train_cutoffs": 13,
    }
    # by default the server's settings decide, as for POST /train from anywhere
    assert client.start_training() == "j1"
    assert json.loads(train.calls.last.request.content) == {
        "as_of": None,
        "horizon_days": None,
        "budget": "quick",
        "max_train_cutoffs": None,
    }
    job = client.job("j1")
    assert job["state"] == "running" and job["progress"] == 0.25


def test_non_json_success_is_a_server_error(router: respx.MockRouter) -> None:
    router.get("/models/active").respond(text="hello")
    with pytest.raises(ServerError, match="not JSON"):
        ApiClient(API).active_model()


def test_list_models_returns_runs(router: respx.MockRouter) -> None:
    router.get("/models").respond(json={"runs": [{"run_id": "a", "active": True}]})
    assert ApiClient(API).list_models() == [{"run_id": "a", "active": True}]


def test_undo_ingest_run_posts_to_the_run_with_the_key(router: respx.MockRouter) -> None:
    answer = {"run_id": 7, "status": "undone", "deleted": {"transactions": 5}}
    route = router.post("/ingest-runs/7/undo").respond(json=answer)
    assert ApiClient(API, api_key="s3cret").undo_ingest_run(7) == answer
    assert route.calls.last.request.headers["X-API-Key"] == "s3cret"
    assert route.calls.last.request.content == b""


def test_a_refused_undo_says_why_and_what_to_do(router: respx.MockRouter) -> None:
    router.post("/ingest-runs/7/undo").respond(
        409, json={"detail": "ingest run 7 was already undone"}
    )
    with pytest.raises(ConflictError, match="ingest run 7 was already undone") as info:
        ApiClient(API).undo_ingest_run(7)
    assert "undone first, newest first" in info.value.hint
    assert "running job" not in info.value.hint
    router.post("/ingest-runs/8/undo").respond(404, json={"detail": "there is no ingest run 8"})
    with pytest.raises(NotFoundError) as missing:
        ApiClient(API).undo_ingest_run(8)
    assert "another database" in missing.value.hint


def test_start_training_sends_the_as_of_date(router: respx.MockRouter) -> None:
    train = router.post("/train").respond(202, json={"job_id": "j"})
    assert ApiClient(API).start_training(as_of=dt.date(2011, 11, 9)) == "j"
    assert json.loads(train.calls.last.request.content)["as_of"] == "2011-11-09"
    ApiClient(API).start_training()
    assert json.loads(train.calls.last.request.content)["as_of"] is None
