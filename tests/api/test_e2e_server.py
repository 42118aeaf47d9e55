"""End to end: a real ``clv serve`` process on a free localhost port, spoken to over HTTP."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests._ports import free_port

API_KEY = "e2e-secret-key-123"


@pytest.fixture
def live_server(api_data, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    shutil.copy(api_data.db_path, tmp_path / "store.db")
    shutil.copytree(api_data.models_dir, tmp_path / "models", symlinks=True)
    port = free_port()
    log = tmp_path / "server.log"
    env = {**os.environ, "CLV_API_KEY": API_KEY}
    command = [
        sys.executable,
        "-m",
        "retail_clv",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--db",
        f"sqlite:///{tmp_path / 'store.db'}",
        "--models-dir",
        str(tmp_path / "models"),
    ]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise AssertionError(f"server exited early:\n{log.read_text()}")
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"server did not start:\n{log.read_text()}")
            time.sleep(0.1)
        yield base, log
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def test_real_server_answers_over_http(live_server, api_data) -> None:
    base, log = live_server
    customer_id = api_data.scored_ids[0]
    with httpx.Client(base_url=base, timeout=30) as http:
        ready = http.get("/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json() == {
            "status": "ready",
            "database": "ok",
            "model_run_id": api_data.run_id,
        }
        for path in ("/health", "/ready"):  # health checkers often send HEAD
            head = http.head(path)
            assert head.status_code == 200, path
            assert head.content == b""
        stored = http.get(f"/customers/{customer_id}/prediction", headers={"X-Request-ID": "e2e-1"})
        assert stored.status_code == 200
        assert stored.headers["x-request-id"] == "e2e-1"
        assert stored.json()["model_run_id"] == api_data.run_id
        assert http.get("/customers/NOBODY/prediction").status_code == 404
        predicted = http.post("/predict", json={"customer_ids": [customer_id, "NOBODY"]})
        assert predicted.status_code == 200
        assert [p["customer_id"] for p in predicted.json()["predictions"]] == [customer_id]
        assert predicted.json()["unknown_customer_ids"] == ["NOBODY"]
        assert http.post("/train", json={}).status_code == 401
        assert http.post("/train", json={}, headers={"X-API-Key": "wrong"}).status_code == 403
        csv = http.post(
            "/pipeline",
            files={"file": ("synth.csv", api_data.raw_csv.read_bytes())},
            headers={"Accept": "text/csv"},
        )
        assert csv.status_code == 200
        assert csv.text.splitlines()[0].startswith("customer_id,predicted_spend_30d_model1")
    time.sleep(0.2)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    access = [
        line
        for line in lines
        if line.get("logger") == "retail_clv.api.access" and line.get("request_id") == "e2e-1"
    ]
    assert access and access[0]["status"] == 200
    assert access[0]["path"] == f"/customers/{customer_id}/prediction"
