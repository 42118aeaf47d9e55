import datetime as dt

import pytest
from fastapi.testclient import TestClient

from retail_clv.api.schemas import MAX_PREDICT_ITEMS


def test_predict_ids_scores_known_and_lists_unknown_in_order(client: TestClient, api_data) -> None:
    known = api_data.scored_ids[:5]
    ids = [known[2], "GHOST-1", known[0], known[2], "GHOST-2", known[4]]
    body = client.post("/predict", json={"customer_ids": ids}).json()
    assert body["model_run_id"] == api_data.run_id
    assert body["as_of"] == api_data.as_of.isoformat()
    assert [p["customer_id"] for p in body["predictions"]] == [known[2], known[0], known[4]]
    assert body["unknown_customer_ids"] == ["GHOST-1", "GHOST-2"]
    for row in body["predictions"]:
        assert row["predicted_spend_30d_model1"] >= 0
        assert row["predicted_products_30d"] >= 0
        assert row["country"]


def test_predict_ids_match_the_stored_scores(client: TestClient, api_data) -> None:
    ids = api_data.scored_ids[:20]
    body = client.post("/predict", json={"customer_ids": ids}).json()
    for row in body["predictions"]:
        stored = client.get(f"/customers/{row['customer_id']}/prediction").json()
        assert row["predicted_spend_30d_model1"] == pytest.approx(
            stored["predicted_spend_30d_model1"]
        )
        assert row["predicted_spend_30d_model2"] == pytest.approx(
            stored["predicted_spend_30d_model2"]
        )


def test_predict_rows_equal_predict_ids_for_the_same_features(client: TestClient, api_data) -> None:
    # The store's features as served, nulls included (interval features of one-day customers):
    # sent back as rows they must give the same scores as the ids.
    ids = api_data.scored_ids[:40]
    rows = []
    for customer_id in ids:
        features = client.get(f"/customers/{customer_id}/features").json()["features"]
        rows.append({"customer_id": customer_id, **features})
    assert any(v is None for row in rows for v in row.values()), "no null feature in the sample"
    response = client.post("/predict", json={"rows": rows})
    assert response.status_code == 200, response.text
    by_rows = response.json()
    by_ids = client.post("/predict", json={"customer_ids": ids}).json()
    assert by_rows["as_of"] is None
    for a, b in zip(by_rows["predictions"], by_ids["predictions"], strict=True):
        assert a["customer_id"] == b["customer_id"]
        for column in ("predicted_spend_30d_model1", "predicted_spend_30d_model2"):
            assert a[column] == pytest.approx(b[column])
        assert a["predicted_products_30d"] == pytest.approx(b["predicted_products_30d"])


def test_predict_accepts_numeric_customer_ids(client: TestClient, api_data) -> None:
    numeric = [i for i in api_data.scored_ids if i.isdigit()][:2]
    assert numeric, "the sample store has numeric customer ids"
    body = client.post(
        "/predict", json={"customer_ids": [int(numeric[0]), float(numeric[1])]}
    ).json()
    assert [p["customer_id"] for p in body["predictions"]] == numeric


def test_predict_ids_are_normalised_as_ingestion_does(client: TestClient, api_data) -> None:
    numeric = [i for i in api_data.scored_ids if i.isdigit()][:1]
    body = client.post(
        "/predict", json={"customer_ids": [f" {numeric[0]}.0 ", "Someone@Shop.DE", 1.5e3]}
    ).json()
    assert [p["customer_id"] for p in body["predictions"]] == numeric
    assert body["unknown_customer_ids"] == ["someone@shop.de", "1500"]
    # in rows too: a numeric id is accepted and written as ingestion writes it
    features = client.get(f"/customers/{numeric[0]}/features").json()["features"]
    rows = client.post("/predict", json={"rows": [{"customer_id": float(numeric[0]), **features}]})
    assert rows.status_code == 200, rows.text
    assert rows.json()["predictions"][0]["customer_id"] == numeric[0]


