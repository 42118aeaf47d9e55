from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import db_path_of, table_counts

SECRET = "s3cret-key-for-tests"
HEADER = b"Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"


def test_ingest_loads_the_file_and_reports(empty_client: TestClient, api_store) -> None:
    raw, _, expected = api_store
    response = empty_client.post("/ingest", files={"file": ("synth.csv", raw.read_bytes())})
    assert response.status_code == 200, response.text
    [report] = response.json()["reports"]
    for key in ("rows_read", "rows_loaded", "rows_rejected", "rows_duplicate", "reason_counts"):
        assert report[key] == expected[key]
    assert report["source_file"] == "synth.csv"
    counts = table_counts(db_path_of(empty_client))
    assert counts["transactions"] == expected["rows_loaded"]
    assert counts["ingest_runs"] == 1


def test_ingest_twice_adds_nothing(store_client: TestClient, api_store) -> None:
    raw, _, expected = api_store
    before = table_counts(db_path_of(store_client))
    response = store_client.post("/ingest", files={"file": ("synth.csv", raw.read_bytes())})
    [report] = response.json()["reports"]
    assert report["rows_loaded"] == 0
    assert report["rows_duplicate"] == expected["rows_read"]
    after = table_counts(db_path_of(store_client))
    assert after["transactions"] == before["transactions"]


def test_ingest_refreshes_the_customer_cache(empty_client: TestClient, api_store) -> None:
    raw = api_store[0]
    first = raw.read_text().splitlines()
    customer = first[1].split(",")[6].removesuffix(".0")
    assert empty_client.get(f"/customers/{customer}").status_code == 404
    empty_client.post("/ingest", files={"file": ("synth.csv", raw.read_bytes())})
    assert empty_client.get(f"/customers/{customer}").status_code == 200


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"X-API-Key": "wrong"}, 403), ({"X-API-Key": SECRET}, 200)],
)
def test_ingest_requires_the_api_key_when_configured(
    make_client, headers: dict[str, str], status: int, tmp_path: Path
) -> None:
    client = make_client(api_key=SECRET)
    body = (
        "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"
        "489434,85048,LIGHT,12,2009-12-01 07:45:00,6.95,13085.0,United Kingdom\n"
    )
    response = client.post("/ingest", files={"file": ("a.csv", body.encode())}, headers=headers)
    assert response.status_code == status, response.text
    expected_rows = 1 if status == 200 else 0
    assert table_counts(db_path_of(client))["transactions"] == expected_rows
    if status == 401:
        assert "X-API-Key" in response.json()["detail"]


def test_reads_stay_open_when_a_key_is_set(make_client) -> None:
    client = make_client(api_key=SECRET)
    assert client.get("/rejections").status_code == 200
    assert client.get("/models").status_code == 200


def test_ingest_day_first_query_stores_day_first_dates(empty_client: TestClient) -> None:
    content = HEADER + b"5001,85048,LIGHT,2,02/03/2010 10:00,3.5,4242,United Kingdom\n"
    response = empty_client.post(
        "/ingest", files={"file": ("d.csv", content)}, params={"day_first": "true"}
    )
    assert response.status_code == 200, response.text
    [report] = response.json()["reports"]
    assert report["rows_loaded"] == 1
    assert report["date_min"].startswith("2010-03-02")


def test_an_ingest_without_any_valid_purchase_line_says_so(empty_client: TestClient) -> None:
    # the CLI exits 1 for such a file; the API answered 200 with no warning at all
    content = (
        HEADER + b"5001,85048,LIGHT,2,2010-03-02 10:00,0,4242,United Kingdom\n"
        b"5002,85048,LIGHT,-1,2010-03-02 10:00,3.5,,United Kingdom\n"
    )
    response = empty_client.post("/ingest", files={"file": ("none_valid.csv", content)})
    assert response.status_code == 200, response.text
    [report] = response.json()["reports"]
    assert report["valid_lines"] == 0
    assert report["warnings"][-1] == (
        "no valid purchase line was loaded from none_valid.csv (2 rows rejected, 0 "
        "duplicates); top rejection reasons: MISSING_CUSTOMER_ID 1, NON_POSITIVE_QUANTITY 1, "
        "ZERO_PRICE 1"
    )


def test_month_first_query_and_the_api_wording_of_its_remedy(empty_client: TestClient) -> None:
    content = (
        HEADER + b"5001,85048,LIGHT,2,01/03/2010 10:00,3.5,4242,United Kingdom\n"
        b"5002,85048,LIGHT,2,03/03/2010 10:00,3.5,4242,United Kingdom\n"
    )
    decided = empty_client.post("/ingest", files={"file": ("a.csv", content)})
    [report] = decided.json()["reports"]
    assert report["date_min"].startswith("2010-03-01")  # the compact reading: day-first
    [warning] = [w for w in report["warnings"] if "read day-first" in w]
    assert warning.endswith(
        "send it again with the query parameter month_first=true (if its rows were stored, "
        "undo that ingest run first: POST /ingest-runs/RUN_ID/undo)"
    )
    forced = empty_client.post(
        "/ingest",
        files={"file": ("b.csv", content.replace(b"500", b"600"))},
        params={"month_first": "true"},
    )
    assert forced.json()["reports"][0]["date_min"].startswith("2010-01-03")
    both = empty_client.post(
        "/ingest",
        files={"file": ("c.csv", content)},
        params={"month_first": "true", "day_first": "true"},
    )
    assert both.status_code == 422
    assert both.json()["detail"] == "Send day_first=true or month_first=true, not both"


