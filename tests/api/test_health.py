import sqlalchemy as sa
from fastapi.testclient import TestClient

from retail_clv.api.state import NO_MODEL_MESSAGE


def test_health_is_ok(empty_client: TestClient) -> None:
    response = empty_client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_health_and_ready_answer_head_like_get(client: TestClient, empty_client) -> None:
    for path in ("/health", "/ready"):
        got, head = client.get(path), client.head(path)
        assert head.status_code == got.status_code == 200, path
        assert head.content == b""
        assert head.headers["content-type"] == got.headers["content-type"]
        assert head.headers["content-length"] == got.headers["content-length"]
        assert head.headers["x-request-id"]
    assert empty_client.head("/health").status_code == 200
    assert empty_client.head("/ready").status_code == 503  # no model: not ready, as with GET


def test_ready_is_503_with_reason_without_a_model(empty_client: TestClient) -> None:
    response = empty_client.get("/ready")
    assert response.status_code == 503
    assert response.json() == {"detail": NO_MODEL_MESSAGE}


def test_ready_is_503_when_the_database_is_unreachable(empty_client: TestClient, tmp_path) -> None:
    state = empty_client.app.state.clv
    state.engine = sa.create_engine(f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}")
    response = empty_client.get("/ready")
    assert response.status_code == 503
    assert response.json()["detail"].startswith("Database unreachable")


def test_request_id_is_echoed_when_safe_and_generated_otherwise(empty_client: TestClient) -> None:
    echoed = empty_client.get("/health", headers={"X-Request-ID": "abc-123.x"})
    assert echoed.headers["x-request-id"] == "abc-123.x"
    generated = empty_client.get("/health", headers={"X-Request-ID": "bad id\twith spaces"})
    assert generated.headers["x-request-id"] != "bad id\twith spaces"
    assert len(generated.headers["x-request-id"]) == 32
    other = empty_client.get("/health")
    assert other.headers["x-request-id"] != generated.headers["x-request-id"]


def test_access_log_line_carries_request_id_status_and_duration(
    empty_client: TestClient, caplog
) -> None:
    with caplog.at_level("INFO", logger="retail_clv.api.access"):
        empty_client.get("/models/active", headers={"X-Request-ID": "req-42"})
    [record] = [r for r in caplog.records if r.name == "retail_clv.api.access"]
    assert record.request_id == "req-42"  # type: ignore[attr-defined]
    assert record.status == 404  # type: ignore[attr-defined]
    assert record.path == "/models/active"  # type: ignore[attr-defined]
    assert record.duration_ms >= 0  # type: ignore[attr-defined]


def test_cors_allows_configured_origin_only(make_client) -> None:
    client = make_client(cors_origins=["http://dash.example"])
    allowed = client.options(
        "/predict",
        headers={"Origin": "http://dash.example", "Access-Control-Request-Method": "POST"},
    )
    assert allowed.headers["access-control-allow-origin"] == "http://dash.example"
    denied = client.get("/health", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in denied.headers


def test_unexpected_error_is_json_500_with_request_id_not_the_message(
    empty_client: TestClient, monkeypatch
) -> None:
    from retail_clv.api import services

    def boom(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(services, "list_runs", boom)
    response = empty_client.get("/models", headers={"X-Request-ID": "trace-me"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "trace-me"
    assert "trace-me" in response.json()["detail"]
    assert "secret" not in response.text


def test_openapi_lists_every_resource(empty_client: TestClient) -> None:
    paths = set(empty_client.get("/openapi.json").json()["paths"])
    assert {
        "/health",
        "/ready",
        "/models",
        "/models/active",
        "/customers/{customer_id}",
        "/customers/{customer_id}/features",
        "/customers/{customer_id}/prediction",
        "/predict",
        "/pipeline",
        "/ingest",
        "/train",
        "/jobs/{job_id}",
        "/rejections",
    } <= paths
