import json

import pytest
from fastapi.testclient import TestClient

from retail_clv.api.state import NO_MODEL_MESSAGE


def test_models_lists_the_run_as_active(client: TestClient, api_data) -> None:
    runs = client.get("/models").json()["runs"]
    assert [r["run_id"] for r in runs] == [api_data.run_id]
    assert runs[0]["active"] is True
    assert runs[0]["horizon_days"] == 30
    assert runs[0]["trained_at"]


def test_models_active_is_the_run_metadata(client: TestClient, api_data) -> None:
    meta = client.get("/models/active").json()
    on_disk = json.loads((api_data.models_dir / api_data.run_id / "metadata.json").read_text())
    assert meta["run_id"] == api_data.run_id
    assert meta["feature_names"] == on_disk["feature_names"]
    assert set(meta["metrics"]["models"]) >= {"model1", "model2"}
    assert "library_versions" in meta


def test_models_active_is_404_with_contract_message_without_a_model(
    empty_client: TestClient,
) -> None:
    response = empty_client.get("/models/active")
    assert response.status_code == 404
    assert response.json() == {"detail": NO_MODEL_MESSAGE}
    assert empty_client.get("/models").json() == {"runs": []}


def test_tampered_model_is_refused_with_the_reason(make_client, api_data, tmp_path) -> None:
    import shutil

    tampered_dir = tmp_path / "tampered-models"
    shutil.copytree(api_data.models_dir, tampered_dir, symlinks=True)
    run_dir = tampered_dir / api_data.run_id
    model_file = next(p for p in run_dir.iterdir() if p.suffix == ".joblib")
    model_file.write_bytes(model_file.read_bytes() + b"tampered")
    client = make_client(db=api_data.db_path, models_dir=tampered_dir)
    ready = client.get("/ready")
    assert ready.status_code == 503
    assert "checksum" in ready.json()["detail"].lower()
    assert client.get("/models/active").status_code == 503
    predict = client.post("/predict", json={"customer_ids": ["1"]})
    assert predict.status_code == 503
    assert "checksum" in predict.json()["detail"].lower()


def test_a_run_trained_by_another_process_is_followed(client: TestClient, api_data):
    from retail_clv.models.registry import save_run
    from tests.models._toy import toy_result

    assert client.get("/ready").json()["model_run_id"] == api_data.run_id
    state = client.app.state.clv  # type: ignore[attr-defined]
    new = save_run(toy_result(), state.settings.models_dir, {"n_purchases": 4}).name
    assert new != api_data.run_id
    state.follow_latest()  # what the background refresher does every 2 seconds
    # every endpoint serves the new run, as `clv models` shows it
    assert client.get("/ready").json()["model_run_id"] == new
    assert client.get("/models/active").json()["run_id"] == new
    runs = {r["run_id"]: r["active"] for r in client.get("/models").json()["runs"]}
    assert runs == {api_data.run_id: False, new: True}
    body = client.post("/predict", json={"customer_ids": api_data.scored_ids[:2]}).json()
    assert body["model_run_id"] == new and len(body["predictions"]) == 2


def test_the_first_run_is_picked_up_without_a_restart(empty_client: TestClient):
    from retail_clv.models.registry import save_run
    from tests.models._toy import toy_result

    assert empty_client.get("/models/active").status_code == 404
    state = empty_client.app.state.clv  # type: ignore[attr-defined]
    new = save_run(toy_result(), state.settings.models_dir, {"n_purchases": 4}).name
    state.follow_latest()
    assert empty_client.get("/models/active").json()["run_id"] == new