def test_the_no_purchase_warning_names_the_file_as_the_client_sent_it(
    empty_client: TestClient,
) -> None:
    content = HEADER + b"5001,85048,LIGHT,2,2010-03-02 10:00,0,4242,United Kingdom\n"
    response = empty_client.post("/ingest", files={"file": ("März export (1).csv", content)})
    [report] = response.json()["reports"]
    assert "no valid purchase line was loaded from März export (1).csv" in report["warnings"][-1]


def test_a_refused_upload_touches_neither_the_store_nor_its_cache(
    empty_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = empty_client.app.state.clv  # type: ignore[attr-defined]
    invalidated: list[bool] = []
    monkeypatch.setattr(state.store, "invalidate", lambda: invalidated.append(True))
    header = "Invoice,StockCode,Description,Quantity,InvoiceDate,Customer ID,Country\n"
    line = "489434,85048,LIGHT,12,2009-12-01 07:45:00,13085,United Kingdom\n"
    response = empty_client.post("/ingest", files={"file": ("a.csv", (header + line).encode())})
    assert response.status_code == 422, response.text
    assert "required column 'price' is missing in a.csv" in response.json()["detail"]
    assert invalidated == []
    assert table_counts(db_path_of(empty_client))["ingest_runs"] == 0

    header = header.replace("Customer ID", "Price,Customer ID")
    line = line.replace(",13085,", ",6.95,13085,")
    response = empty_client.post("/ingest", files={"file": ("b.csv", (header + line).encode())})
    assert response.status_code == 200, response.text
    assert invalidated == [True]


def _shop_workbook(tmp_path: Path) -> bytes:
    """An orders sheet beside a returns sheet that names most required columns."""
    from tests.ingest.test_pipeline import _orders, _workbook

    returns = _orders(3).drop("Price").rename({"Description": "Reason"})
    return _workbook(
        tmp_path / "shop.xlsx", {"Orders": _orders(2), "Returns": returns}
    ).read_bytes()


def test_ingest_sheet_query_reads_only_the_named_sheets(
    empty_client: TestClient, tmp_path: Path
) -> None:
    # the returns sheet stopped the workbook, and the hint named an option only the CLI has
    content = _shop_workbook(tmp_path)
    refused = empty_client.post("/ingest", files={"file": ("shop.xlsx", content)})
    assert refused.status_code == 422, refused.text
    detail = refused.json()["detail"]
    assert "required column 'price' is missing in shop.xlsx (sheet 'Returns')" in detail
    assert detail.endswith(
        "ingest only the sheets of transactions (send it again with the query parameter "
        "sheet=<sheet name> for each sheet to read: 'Orders'), or save them alone as CSV and "
        "ingest that"
    )
    assert "--sheet" not in detail and "clv ingest" not in detail
    assert table_counts(db_path_of(empty_client))["ingest_runs"] == 0

    chosen = empty_client.post(
        "/ingest", files={"file": ("shop.xlsx", content)}, params={"sheet": "Orders"}
    )
    assert chosen.status_code == 200, chosen.text
    [report] = chosen.json()["reports"]
    assert (report["rows_loaded"], report["sheet"]) == (2, "Orders")
    assert report["warnings"][-1].startswith(
        "sheet 'Returns' (3 rows) was skipped, not read as transactions: not chosen with the "
        "query parameter sheet=;"
    )
    assert table_counts(db_path_of(empty_client))["transactions"] == 2


@pytest.mark.parametrize(
    ("sheet", "listed"),
    [
        ("Orders (old)", ": 'Orders (old)')"),
        ("O'Brien & Co", ': "O\'Brien & Co")'),
        ("Orders (old FILE)", ", named above)"),  # cut the CLI command short: was a 500
    ],
)
def test_the_sheet_hint_survives_any_sheet_name(
    empty_client: TestClient, tmp_path: Path, sheet: str, listed: str
) -> None:
    from tests.ingest.test_pipeline import _orders, _workbook

    returns = _orders(3).drop("Price").rename({"Description": "Reason"})
    content = _workbook(tmp_path / "s.xlsx", {sheet: _orders(2), "Returns": returns}).read_bytes()
    refused = empty_client.post("/ingest", files={"file": ("s.xlsx", content)})
    assert refused.status_code == 422, refused.text
    assert (
        "(send it again with the query parameter sheet=<sheet name> for each sheet to read" + listed
        in refused.json()["detail"]
    )


@pytest.mark.parametrize(
    ("name", "params", "detail"),
    [
        (
            "shop.xlsx",
            [("sheet", "Orders"), ("sheet", "Order")],
            "no sheet 'Order' with data rows in shop.xlsx; its sheets with data rows: 'Orders', "
            "'Returns' (sheet names are matched exactly, case included; empty sheets are not "
            "read)",
        ),
        (
            "a.csv",
            [("sheet", "Orders")],
            "a.csv is a csv file, without sheets: the query parameter sheet= applies to Excel "
            "workbooks (send this file without it)",
        ),
    ],
)
def test_ingest_sheet_query_refuses_unknown_sheets_and_sheetless_files(
    empty_client: TestClient, tmp_path: Path, name: str, params: list, detail: str
) -> None:
    line = b"489434,85048,LIGHT,12,2009-12-01 07:45:00,6.95,13085,United Kingdom\n"
    content = _shop_workbook(tmp_path) if name.endswith("xlsx") else HEADER + line
    response = empty_client.post("/ingest", files={"file": (name, content)}, params=params)
    assert response.status_code == 422, response.text
    assert response.json()["detail"] == detail
    assert table_counts(db_path_of(empty_client))["ingest_runs"] == 0
