from fastapi.testclient import TestClient


def test_rejections_total_matches_the_ingest_report(store_client: TestClient, api_store) -> None:
    report = api_store[2]
    body = store_client.get("/rejections").json()
    assert body["total"] == report["rows_rejected"]
    assert body["page"] == 1
    assert body["page_size"] == 50
    assert len(body["items"]) == min(50, report["rows_rejected"])
    item = body["items"][0]
    assert {"row_number", "reasons", "raw_invoice", "raw_customer_id", "source_file"} <= set(item)
    assert "row_hash" not in item


def test_rejections_filter_by_reason_counts_match(store_client: TestClient, api_store) -> None:
    for reason, count in api_store[2]["reason_counts"].items():
        body = store_client.get("/rejections", params={"reason": reason, "page_size": 5}).json()
        assert body["total"] == count, reason
        assert all(reason in item["reasons"].split("|") for item in body["items"])


def test_rejections_pages_do_not_overlap(store_client: TestClient) -> None:
    first = store_client.get("/rejections", params={"page": 1, "page_size": 7}).json()["items"]
    second = store_client.get("/rejections", params={"page": 2, "page_size": 7}).json()["items"]
    assert len(first) == len(second) == 7
    assert {i["id"] for i in first}.isdisjoint({i["id"] for i in second})
    assert max(i["id"] for i in first) < min(i["id"] for i in second)


def test_rejections_page_past_the_end_is_empty(store_client: TestClient) -> None:
    body = store_client.get("/rejections", params={"page": 100000, "page_size": 500}).json()
    assert body["items"] == []
    assert body["total"] > 0


def test_rejections_unknown_reason_is_422_listing_valid_codes(store_client: TestClient) -> None:
    response = store_client.get("/rejections", params={"reason": "TYPO"})
    assert response.status_code == 422
    assert "MISSING_CUSTOMER_ID" in response.json()["detail"]


def test_rejections_reason_is_case_insensitive(store_client: TestClient, api_store) -> None:
    body = store_client.get("/rejections", params={"reason": "missing_customer_id"}).json()
    assert body["total"] == api_store[2]["reason_counts"]["MISSING_CUSTOMER_ID"]


def test_rejections_page_size_is_bounded(store_client: TestClient) -> None:
    assert store_client.get("/rejections", params={"page_size": 501}).status_code == 422
    assert store_client.get("/rejections", params={"page": 0}).status_code == 422