def test_the_background_refresher_follows_latest(tmp_path, api_data) -> None:
    import shutil
    import time

    from retail_clv.api.app import create_app
    from retail_clv.config import Settings
    from retail_clv.models.registry import save_run
    from tests.models._toy import toy_result

    models = tmp_path / "models"
    shutil.copytree(api_data.models_dir, models, symlinks=True)
    shutil.copy(api_data.db_path, tmp_path / "store.db")
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'store.db'}", models_dir=models)
    app = create_app(settings, warm_up=False, prediction_refresh_seconds=0.05)
    with TestClient(app) as client:
        assert client.get("/ready").json()["model_run_id"] == api_data.run_id
        new = save_run(toy_result(), models, {"n_purchases": 4}).name
        deadline = time.monotonic() + 10
        while client.get("/ready").json()["model_run_id"] != new:
            assert time.monotonic() < deadline, "the refresher never loaded the new run"
            time.sleep(0.05)


def test_a_latest_pointing_at_a_broken_run_keeps_the_loaded_model(client: TestClient, api_data):
    import os
    import shutil

    state = client.app.state.clv  # type: ignore[attr-defined]
    models_dir = state.settings.models_dir
    broken = models_dir / "20991231T000000Z-abcdef"
    shutil.copytree(models_dir / api_data.run_id, broken)
    model_file = next(p for p in broken.iterdir() if p.suffix == ".joblib")
    model_file.write_bytes(model_file.read_bytes() + b"tampered")
    os.remove(models_dir / "latest")
    os.symlink(broken.name, models_dir / "latest")
    state.follow_latest()
    assert client.get("/ready").json()["model_run_id"] == api_data.run_id  # still served
    assert (
        client.post("/predict", json={"customer_ids": api_data.scored_ids[:1]}).status_code == 200
    )


@pytest.mark.parametrize(
    ("recorded", "served"),
    [
        (
            "postgresql+psycopg://clv_admin@db.internal.corp:5432/retail",
            "postgresql+psycopg://…/retail",
        ),
        (
            "postgresql+psycopg://clv_admin:***@db.internal.corp:5432/retail",
            "postgresql+psycopg://…/retail",
        ),
        ("postgresql://u@h/retail?sslrootcert=/etc/ssl/ca.pem", "postgresql://…/retail"),
        ("postgresql://db.internal.corp", "postgresql://…"),
        ("sqlite:////srv/clv/data/retail_clv.db", "sqlite:///…/retail_clv.db"),
        ("sqlite:///data/retail_clv.db", "sqlite:///…/retail_clv.db"),
        ("sqlite:///retail_clv.db", "sqlite:///retail_clv.db"),
        ("sqlite:///C:\\clv\\retail_clv.db", "sqlite:///…/retail_clv.db"),
        ("sqlite://", "sqlite://"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
        ("not a url with user@host", "…"),
        (None, None),
    ],
)
def test_public_database_url_keeps_only_the_scheme_and_the_database_name(recorded, served):
    from retail_clv.api.routes.models import public_database_url

    assert public_database_url(recorded) == served


def test_models_active_does_not_serve_the_stores_user_host_or_port(client: TestClient, api_data):
    import polars as pl

    from retail_clv.models.registry import data_fingerprint, save_run
    from tests.models._toy import toy_result

    url = "postgresql+psycopg://clv_admin:s3cret@db.internal.corp:5432/retail"
    state = client.app.state.clv  # type: ignore[attr-defined]
    models_dir = state.settings.models_dir
    new = save_run(toy_result(), models_dir, data_fingerprint(pl.DataFrame(), url)).name
    state.follow_latest()
    response = client.get("/models/active")
    assert response.json()["run_id"] == new
    assert response.json()["data_fingerprint"]["database_url"] == "postgresql+psycopg://…/retail"
    for secret in ("clv_admin", "s3cret", "db.internal.corp", "5432"):
        assert secret not in response.text
        assert secret not in client.get("/models").text
    # the checksummed run on disk keeps what it recorded
    on_disk = json.loads((models_dir / new / "metadata.json").read_text())
    assert on_disk["data_fingerprint"]["database_url"].startswith("postgresql+psycopg://clv_admin@")
    assert client.get("/ready").json()["model_run_id"] == new  # checksums still verify
