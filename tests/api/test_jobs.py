import datetime as dt
import threading
import time

import pytest
from fastapi.testclient import TestClient

from retail_clv.api import services
from retail_clv.api.jobs import JobConflictError, JobManager
from retail_clv.errors import SchemaError


def _wait(client: TestClient, job_id: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/jobs/{job_id}").json()
        if body["state"] in ("succeeded", "failed"):
            return body
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {body}")


def test_job_manager_records_failure_message_and_class() -> None:
    manager = JobManager()

    def fail(progress):
        progress(0.3, "fitting")
        raise SchemaError("Customer ID column is all null")

    job = manager.submit("train", fail)
    manager.wait(job.job_id, timeout=5)
    assert job.state == "failed"
    assert job.error == "SchemaError: Customer ID column is all null"
    assert job.progress == pytest.approx(0.3)
    assert job.finished_at is not None


def test_job_manager_refuses_a_second_exclusive_job_and_allows_after() -> None:
    manager = JobManager()
    release = threading.Event()
    first = manager.submit("train", lambda progress: (release.wait(5), None)[1])
    with pytest.raises(JobConflictError, match=first.job_id):
        manager.submit("train", lambda progress: None)
    other_kind = manager.submit("other", lambda progress: {"ok": True})
    manager.wait(other_kind.job_id, timeout=5)
    assert other_kind.state == "succeeded"
    release.set()
    manager.wait(first.job_id, timeout=5)
    second = manager.submit("train", lambda progress: {"n": 1})
    manager.wait(second.job_id, timeout=5)
    assert second.result == {"n": 1}


def test_job_manager_forgets_oldest_finished_jobs() -> None:
    manager = JobManager(max_history=3)
    ids = []
    for _ in range(6):
        job = manager.submit("x", lambda progress: None, exclusive=False)
        manager.wait(job.job_id, timeout=5)
        ids.append(job.job_id)
    remembered = [j.job_id for j in manager.jobs()]
    assert len(remembered) <= 4
    assert ids[-1] in remembered
    assert manager.get(ids[0]) is None


def test_training_on_an_empty_store_fails_with_its_message(empty_client: TestClient) -> None:
    response = empty_client.post("/train", json={"budget": "quick"})
    assert response.status_code == 202
    job = _wait(empty_client, response.json()["job_id"])
    assert job["state"] == "failed"
    assert job["kind"] == "train"
    assert "NotEnoughDataError" in job["error"]
    assert "store is empty" in job["error"]


def test_training_failure_inside_the_trainer_is_surfaced(
    empty_client: TestClient, monkeypatch
) -> None:
    def broken(*args, **kwargs):
        progress = args[5]
        progress(0.4, "tuning model 2")
        raise RuntimeError("xgboost: label contains NaN in /srv/secret/models")

    monkeypatch.setattr(services, "run_training", broken)
    job_id = empty_client.post("/train").json()["job_id"]
    job = _wait(empty_client, job_id)
    assert job["state"] == "failed"
    # an unexpected error's text stays in the server log (it may name server paths)
    assert job["error"] == (
        f"RuntimeError: internal error; the server log has the details (job {job_id})"
    )
    assert job["progress"] == pytest.approx(0.4)
    assert empty_client.get("/ready").status_code == 503


def test_second_training_job_is_409_while_one_runs(empty_client: TestClient, monkeypatch) -> None:
    release = threading.Event()

    def slow(*args, **kwargs):
        release.wait(10)
        raise RuntimeError("stopped by the test")

    monkeypatch.setattr(services, "run_training", slow)
    first = empty_client.post("/train")
    assert first.status_code == 202
    second = empty_client.post("/train")
    assert second.status_code == 409
    assert first.json()["job_id"] in second.json()["detail"]
    running = empty_client.get(f"/jobs/{first.json()['job_id']}").json()
    assert running["state"] == "running"
    release.set()
    _wait(empty_client, first.json()["job_id"])
    listed = empty_client.get("/jobs").json()
    assert [j["job_id"] for j in listed] == [first.json()["job_id"]]


def test_train_body_is_validated(empty_client: TestClient) -> None:
    response = empty_client.post("/train", json={"budget": "huge", "horizon": 30})
    assert response.status_code == 422
    locs = {tuple(e["loc"]) for e in response.json()["detail"]}
    assert ("body", "budget") in locs
    assert ("body", "horizon") in locs


@pytest.mark.parametrize(("headers", "status"), [({}, 401), ({"X-API-Key": "nope"}, 403)])
def test_train_requires_the_api_key_when_configured(make_client, headers, status) -> None:
    client = make_client(api_key="k" * 20)
    response = client.post("/train", json={}, headers=headers)
    assert response.status_code == status
    assert client.get("/jobs").json() == []


def test_unknown_job_is_404(empty_client: TestClient) -> None:
    response = empty_client.get("/jobs/does-not-exist")
    assert response.status_code == 404
    assert "does-not-exist" in response.json()["detail"]


def test_successful_training_job_activates_the_new_model(
    store_client: TestClient, api_data, monkeypatch
) -> None:
    """The trainer is replaced by a copy of a real run: the API must load it once it succeeds."""
    import shutil

    state = store_client.app.state.clv
    assert store_client.get("/ready").status_code == 503

    def fake_training(engine, models_dir, as_of, horizon_days, budget, progress, **kwargs):
        progress(0.5, "training")
        shutil.copytree(api_data.models_dir, models_dir, symlinks=True, dirs_exist_ok=True)
        return {"run_id": api_data.run_id, "budget": budget, "horizon_days": horizon_days}

    monkeypatch.setattr(services, "run_training", fake_training)
    response = store_client.post("/train", json={"budget": "quick", "horizon_days": 14})
    job = _wait(store_client, response.json()["job_id"])
    assert job["state"] == "succeeded", job
    assert job["progress"] == 1.0
    assert job["result"] == {
        "run_id": api_data.run_id,
        "budget": "quick",
        "horizon_days": 14,
        "loaded": True,
    }
    assert state.bundle.run_id == api_data.run_id
    ready = store_client.get("/ready").json()
    assert ready["model_run_id"] == api_data.run_id
    assert store_client.get("/models").json()["runs"][0]["active"] is True


@pytest.mark.parametrize(("body", "horizon"), [({}, 7), ({"horizon_days": 14}, 14)])
def test_a_training_job_defaults_its_horizon_to_the_clv_horizon_days_setting(
    make_client, api_store, monkeypatch, body, horizon
) -> None:
    seen: dict[str, object] = {}

    def fake_training(engine, models_dir, as_of, horizon_days, budget, progress, **kwargs):
        seen["horizon_days"] = horizon_days
        raise RuntimeError("stop here")

    monkeypatch.setattr(services, "run_training", fake_training)
    client = make_client(db=api_store[1], horizon_days=7)  # CLV_HORIZON_DAYS=7
    response = client.post("/train", json={"budget": "quick", **body})
    assert response.status_code == 202
    job = _wait(client, response.json()["job_id"])
    assert job["state"] == "failed"
    assert seen == {"horizon_days": horizon}


@pytest.mark.parametrize(
    ("body", "setting", "cap"),
    [({}, None, None), ({}, 6, 6), ({"max_train_cutoffs": 8}, 6, 8)],
)
def test_a_training_job_caps_its_cutoffs_as_asked_or_as_the_server_setting_says(
    make_client, api_store, monkeypatch, body, setting, cap
) -> None:
    seen: dict[str, object] = {}

    def fake_training(engine, models_dir, as_of, horizon_days, budget, progress, **kwargs):
        seen["max_train_cutoffs"] = kwargs["max_train_cutoffs"]
        raise RuntimeError("stop here")

    monkeypatch.setattr(services, "run_training", fake_training)
    client = make_client(db=api_store[1], max_train_cutoffs=setting)
    response = client.post("/train", json={"budget": "quick", **body})
    assert response.status_code == 202
    assert _wait(client, response.json()["job_id"])["state"] == "failed"
    assert seen == {"max_train_cutoffs": cap}


@pytest.mark.parametrize(
    ("body", "setting", "named", "remedy"),
    [
        ({"max_train_cutoffs": 3}, None, "max_train_cutoffs 3", "Send 4 or more."),
        (
            {},
            2,
            "the server's CLV_MAX_TRAIN_CUTOFFS 2",
            "Send max_train_cutoffs of 4 or more, or have CLV_MAX_TRAIN_CUTOFFS raised.",
        ),
    ],
)
def test_a_cap_too_few_for_the_budget_is_a_422_before_any_job(
    make_client, api_store, body, setting, named, remedy
) -> None:
    client = make_client(db=api_store[1], max_train_cutoffs=setting)
    response = client.post("/train", json={"budget": "quick", **body})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert f"{named} is too few for the quick budget" in detail
    assert detail.endswith(remedy) and "leave it unset" not in detail
    assert client.get("/jobs").json() == []


def test_run_training_defaults_its_threads_to_the_clv_n_jobs_setting(
    api_store, tmp_path, monkeypatch
) -> None:
    from retail_clv.config import get_settings
    from retail_clv.models import training
    from retail_clv.store.db import get_engine

    seen: dict[str, object] = {}

    class Stop(Exception):
        pass

    def capture(*args, **kwargs):
        seen["n_jobs"] = kwargs["n_jobs"]
        seen["max_train_cutoffs"] = kwargs["max_train_cutoffs"]
        raise Stop

    monkeypatch.setattr(training, "train", capture)
    monkeypatch.setenv("CLV_N_JOBS", "3")
    get_settings.cache_clear()
    engine = get_engine(f"sqlite:///{api_store[1]}")
    try:
        with pytest.raises(Stop):
            services.run_training(engine, tmp_path, None, 30, "quick", lambda f, m: None)
        assert seen["n_jobs"] == 3
        with pytest.raises(Stop):
            services.run_training(engine, tmp_path, None, 30, "quick", lambda f, m: None, n_jobs=1)
        assert seen["n_jobs"] == 1
        assert seen["max_train_cutoffs"] is None
        with pytest.raises(Stop):
            services.run_training(
                engine, tmp_path, None, 30, "quick", lambda f, m: None, max_train_cutoffs=9
            )
        assert seen["max_train_cutoffs"] == 9
    finally:
        engine.dispose()
        get_settings.cache_clear()


def test_training_as_of_after_the_data_fails_with_its_message(
    store_client: TestClient, monkeypatch
) -> None:
    from retail_clv.models import training

    def never(*args, **kwargs):
        raise AssertionError("the trainer must not run")

    monkeypatch.setattr(training, "train", never)
    response = store_client.post("/train", json={"as_of": "2099-06-01"})
    job = _wait(store_client, response.json()["job_id"])
    assert job["state"] == "failed"
    assert "NotEnoughDataError" in job["error"]
    assert "after the last purchase" in job["error"]
    assert store_client.get("/ready").status_code == 503


def test_training_on_the_default_date_after_an_isolated_last_day_fails_with_its_message(
    empty_client: TestClient,
) -> None:
    rows = ["Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country"]
    for month in range(1, 7):
        for customer in (1, 2, 3):
            rows.append(
                f"{month}{customer},A,MUG,2,2011-0{month}-1{customer} 10:00,3.5,{customer},UK"
            )
    rows.append("99,A,MUG,2,2013-06-12 10:00,3.5,1,UK")  # 2013 typed for 2011
    upload = {"file": ("shop.csv", "\n".join(rows).encode(), "text/csv")}
    assert empty_client.post("/ingest", files=upload).status_code == 200
    response = empty_client.post("/train", json={"budget": "quick"})
    job = _wait(empty_client, response.json()["job_id"])
    assert job["state"] == "failed"
    assert job["error"].startswith(
        "NotEnoughDataError: the last purchase day, 2013-06-12 (1 line), stands 730 days after "
        "any other (2011-06-13): a mistyped date? The default as_of, 2013-05-13, would follow it"
    )
    assert (
        "Fix it (POST /ingest-runs/{run_id}/undo on the run that holds it, see GET"
        in (job["error"])
    )
    # five months before it: too short for a 30-day horizon, long enough for a 4-day one
    assert job["error"].endswith(
        "Without that day, the purchases from 2011-01-11 to 2011-06-13 leave 123 days before "
        "2011-05-14, and the quick budget with a 30-day horizon needs 174: to train on them "
        "anyway, pass horizon_days 4 with as_of 2011-06-09"
    )


def test_a_training_job_serves_neither_server_paths_nor_the_store_location(
    store_client: TestClient, monkeypatch
) -> None:
    """The job result and the new run's metadata name the run, never the server's folders."""
    from retail_clv.models import training
    from tests.models._toy import toy_result

    monkeypatch.setattr(training, "train", lambda *args, **kwargs: toy_result())
    state = store_client.app.state.clv
    response = store_client.post("/train", json={"write_predictions": False})
    job = _wait(store_client, response.json()["job_id"])
    assert job["state"] == "succeeded", job
    run_id = job["result"]["run_id"]
    assert (state.settings.models_dir / run_id / "metadata.json").is_file()
    db_file = state.settings.database_url.removeprefix("sqlite:///")
    server_folder = str(state.settings.models_dir.parent)
    assert server_folder in db_file  # both live in the test's temporary folder
    one, listed = store_client.get(f"/jobs/{job['job_id']}"), store_client.get("/jobs")
    assert server_folder not in one.text
    assert server_folder not in listed.text
    assert "path" not in one.json()["result"]
    active = store_client.get("/models/active")
    assert active.json()["run_id"] == run_id
    assert server_folder not in active.text
    db_name = db_file.rsplit("/", 1)[-1]
    assert active.json()["data_fingerprint"]["database_url"] == f"sqlite:///…/{db_name}"


def test_a_job_failing_on_its_input_logs_a_warning_without_traceback(caplog) -> None:
    from retail_clv.errors import NotEnoughDataError

    manager = JobManager()

    def refuse(progress):
        raise NotEnoughDataError("as_of 9999-12-31 is after the last purchase")

    with caplog.at_level("DEBUG", logger="retail_clv.api.jobs"):
        job = manager.submit("train", refuse)
        manager.wait(job.job_id, timeout=5)
    assert job.error == "NotEnoughDataError: as_of 9999-12-31 is after the last purchase"
    [failure] = [r for r in caplog.records if "failed" in r.getMessage()]
    assert failure.levelname == "WARNING"
    assert failure.exc_info is None
    assert "NotEnoughDataError: as_of 9999-12-31 is after the last purchase" in failure.getMessage()


def test_a_job_failing_on_a_bug_logs_an_error_with_its_traceback(caplog) -> None:
    manager = JobManager()

    def broken(progress):
        raise KeyError("model2")

    with caplog.at_level("DEBUG", logger="retail_clv.api.jobs"):
        job = manager.submit("train", broken)
        manager.wait(job.job_id, timeout=5)
    [failure] = [r for r in caplog.records if "failed" in r.getMessage()]
    assert failure.levelname == "ERROR"
    assert failure.exc_info is not None and failure.exc_info[0] is KeyError


def test_training_as_of_far_in_the_future_is_a_warning_not_a_traceback(
    store_client: TestClient, caplog
) -> None:
    with caplog.at_level("DEBUG", logger="retail_clv.api.jobs"):
        response = store_client.post("/train", json={"as_of": "9999-12-31"})
        job = _wait(store_client, response.json()["job_id"])
    assert job["state"] == "failed"
    assert job["error"].startswith("NotEnoughDataError: ")
    [failure] = [r for r in caplog.records if "failed" in r.getMessage()]
    assert failure.levelname == "WARNING"
    assert failure.exc_info is None
    assert job["error"] in failure.getMessage()


KEY = "k" * 20
TOO_MANY_COLUMNS = "&".join(f"column=f{i}=C{i}" for i in range(25))


@pytest.mark.parametrize(
    ("path", "content", "content_type"),
    [
        ("/train", b'{"as_of": ', "application/json"),  # malformed JSON
        ("/train", b'{"budget": "huge", "horizon": 30}', "application/json"),  # invalid body
        ("/train", b"as_of=2011-01-01", "application/x-www-form-urlencoded"),
        ("/ingest", b"not multipart", "text/plain"),
        (f"/ingest?{TOO_MANY_COLUMNS}", b"", "multipart/form-data"),
        ("/pipeline?store=true", b"not multipart", "text/plain"),
        (f"/pipeline?store=TRUE&{TOO_MANY_COLUMNS}", b"", "multipart/form-data"),
    ],
)
@pytest.mark.parametrize(("headers", "status"), [({}, 401), ({"X-API-Key": "nope"}, 403)])
def test_a_missing_or_wrong_key_is_answered_before_the_request_is_validated(
    make_client, path, content, content_type, headers, status
) -> None:
    client = make_client(api_key=KEY)
    response = client.post(path, content=content, headers={**headers, "Content-Type": content_type})
    assert response.status_code == status, response.text
    assert isinstance(response.json()["detail"], str)
    if status == 401:
        assert response.headers["www-authenticate"] == "ApiKey"
    assert client.get("/jobs").json() == []


def test_with_the_right_key_a_malformed_body_is_still_a_422(make_client) -> None:
    client = make_client(api_key=KEY)
    response = client.post(
        "/train",
        content=b'{"as_of": ',
        headers={"X-API-Key": KEY, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"


def test_routes_that_need_no_key_are_not_guarded(make_client, api_data) -> None:
    client = make_client(db=api_data.db_path, models_dir=api_data.models_dir, api_key=KEY)
    assert client.get("/jobs").status_code == 200
    assert client.get("/jobs/nope").status_code == 404
    # /pipeline needs the key only to store: without it the upload is validated as before
    for path in ("/pipeline", "/pipeline?store=false", "/pipeline?store=0"):
        response = client.post(path, content=b"x", headers={"Content-Type": "text/plain"})
        assert response.status_code == 415, path


def test_customers_ingested_while_training_get_a_stored_score(api_store, tmp_path, monkeypatch):
    # the job used to score the store as read before training: 60 customers ingested
    # meanwhile had no stored score although the job reported plain success
    import shutil

    from retail_clv.ingest.pipeline import ingest_files
    from retail_clv.models import training
    from retail_clv.store.db import get_engine
    from retail_clv.store.predictions import read_predictions
    from retail_clv.store.queries import read_purchases
    from tests.models._toy import toy_result

    db = tmp_path / "store.db"
    shutil.copy(api_store[1], db)
    engine = get_engine(f"sqlite:///{db}")
    new = tmp_path / "new.csv"
    new.write_text(
        "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"
        "900001,85048,LIGHTS,3,2010-12-20 10:00,2.50,99001,France\n"
        "900002,85048,LIGHTS,5,2010-12-21 11:00,2.50,99002,France\n"
    )

    def train_while_a_file_arrives(*args, **kwargs):
        ingest_files([new], engine, progress=False)
        return toy_result()

    monkeypatch.setattr(training, "train", train_while_a_file_arrives)
    try:
        before = set(read_purchases(engine)["customer_id"].to_list())
        result = services.run_training(
            engine, tmp_path / "models", None, 30, "quick", lambda f, m: None
        )
        scored = set(read_predictions(engine)["customer_id"].to_list())
    finally:
        engine.dispose()
    assert result["store_changed"] is True
    assert {"99001", "99002"} <= scored and before <= scored
    assert result["predictions_written"] == len(scored) == len(before) + 2


def test_rescoring_after_training_skips_an_isolated_last_day_and_says_so(
    api_store, tmp_path, monkeypatch
):
    # POST /train rescored as of the day after a mistyped last date: every customer but one
    # was stored as idle for a year, with no word about it
    import shutil

    from retail_clv.ingest.pipeline import ingest_files
    from retail_clv.models import training
    from retail_clv.store.db import get_engine
    from retail_clv.store.predictions import read_predictions
    from retail_clv.store.queries import read_purchases
    from tests.models._toy import toy_result

    db = tmp_path / "store.db"
    shutil.copy(api_store[1], db)
    engine = get_engine(f"sqlite:///{db}")
    last = read_purchases(engine)["invoice_date"].max().date()
    stray = last + dt.timedelta(days=400)
    typo = tmp_path / "typo.csv"
    typo.write_text(
        "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"
        f"900001,85048,LIGHTS,3,{stray} 10:00,2.50,99001,France\n"
    )
    ingest_files([typo], engine, progress=False)
    monkeypatch.setattr(training, "train", lambda *args, **kwargs: toy_result())
    try:
        as_of = last - dt.timedelta(days=30)  # an explicit date, as the refusal asks
        result = services.run_training(
            engine, tmp_path / "models", as_of, 30, "quick", lambda f, m: None
        )
        stored = read_predictions(engine)
    finally:
        engine.dispose()
    day_after = last + dt.timedelta(days=1)
    assert stored["as_of"].unique().to_list() == [day_after]
    [note] = result["warnings"]
    assert note.startswith(f"the scores were written as of {day_after}, the day after the")
    assert f"not after the last purchase day, {stray}, which stands 400 days" in note
