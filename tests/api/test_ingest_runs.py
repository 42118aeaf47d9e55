"""``GET /ingest-runs`` and ``POST /ingest-runs/{run_id}/undo``: the CLI's undo, over HTTP."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import ClientFactory, db_path_of, table_counts

SECRET = "s3cret-key-for-tests"
HEADER = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"
A = "489434,85048,LIGHT,12,2009-12-01 07:45:00,6.95,13085,United Kingdom\n"
B = "489435,22041,CARD,4,2009-12-02 08:00:00,1.25,77777,France\n"


def ingest(client: TestClient, name: str, *lines: str, key: str | None = None) -> int:
    """POST /ingest a small CSV; return the ingest run id of its report."""
    headers = {"X-API-Key": key} if key else {}
    body = (HEADER + "".join(lines)).encode()
    response = client.post("/ingest", files={"file": (name, body)}, headers=headers)
    assert response.status_code == 200, response.text
    [report] = response.json()["reports"]
    return int(report["run_id"])


def test_ingest_runs_lists_the_runs_newest_first(store_client: TestClient, api_store) -> None:
    expected = api_store[2]
    [first] = store_client.get("/ingest-runs").json()["runs"]
    assert first["run_id"] == 1
    assert first["source_file"] == "synth.csv"
    assert first["status"] == "succeeded"
    for key in ("rows_read", "rows_loaded", "rows_rejected", "rows_duplicate"):
        assert first[key] == expected[key]
    assert first["file_format"] == "csv" and first["sheet"] is None
    assert first["finished_at"].endswith("Z") or first["finished_at"].endswith("+00:00")
    assert "sha256" not in first and "reason_counts" not in first and "id" not in first

    second = ingest(store_client, "more.csv", B)
    runs = store_client.get("/ingest-runs").json()["runs"]
    assert [(r["run_id"], r["source_file"]) for r in runs] == [
        (second, "more.csv"),
        (1, "synth.csv"),
    ]


def test_ingest_runs_of_an_empty_store_is_an_empty_list(empty_client: TestClient) -> None:
    response = empty_client.get("/ingest-runs")
    assert response.status_code == 200
    assert response.json() == {"runs": []}


def test_the_list_stays_open_when_a_key_is_set(make_client: ClientFactory, api_store) -> None:
    client = make_client(db=api_store[1], api_key=SECRET)
    assert client.get("/ingest-runs").status_code == 200


def test_undo_takes_the_runs_rows_out_and_marks_it_undone(empty_client: TestClient) -> None:
    kept = ingest(empty_client, "a.csv", A)
    before = table_counts(db_path_of(empty_client))
    run = ingest(empty_client, "b.csv", B, "C489436,22041,CARD,-4,2009-12-02 08:00,1.25,,France\n")
    response = empty_client.post(f"/ingest-runs/{run}/undo")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "run_id": run,
        "status": "undone",
        "deleted": {"transactions": 1, "cancellations": 0, "rejected_data": 1, "customers": 1},
    }
    after = table_counts(db_path_of(empty_client))
    for table in ("transactions", "cancellations", "rejected_data", "customers"):
        assert after[table] == before[table], table
    statuses = {r["run_id"]: r["status"] for r in empty_client.get("/ingest-runs").json()["runs"]}
    assert statuses == {kept: "succeeded", run: "undone"}


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"X-API-Key": "wrong"}, 403), ({"X-API-Key": SECRET}, 200)],
)
def test_undo_requires_the_api_key_when_configured(
    make_client: ClientFactory, headers: dict[str, str], status: int
) -> None:
    client = make_client(api_key=SECRET)
    run = ingest(client, "a.csv", A, key=SECRET)
    response = client.post(f"/ingest-runs/{run}/undo", headers=headers)
    assert response.status_code == status, response.text
    assert table_counts(db_path_of(client))["transactions"] == (0 if status == 200 else 1)
    if status == 401:
        assert "X-API-Key" in response.json()["detail"]


def test_the_key_is_checked_before_the_run_id(make_client: ClientFactory) -> None:
    client = make_client(api_key=SECRET)
    assert client.post("/ingest-runs/not-a-number/undo").status_code == 401
    response = client.post("/ingest-runs/not-a-number/undo", headers={"X-API-Key": SECRET})
    assert response.status_code == 422


@pytest.mark.parametrize("run_id", ["0", "-1", "2147483648", "99999999999999999999999"])
def test_an_impossible_run_id_is_a_422(store_client: TestClient, run_id: str) -> None:
    assert store_client.post(f"/ingest-runs/{run_id}/undo").status_code == 422


def test_an_unknown_run_is_a_404_with_the_stores_message(store_client: TestClient) -> None:
    response = store_client.post("/ingest-runs/99/undo")
    assert response.status_code == 404
    assert response.json() == {
        "detail": "there is no ingest run 99 in the store (see GET /ingest-runs)"
    }


def test_a_run_already_undone_is_a_409(
    store_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert store_client.post("/ingest-runs/1/undo").status_code == 200
    state = store_client.app.state.clv  # type: ignore[attr-defined]
    invalidated: list[bool] = []
    monkeypatch.setattr(state.store, "invalidate", lambda: invalidated.append(True))
    response = store_client.post("/ingest-runs/1/undo")
    assert response.status_code == 409
    assert response.json() == {"detail": "ingest run 1 was already undone"}
    assert invalidated == []  # a refused undo changed nothing


def test_a_run_whose_rows_a_later_run_skipped_is_a_409_until_that_one_is_undone(
    empty_client: TestClient,
) -> None:
    first = ingest(empty_client, "a.csv", A)
    second = ingest(empty_client, "a_and_b.csv", A, B)  # A skipped as a duplicate of run 1
    response = empty_client.post(f"/ingest-runs/{first}/undo")
    assert response.status_code == 409
    detail = response.json()["detail"]
    assert detail.startswith(
        f"ingest run {first} has later runs that skipped rows as duplicates ({second})"
    )
    assert "undo those runs first (newest first)" in detail
    assert table_counts(db_path_of(empty_client))["transactions"] == 2
    assert empty_client.post(f"/ingest-runs/{second}/undo").status_code == 200
    assert empty_client.post(f"/ingest-runs/{first}/undo").status_code == 200
    assert table_counts(db_path_of(empty_client))["transactions"] == 0


def test_an_undone_customer_is_gone_from_the_servers_copy_of_the_store(
    empty_client: TestClient,
) -> None:
    ingest(empty_client, "a.csv", A)
    run = ingest(empty_client, "b.csv", B)
    assert empty_client.get("/customers/77777").status_code == 200  # in the server's copy now
    assert empty_client.post(f"/ingest-runs/{run}/undo").status_code == 200
    assert empty_client.get("/customers/77777").status_code == 404
    assert empty_client.get("/customers/13085").status_code == 200


def test_undo_drops_the_servers_copy_itself(
    empty_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not only through the store's signature: the route forgets the copy, as POST /ingest does."""
    from retail_clv.api.state import StoreCache

    run = ingest(empty_client, "b.csv", B)
    monkeypatch.setattr(StoreCache, "signature", staticmethod(lambda engine: ("frozen",)))
    assert empty_client.get("/customers/77777").status_code == 200
    assert empty_client.post(f"/ingest-runs/{run}/undo").status_code == 200
    assert empty_client.get("/customers/77777").status_code == 404


def test_upload_warnings_point_to_the_undo_endpoint_not_the_cli(empty_client: TestClient) -> None:
    ingest(empty_client, "a.csv", A)
    again = A.replace("2009-12-01 07:45:00", "12/1/2009 7:45")  # same sale, other spelling
    far = B.replace("2009-12-02", "2011-12-02")  # two purchase days two years apart
    response = empty_client.post(
        "/ingest", files={"file": ("again.csv", (HEADER + again + far).encode())}
    )
    [report] = response.json()["reports"]
    warnings = " ".join(report["warnings"])
    assert "clv undo-ingest" not in warnings
    assert (
        "take this file out again with POST /ingest-runs/RUN_ID/undo (RUN_ID: the report's "
        "run_id; later runs that skipped duplicates must be undone first)"
    ) in warnings
    assert (
        "(if its rows were stored, undo that ingest run first: POST /ingest-runs/RUN_ID/undo)"
        in (warnings)
    )