def test_predict_non_finite_numeric_ids_are_422(client: TestClient) -> None:
    response = client.post(
        "/predict", content=b'{"customer_ids": [NaN]}', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert "must be text or a finite number" in response.text


def test_predict_bad_customer_id_error_points_at_the_item(client: TestClient) -> None:
    response = client.post("/predict", json={"customer_ids": ["ok", {"a": 1}]})
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [["body", "customer_ids", 1]]


def test_predict_earlier_as_of_only_scores_customers_seen_before(client, api_data) -> None:
    ids = api_data.scored_ids
    early = client.post("/predict", json={"customer_ids": ids, "as_of": "2010-02-01"}).json()
    assert early["as_of"] == "2010-02-01"
    assert 0 < len(early["predictions"]) < len(ids)
    assert len(early["predictions"]) + len(early["unknown_customer_ids"]) == len(ids)


def test_predict_as_of_after_the_data_is_scored_with_a_warning(client, api_data) -> None:
    ids = api_data.scored_ids[:3]
    usual = client.post("/predict", json={"customer_ids": ids}).json()
    assert usual["warnings"] == []
    late = dt.date.fromisoformat(usual["as_of"]) + dt.timedelta(days=400)
    body = client.post("/predict", json={"customer_ids": ids, "as_of": late.isoformat()}).json()
    assert len(body["predictions"]) == 3
    [warning] = body["warnings"]
    assert warning.startswith(f"as_of {late} is 400 days after the day after the last purchase")


def test_predict_without_as_of_after_an_isolated_last_day_says_what_it_means(
    client, api_data
) -> None:
    ids = api_data.scored_ids[:3]
    last = dt.date.fromisoformat(  # the day after the last purchase
        client.post("/predict", json={"customer_ids": ids}).json()["as_of"]
    )
    stray = last + dt.timedelta(days=399)  # a mistyped year, 400 days after the rest
    row = f"X1,A,MUG,2,{stray} 10:00,3.5,{ids[0]},United Kingdom"
    header = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country"
    upload = {"file": ("typo.csv", f"{header}\n{row}\n".encode(), "text/csv")}
    assert client.post("/ingest", files=upload).status_code == 200
    body = client.post("/predict", json={"customer_ids": ids}).json()
    assert body["as_of"] == str(stray + dt.timedelta(days=1))
    assert body["warnings"][0].startswith(f"the last purchase day, {stray} (1 line), stands 400")
    assert (
        f"or pass as_of {last} to score as of the day after the other purchases"
        in (body["warnings"][0])
    )
    assert "anyway" not in body["warnings"][0]  # these scores are as of that day already
    chosen = client.post("/predict", json={"customer_ids": ids, "as_of": str(last)}).json()
    assert chosen["warnings"] == []  # an explicit date is the caller's
    features = client.get(f"/customers/{ids[1]}/features").json()
    assert features["warnings"][0].startswith(f"the last purchase day, {stray} (1 line)")
    assert client.get(f"/customers/{ids[1]}/features?as_of={last}").json()["warnings"] == []


def test_predict_as_of_before_the_runs_as_of_says_the_scores_are_fitted(
    client: TestClient, api_data
) -> None:
    run = client.get("/models/active").json()
    run_as_of = dt.date.fromisoformat(run["as_of"][:10])
    ids = api_data.scored_ids[:3]
    at_run = client.post("/predict", json={"customer_ids": ids, "as_of": str(run_as_of)}).json()
    assert at_run["warnings"] == []
    early = run_as_of - dt.timedelta(days=1)
    body = client.post("/predict", json={"customer_ids": ids, "as_of": str(early)}).json()
    [warning] = body["warnings"]
    assert warning.startswith(
        f"as_of {early} is before the as-of date of model run {run['run_id']}"
    )
    assert "fitted values, not a forecast" in warning


def test_predict_answers_the_runs_horizon(client: TestClient, api_data) -> None:
    by_id = client.post("/predict", json={"customer_ids": api_data.scored_ids[:1]}).json()
    assert by_id["horizon_days"] == 30
    by_row = client.post("/predict", json={"rows": [_row(client)]}).json()
    assert by_row["horizon_days"] == 30


def test_predict_as_of_before_any_data_invents_nothing(client: TestClient, api_data) -> None:
    ids = api_data.scored_ids[:10]
    body = client.post("/predict", json={"customer_ids": ids, "as_of": "1999-01-01"}).json()
    assert body["predictions"] == []
    assert body["unknown_customer_ids"] == ids


def _row(client: TestClient) -> dict:
    names = client.get("/models/active").json()["feature_names"]
    return {"customer_id": "X", **dict.fromkeys(names, 1.0)}


def test_predict_rows_missing_feature_is_422_naming_it(client: TestClient) -> None:
    row = _row(client)
    name = next(k for k in row if k != "customer_id")
    del row[name]
    response = client.post("/predict", json={"rows": [row]})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "rows", 0, name]
    assert name in error["msg"]


def test_predict_rows_unknown_feature_is_422_naming_it(client: TestClient) -> None:
    row = {**_row(client), "shoe_size": 42}
    response = client.post("/predict", json={"rows": [row, _row(client)]})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "rows", 0, "shoe_size"]
    assert "shoe_size" in error["msg"]


def test_predict_rows_non_numeric_value_is_422(client: TestClient) -> None:
    row = _row(client)
    name = next(k for k in row if k != "customer_id")
    row[name] = "lots"
    response = client.post("/predict", json={"rows": [row]})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == name


