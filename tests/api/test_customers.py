import datetime as dt
import sqlite3

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import db_path_of


def _expected_history(db, customer_id: str) -> dict:
    """Hand-computed from the transactions table with plain SQL."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT substr(invoice_date, 1, 7), sum(quantity * price), count(DISTINCT invoice) "
            "FROM transactions WHERE customer_id = ? GROUP BY 1 ORDER BY 1",
            (customer_id,),
        ).fetchall()
        first, last, orders = conn.execute(
            "SELECT min(invoice_date), max(invoice_date), count(DISTINCT invoice) "
            "FROM transactions WHERE customer_id = ?",
            (customer_id,),
        ).fetchone()
    return {"months": rows, "first": first, "last": last, "orders": orders}


def test_customer_history_matches_the_store(store_client: TestClient) -> None:
    db = db_path_of(store_client)
    with sqlite3.connect(db) as conn:
        customer_id = conn.execute(
            "SELECT customer_id FROM transactions GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
        ).fetchone()[0]
    body = store_client.get(f"/customers/{customer_id}").json()
    expected = _expected_history(db, customer_id)
    assert body["customer_id"] == customer_id
    assert [h["month"] for h in body["history"]] == [m for m, _, _ in expected["months"]]
    for got, (_, spend, orders) in zip(body["history"], expected["months"], strict=True):
        assert got["spend"] == pytest.approx(spend)
        assert got["orders"] == orders
    assert body["total_spend"] == pytest.approx(sum(s for _, s, _ in expected["months"]))
    assert body["total_spend"] == round(body["total_spend"], 2)  # cents, no float noise
    assert body["orders"] == expected["orders"]
    assert body["first_seen"].replace("T", " ")[:16] == expected["first"][:16]
    assert body["last_purchase"].replace("T", " ")[:16] == expected["last"][:16]
    assert body["country"]


def test_a_customer_who_moved_has_the_country_the_features_use(empty_client: TestClient) -> None:
    header = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country"
    rows = [
        "1,A1,MUG,2,2011-01-05 10:00:00,3.5,777,United Kingdom",
        "2,A1,MUG,1,2011-03-05 10:00:00,3.5,777,Germany",
    ]
    body = "\n".join([header, *rows]).encode()
    assert empty_client.post("/ingest", files={"file": ("m.csv", body)}).status_code == 200
    assert empty_client.get("/customers/777").json()["country"] == "United Kingdom"
    with sqlite3.connect(db_path_of(empty_client)) as conn:
        [(stored,)] = conn.execute("SELECT country FROM customers WHERE customer_id = '777'")
    assert stored == "United Kingdom"


def test_unknown_customer_history_is_404(store_client: TestClient) -> None:
    response = store_client.get("/customers/NOPE-1")
    assert response.status_code == 404
    assert "NOPE-1" in response.json()["detail"]


def test_customer_prediction_is_the_stored_row(client: TestClient, api_data) -> None:
    from retail_clv.store.db import get_engine
    from retail_clv.store.predictions import read_prediction

    customer_id = api_data.scored_ids[3]
    body = client.get(f"/customers/{customer_id}/prediction").json()
    stored = read_prediction(get_engine(f"sqlite:///{db_path_of(client)}"), customer_id)
    assert stored is not None
    stored.pop("created_at")
    assert body.pop("warnings") == []  # written by the active run
    assert body == stored
    assert body["model_run_id"] == api_data.run_id
    assert body["as_of"] == api_data.as_of.isoformat()
    assert body["predicted_spend_30d_model1"] >= 0


def test_unknown_customer_prediction_is_404_with_a_clear_message(client: TestClient) -> None:
    response = client.get("/customers/00000/prediction")
    assert response.status_code == 404
    assert response.json()["detail"].startswith("No stored prediction for customer '00000'")


def test_prediction_written_after_start_is_served_at_once(client: TestClient) -> None:
    import polars as pl

    from retail_clv.store.db import get_engine
    from retail_clv.store.predictions import write_predictions

    engine = get_engine(f"sqlite:///{db_path_of(client)}")
    frame = pl.DataFrame(
        {
            "customer_id": ["NEW-1"],
            "predicted_spend_30d_model1": [12.5],
            "predicted_spend_30d_model2": [13.5],
            "predicted_products_30d": [2.0],
        }
    )
    write_predictions(engine, frame, "run-x", dt.date(2011, 1, 1), 30)
    body = client.get("/customers/NEW-1/prediction").json()
    assert body["predicted_spend_30d_model2"] == 13.5
    assert body["model_run_id"] == "run-x"


def test_prediction_cache_reloads_when_the_table_changes(client: TestClient, api_data) -> None:
    import polars as pl

    from retail_clv.store.db import get_engine
    from retail_clv.store.predictions import write_predictions

    customer_id = api_data.scored_ids[0]
    engine = get_engine(f"sqlite:///{db_path_of(client)}")
    frame = pl.DataFrame(
        {
            "customer_id": [customer_id],
            "predicted_spend_30d_model1": [1.0],
            "predicted_spend_30d_model2": [2.0],
            "predicted_products_30d": [3.0],
        }
    )
    write_predictions(engine, frame, "run-y", dt.date(2011, 2, 2), 30)
    state = client.app.state.clv
    assert state.predictions.refresh(state.engine) is True
    body = client.get(f"/customers/{customer_id}/prediction").json()
    assert body["model_run_id"] == "run-y"
    assert body["predicted_products_30d"] == 3.0


def test_a_score_of_an_earlier_run_says_the_active_model_changed(
    client: TestClient, api_data
) -> None:
    """After another run becomes active, the stored score is served with a note naming both."""
    import os

    from retail_clv.models.registry import save_run
    from tests.models._toy import toy_result

    first, second = api_data.scored_ids[0], api_data.scored_ids[1]
    state = client.app.state.clv
    before = client.get(f"/customers/{first}/prediction").json()
    assert before["warnings"] == []
    new = save_run(toy_result(), state.settings.models_dir, {"n_purchases": 4}).name
    state.follow_latest()  # what the background refresher does every 2 seconds
    assert client.get("/models/active").json()["run_id"] == new
    after = client.get(f"/customers/{first}/prediction").json()
    assert {k: v for k, v in after.items() if k != "warnings"} == {
        k: v for k, v in before.items() if k != "warnings"
    }  # the stored score itself is still served
    [note] = after["warnings"]
    assert f"written by model run {api_data.run_id}" in note
    assert f"the active model is run {new}" in note
    assert "clv predict" in note and "POST /train" in note
    # a cache miss read from the table carries the same note
    state.predictions._heads.pop(second)
    missed = client.get(f"/customers/{second}/prediction").json()
    assert missed["customer_id"] == second
    assert missed["warnings"] == [note]
    # going back to the run that wrote the scores clears the note
    os.remove(state.settings.models_dir / "latest")
    os.symlink(api_data.run_id, state.settings.models_dir / "latest")
    state.follow_latest()
    assert client.get(f"/customers/{first}/prediction").json()["warnings"] == []


def test_a_score_served_without_any_loaded_model_says_so(make_client, api_data) -> None:
    client = make_client(db=api_data.db_path)  # the predictions table, no models folder
    body = client.get(f"/customers/{api_data.scored_ids[0]}/prediction").json()
    assert body["model_run_id"] == api_data.run_id
    [note] = body["warnings"]
    assert f"written by model run {api_data.run_id}" in note
    assert "no model is loaded" in note


def test_customer_prediction_openapi_documents_the_warnings(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    assert "warnings" in schema["CustomerPredictionOut"]["properties"]


def test_customer_features_have_the_model_features(client: TestClient, api_data) -> None:
    customer_id = api_data.scored_ids[0]
    body = client.get(f"/customers/{customer_id}/features").json()
    meta = client.get("/models/active").json()
    assert list(body["features"]) == meta["feature_names"]
    assert body["as_of"] == api_data.as_of.isoformat()
    assert body["customer_id"] == customer_id
    assert body["warnings"] == []
    late = client.get(f"/customers/{customer_id}/features", params={"as_of": "2099-01-01"}).json()
    [warning] = late["warnings"]
    assert warning.startswith("as_of 2099-01-01 is ") and "after the day after the last" in warning


def test_customer_features_before_first_purchase_is_404(client: TestClient, api_data) -> None:
    customer_id = api_data.scored_ids[0]
    response = client.get(f"/customers/{customer_id}/features", params={"as_of": "2000-01-01"})
    assert response.status_code == 404
    assert "2000-01-01" in response.json()["detail"]


def test_customer_path_is_bounded(client: TestClient) -> None:
    assert client.get(f"/customers/{'9' * 65}/prediction").status_code in (404, 422)
    assert client.get(f"/customers/{'9' * 65}").status_code == 422


def test_customer_ids_are_normalised_like_ingestion(client: TestClient, api_data) -> None:
    customer_id = next(i for i in api_data.scored_ids if i.isdigit())
    plain = client.get(f"/customers/{customer_id}/prediction").json()
    assert client.get(f"/customers/{customer_id}.0/prediction").json() == plain
    assert client.get(f"/customers/%20{customer_id}.0/prediction").json() == plain
    assert client.get(f"/customers/{customer_id}.0").json()["customer_id"] == customer_id
    predicted = client.post("/predict", json={"customer_ids": [f" {customer_id}.0 "]}).json()
    assert [p["customer_id"] for p in predicted["predictions"]] == [customer_id]


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("13085.0", "13085"),
        ("13085.00", "13085"),
        ("12.000", "12.000"),  # perhaps 12,000 written with a thousands dot: not 12
        (" 13085 ", "13085"),
        ("13085.5", "13085.5"),
        ("A13.0", "A13.0"),
    ],
)
def test_normalise_customer_id(raw: str, normalised: str) -> None:
    from retail_clv.api.schemas import normalise_customer_id

    assert normalise_customer_id(raw) == normalised


def test_customer_ids_with_a_slash_can_be_looked_up(empty_client: TestClient) -> None:
    content = (
        b"Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"
        b"5001,85048,LIGHT,2,2010-01-05 10:00:00,3.5,A/1,France\n"
        b"5002,85048,LIGHT,1,2010-02-05 10:00:00,3.5,A/1,France\n"
    )
    assert empty_client.post("/ingest", files={"file": ("s.csv", content)}).status_code == 200
    summary = empty_client.get("/customers/A%2F1")
    assert summary.status_code == 200, summary.text
    assert summary.json()["customer_id"] == "A/1"
    assert summary.json()["orders"] == 2
    features = empty_client.get("/customers/A%2F1/features")
    assert features.status_code == 200, features.text
    assert features.json()["features"]["frequency"] == 2
    missing = empty_client.get("/customers/A%2F1/prediction")
    assert missing.status_code == 404
    assert "'A/1'" in missing.json()["detail"]
    assert empty_client.get("/customers/A%2F2").status_code == 404