@pytest.mark.parametrize("value", [3.5e38, -1e39])
def test_predict_rows_value_beyond_float32_is_422_naming_it(client: TestClient, value) -> None:
    row = _row(client)
    name = next(k for k in row if k != "customer_id")
    row[name] = value
    response = client.post("/predict", json={"rows": [row]})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "rows", 0, name]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"customer_ids": ["1"], "rows": [{"customer_id": "1"}]},
        {"customer_ids": []},
        {"customer_ids": ["1"], "colour": "red"},
        {"rows": [{"customer_id": "1"}], "as_of": "2011-01-01"},
        {"customer_ids": ["1"], "as_of": "not-a-date"},
        {"customer_ids": [""]},
    ],
)
def test_predict_bad_bodies_are_422(client: TestClient, body: dict) -> None:
    response = client.post("/predict", json=body)
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], list)


def test_predict_unknown_top_level_field_is_named(client: TestClient) -> None:
    response = client.post("/predict", json={"customer_ids": ["1"], "colour": "red"})
    assert ["body", "colour"] in [e["loc"] for e in response.json()["detail"]]


def test_predict_more_than_the_limit_is_422(client: TestClient) -> None:
    ids = [str(i) for i in range(MAX_PREDICT_ITEMS + 1)]
    response = client.post("/predict", json={"customer_ids": ids})
    assert response.status_code == 422
    assert "10000" in response.text.replace(",", "")


def test_predict_at_the_limit_is_accepted(client: TestClient, api_data) -> None:
    ids = [f"GHOST-{i}" for i in range(MAX_PREDICT_ITEMS - 5)] + api_data.scored_ids[:5]
    body = client.post("/predict", json={"customer_ids": ids}).json()
    assert len(body["predictions"]) == 5
    assert len(body["unknown_customer_ids"]) == MAX_PREDICT_ITEMS - 5


def test_predict_without_a_model_is_503(store_client: TestClient) -> None:
    response = store_client.post("/predict", json={"customer_ids": ["1"]})
    assert response.status_code == 503
    assert "No model trained yet" in response.json()["detail"]


def test_predict_cache_follows_ingest(client: TestClient, api_data) -> None:
    """After an ingest the store snapshot (and its scores) is rebuilt."""
    state = client.app.state.clv
    before = state.store.get(state.engine)
    body = (
        "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"
        f"999001,85048,LIGHT,12,{api_data.as_of.isoformat()} 10:00:00,6.95,77777,France\n"
    )
    client.post("/ingest", files={"file": ("late.csv", body.encode())})
    after = state.store.get(state.engine)
    assert after is not before
    assert after.default_as_of == api_data.as_of + dt.timedelta(days=1)
    result = client.post("/predict", json={"customer_ids": ["77777"]}).json()
    assert [p["customer_id"] for p in result["predictions"]] == ["77777"]


def test_a_json_body_over_the_limit_is_413_before_it_is_parsed(
    make_client, api_data, monkeypatch
) -> None:
    # a 250 MB body was read and parsed whole (0.5 GB of server memory) before its 422
    from retail_clv.api import middleware

    monkeypatch.setattr(middleware, "MAX_JSON_BODY_BYTES", 1000)
    client = make_client(db=api_data.db_path, models_dir=api_data.models_dir)
    big = {"customer_ids": [f"{12000 + i}" for i in range(300)]}
    response = client.post("/predict", json=big)
    assert response.status_code == 413
    assert response.json()["detail"].startswith(
        "Request body too large: the limit is 0.001 MB for a JSON body"
    )

    def chunks():  # no Content-Length: counted while it arrives
        for _ in range(5):
            yield b'{"customer_ids": ["1"' + b" " * 400

    streamed = client.post(
        "/predict", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    assert "for a JSON body" in streamed.json()["detail"]
    small = client.post("/predict", json={"customer_ids": ["12347"]})
    assert small.status_code == 200, small.text
    # a multipart content type does not lift the limit outside the upload routes
    disguised = client.post(
        "/predict", content=b"x" * 5000, headers={"Content-Type": "multipart/form-data; boundary=B"}
    )
    assert disguised.status_code == 413
    # a browser sees the 413 with its CORS headers; bodiless methods are not counted
    origin = {"Origin": "http://localhost:8501"}
    cors = client.post("/predict", json=big, headers=origin)
    assert cors.status_code == 413
    assert cors.headers["access-control-allow-origin"] == "http://localhost:8501"
    assert client.get("/health", headers={"Content-Length": "99999"}).status_code != 413


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("x" * 100, "a customer id has at most 64 characters, not 100"),
        (" ", "a customer id cannot be blank"),
        ("a\x00b", "a customer id cannot hold a NUL character"),
    ],
)
def test_a_bad_customer_id_is_refused_in_words(client: TestClient, value: str, message: str):
    # pydantic's own words were "at most 64 items" and a regular expression
    response = client.post("/predict", json={"customer_ids": ["12347", value]})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "customer_ids", 1]
    assert error["msg"] == f"Value error, {message}"
