import csv
import io
import re

import polars as pl
import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import db_path_of, table_counts

HEADER = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"


def _post(client: TestClient, content: bytes, name: str = "upload.csv", **kwargs):
    return client.post("/pipeline", files={"file": (name, content)}, **kwargs)


def test_pipeline_scores_every_customer_of_the_upload(client: TestClient, api_data) -> None:
    response = _post(client, api_data.raw_csv.read_bytes(), "synth.csv")
    assert response.status_code == 200, response.text
    body = response.json()
    report = body["report"]
    assert report["rows_read"] == api_data.rows_read
    assert report["rows_rejected"] == api_data.rows_rejected
    assert report["reason_counts"] == api_data.reason_counts
    assert report["source_file"] == "synth.csv"
    assert report["rows_read"] == (
        report["rows_loaded"] + report["rows_rejected"] + report["rows_duplicate"]
    )
    ids = [p["customer_id"] for p in body["predictions"]]
    assert len(ids) == len(set(ids)) == report["customers"]
    assert sorted(ids) == sorted(api_data.scored_ids)
    assert body["model_run_id"] == api_data.run_id
    assert body["as_of"] == api_data.as_of.isoformat()
    active = client.get("/models/active").json()
    assert body["horizon_days"] == active["horizon_days"]
    assert 0 < len(body["rejected_sample"]) <= 200
    sample = body["rejected_sample"][0]
    assert {"row_number", "reasons", "raw_invoice"} <= set(sample)
    assert "row_hash" not in sample
    assert body["stored"] is None


def test_pipeline_matches_the_stored_scores_of_the_same_data(client: TestClient, api_data) -> None:
    body = _post(client, api_data.raw_csv.read_bytes()).json()
    by_id = {p["customer_id"]: p for p in body["predictions"]}
    for customer_id in api_data.scored_ids[:10]:
        stored = client.get(f"/customers/{customer_id}/prediction").json()
        assert by_id[customer_id]["predicted_spend_30d_model1"] == pytest.approx(
            stored["predicted_spend_30d_model1"]
        )


def test_pipeline_leaves_the_store_unchanged(client: TestClient, api_data) -> None:
    db = db_path_of(client)
    before = table_counts(db)
    late = (
        HEADER + f"999002,85048,LIGHT,12,{api_data.as_of.isoformat()} 10:00:00,6.95,88888,France\n"
    )
    assert _post(client, api_data.raw_csv.read_bytes()).status_code == 200
    assert _post(client, late.encode()).status_code == 200
    assert table_counts(db) == before
    assert client.get("/customers/88888").status_code == 404


def test_pipeline_store_true_ingests_with_the_key(make_client, api_data) -> None:
    client = make_client(db=api_data.db_path, models_dir=api_data.models_dir, api_key="k" * 16)
    db = db_path_of(client)
    before = table_counts(db)
    late = (
        HEADER + f"999003,85048,LIGHT,12,{api_data.as_of.isoformat()} 10:00:00,6.95,99999,France\n"
    )
    missing = _post(client, late.encode(), params={"store": "true"})
    assert missing.status_code == 401
    wrong = _post(client, late.encode(), params={"store": "true"}, headers={"X-API-Key": "x"})
    assert wrong.status_code == 403
    assert table_counts(db) == before
    open_read = _post(client, late.encode())
    assert open_read.status_code == 200
    stored = _post(client, late.encode(), params={"store": "true"}, headers={"X-API-Key": "k" * 16})
    assert stored.status_code == 200, stored.text
    assert stored.json()["stored"][0]["rows_loaded"] == 1
    assert table_counts(db)["transactions"] == before["transactions"] + 1
    assert client.get("/customers/99999").status_code == 200
    # as CSV, the run id an undo needs comes in a header (the CSV has no room for the report)
    again = late.replace("999003", "999013").replace(",99999,", ",99997,")
    csv = _post(
        client,
        again.encode(),
        params={"store": "true"},
        headers={"X-API-Key": "k" * 16, "Accept": "text/csv"},
    )
    assert csv.status_code == 200 and csv.text.startswith("customer_id,")
    run_id = int(csv.headers["X-Ingest-Run-Id"])
    runs = client.get("/ingest-runs").json()["runs"]
    assert runs[0]["run_id"] == run_id and runs[0]["rows_loaded"] == 1
    assert (
        "X-Ingest-Run-Id"
        not in _post(client, late.encode(), headers={"Accept": "text/csv"}).headers
    )


def test_pipeline_store_true_reads_and_cleans_the_upload_once(
    make_client, api_data, monkeypatch
) -> None:
    from retail_clv.ingest import pipeline as ingest_pipeline

    client = make_client(db=api_data.db_path, models_dir=api_data.models_dir, api_key="k" * 16)
    reads: list[object] = []
    real = ingest_pipeline.read_raw
    monkeypatch.setattr(ingest_pipeline, "read_raw", lambda path: reads.append(path) or real(path))
    late = HEADER + (
        f"999004,85048,LIGHT,12,{api_data.as_of.isoformat()} 10:00:00,6.95,99998,France\n"
        f"999004,85048,LIGHT,12,{api_data.as_of.isoformat()} 10:00:00,6.95,99998,France\n"
        f"999005,85048,LIGHT,-1,{api_data.as_of.isoformat()} 11:00:00,6.95,99998,France\n"
    )
    stored = _post(client, late.encode(), params={"store": "true"}, headers={"X-API-Key": "k" * 16})
    assert stored.status_code == 200, stored.text
    assert len(reads) == 1
    [report] = stored.json()["stored"]
    # the stored report is the ingest's own: the duplicate and the rejected line are counted
    assert (report["rows_read"], report["rows_loaded"]) == (3, 1)
    assert report["rows_duplicate"] == 1 and report["rows_rejected"] == 1
    assert report["run_id"] is not None and report["source_file"] == "upload.csv"


def test_pipeline_csv_has_the_predict_columns(client: TestClient, api_data) -> None:
    response = _post(client, api_data.raw_csv.read_bytes(), headers={"Accept": "text/csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    frame = pl.read_csv(io.BytesIO(response.content), schema_overrides={"customer_id": pl.Utf8})
    assert frame.columns == [
        "customer_id",
        "predicted_spend_30d_model1",
        "predicted_spend_30d_model2",
        "predicted_products_30d",
        "r2_model1",
        "r2_model2",
    ]
    assert sorted(frame["customer_id"].to_list()) == sorted(api_data.scored_ids)


def test_pipeline_csv_neutralises_formula_injection(client: TestClient) -> None:
    rows = [
        f"5000{i},85048,LIGHT,2,2010-0{m}-0{d} 10:00:00,3.5,{cid},United Kingdom"
        for i, (cid, m, d) in enumerate(
            [("=HYPERLINK(1)", 1, 5), ("=HYPERLINK(1)", 3, 7), ("@SUM(A1)", 2, 3), ("12345", 2, 4)]
        )
    ]
    response = _post(
        client, (HEADER + "\n".join(rows) + "\n").encode(), headers={"Accept": "text/csv"}
    )
    assert response.status_code == 200, response.text
    cells = [row[0] for row in csv.reader(io.StringIO(response.text))][1:]
    assert cells, response.text
    assert sorted(cells) == ["'=HYPERLINK(1)", "'@SUM(A1)", "12345"]


def test_pipeline_wrong_columns_is_422_naming_the_columns(client: TestClient) -> None:
    response = _post(client, b"Invoice,StockCode,Quantity\n1,2,3\n")
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "'invoice_date', 'price', 'customer_id' are missing" in detail
    assert detail.endswith(
        "Map each explicitly with the query parameters column=invoice_date=<column name>, "
        "column=price=<column name>, column=customer_id=<column name>"
    )


def test_pipeline_column_mapping_query_renames_a_column(client: TestClient) -> None:
    body = (
        "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Abnehmer,Country\n"
        "5001,85048,LIGHT,2,2010-01-05 10:00:00,3.5,4242,United Kingdom\n"
    )
    refused = _post(client, body.encode())
    assert refused.status_code == 422
    detail = refused.json()["detail"]
    assert "customer_id" in detail
    # the hint names this endpoint's query parameter, not the CLI option
    assert "the query parameter column=customer_id=<column name>" in detail
    assert "--column" not in detail
    mapped = _post(client, body.encode(), params={"column": "customer_id=Abnehmer"})
    assert mapped.status_code == 200, mapped.text
    assert [p["customer_id"] for p in mapped.json()["predictions"]] == ["4242"]


def test_pipeline_bad_column_mapping_is_422(client: TestClient) -> None:
    response = _post(client, b"a,b\n1,2\n", params={"column": "shoe_size=b"})
    assert response.status_code == 422
    assert "shoe_size" in response.json()["detail"]


def test_pipeline_field_mapped_twice_is_422(client: TestClient) -> None:
    body = HEADER + "5001,85048,LIGHT,2,2010-01-05 10:00:00,3.5,4242,United Kingdom\n"
    response = _post(
        client,
        body.encode(),
        params=[("column", "customer_id=Customer ID"), ("column", "customer_id=Country")],
    )
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "customer_id is given twice" in detail and "'Country'" in detail
    assert "--column" not in detail


def test_pipeline_errors_name_the_uploaded_file_not_the_servers_copy(
    client: TestClient,
) -> None:
    for content in (b'{"rows": []}', HEADER.encode()):
        response = _post(client, content, name="export.json")
        assert response.status_code == 422
        detail = response.json()["detail"]
        assert "export.json" in detail, detail
        assert "clv-upload" not in detail and "/tmp" not in detail


def test_pipeline_day_first_query_reads_slash_dates_day_first(client: TestClient) -> None:
    rows = [  # as far apart either way (32 days month-first and day-first): month-first
        "5001,85048,LIGHT,2,03/01/2010 10:00,3.5,4242,United Kingdom",
        "5002,85048,LIGHT,2,04/02/2010 10:00,3.5,4242,United Kingdom",
    ]
    content = (HEADER + "\n".join(rows) + "\n").encode()
    default = _post(client, content).json()
    assert default["report"]["date_min"].startswith("2010-03-01")
    [warning] = [w for w in default["report"]["warnings"] if "day-first" in w]
    assert "query parameter day_first=true" in warning and "--day-first" not in warning
    assert warning.endswith(
        "send it again with the query parameter day_first=true (if its rows were stored, undo "
        "that ingest run first: POST /ingest-runs/RUN_ID/undo)"
    )
    day_first = _post(client, content, params={"day_first": "true"}).json()
    assert day_first["report"]["date_min"].startswith("2010-01-03")
    assert day_first["as_of"] == "2010-02-05"
    assert not [w for w in day_first["report"]["warnings"] if "day-first" in w]


def test_pipeline_only_rejected_rows_returns_the_report_and_no_predictions(
    client: TestClient,
) -> None:
    body = HEADER + "C1,85048,LIGHT,-1,2010-01-01 10:00:00,3.5,12345,United Kingdom\n"
    response = _post(client, body.encode())
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["predictions"] == []
    assert result["report"]["rows_rejected"] == 1
    assert result["report"]["valid_lines"] == 0
    assert result["rejected_sample"][0]["reasons"]


def test_pipeline_report_carries_the_ingest_warnings(client: TestClient) -> None:
    rows = [
        f"500{i},85048,LIGHT,2,0{d}/03/2010 10:00,3.5,12345,United Kingdom"
        for i, d in enumerate((1, 2, 3))
    ]
    response = _post(client, (HEADER + "\n".join(rows) + "\n").encode())
    assert response.status_code == 200, response.text
    report = response.json()["report"]
    assert report["valid_lines"] == 3
    assert any("month-first" in w for w in report["warnings"]), report["warnings"]


def test_pipeline_garbage_is_415(client: TestClient) -> None:
    assert _post(client, bytes(range(256)) * 10, "x.csv").status_code == 415


def test_pipeline_oversize_is_413(make_client, api_data) -> None:
    client = make_client(db=api_data.db_path, models_dir=api_data.models_dir, max_upload_mb=1)
    assert _post(client, b"a,b\n" * 300_000).status_code == 413


def test_pipeline_without_a_model_is_503(store_client: TestClient, api_data) -> None:
    response = _post(store_client, api_data.raw_csv.read_bytes())
    assert response.status_code == 503
    assert "No model trained yet" in response.json()["detail"]


def test_pipeline_warns_when_bgnbd_cannot_be_fitted_on_the_upload(client: TestClient) -> None:
    # Three customers with one purchase day each: no repeat buyer, so no BG/NBD fit.
    rows = [
        f"6000{i},85048,LIGHT,2,2010-03-0{i + 1} 10:00:00,3.5,{cid},United Kingdom"
        for i, cid in enumerate(["70001", "70002", "70003"])
    ]
    response = _post(client, (HEADER + "\n".join(rows) + "\n").encode())
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["predictions"]) == 3
    [note] = [w for w in body["report"]["warnings"] if "BG/NBD" in w]
    assert "could not be fitted on these 3 customers" in note
    assert "imputed" in note


def test_pipeline_has_no_bgnbd_warning_when_the_fit_works(client: TestClient, api_data) -> None:
    body = _post(client, api_data.raw_csv.read_bytes()).json()
    assert not [w for w in body["report"]["warnings"] if "BG/NBD" in w]


def test_pipeline_warns_when_the_upload_spends_on_another_scale(
    client: TestClient, api_data
) -> None:
    # The same shop with every price x100 (a wholesaler scored with a retailer's model):
    # the scores come with the scale note; the training shop itself gets none.
    raw = pl.read_csv(api_data.raw_csv, infer_schema=False)
    price = pl.col("Price").cast(pl.Float64, strict=False)
    scaled = raw.with_columns(
        pl.when(price.is_not_null())
        .then((price * 100).cast(pl.String))
        .otherwise(pl.col("Price"))
        .alias("Price")
    )
    body = _post(client, scaled.write_csv().encode()).json()
    [note] = [w for w in body["report"]["warnings"] if "another scale" in w]
    # compared with the training as-of population, not the same customers on the same day
    times = float(re.search(r"([\d,.]+) times as much", note).group(1).replace(",", ""))
    assert 50 < times < 200
    assert "train models on this data" in note
    own = _post(client, api_data.raw_csv.read_bytes()).json()
    assert not [w for w in own["report"]["warnings"] if "another scale" in w]


@pytest.mark.parametrize(
    ("accept", "csv"),
    [
        ("", False),
        ("*/*", False),
        ("application/json", False),
        ("text/csv", True),
        ("text/csv, */*;q=0.8", True),
        ("text/csv, */*", True),
        ("application/json, text/csv;q=0.1", False),
        ("text/csv;q=0.5, application/json", False),
        ("text/csv, application/json", True),
        ("application/json, text/csv", False),
        ("text/csv;q=0", False),
        ("text/csv;q=0.2, */*;q=0.9", False),
        ("TEXT/CSV; Q=0.9, application/json; q=0.5", True),
    ],
)
def test_accept_header_quality_values_decide_csv(accept: str, csv: bool) -> None:
    from retail_clv.api.routes.uploads_common import prefers_csv

    assert prefers_csv(accept) is csv


def test_pipeline_json_preferred_over_csv_by_quality_is_json(client: TestClient, api_data) -> None:
    response = _post(
        client,
        api_data.raw_csv.read_bytes(),
        headers={"Accept": "application/json, text/csv;q=0.1"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")


def test_pipeline_says_when_a_far_last_day_sets_the_scoring_date(client: TestClient) -> None:
    rows = [
        "5001,85048,LIGHT,2,2010-03-02 10:00:00,3.5,4242,United Kingdom",
        "5002,85048,LIGHT,2,2010-03-05 10:00:00,3.5,4243,United Kingdom",
        "5003,85048,LIGHT,2,2019-03-05 10:00:00,3.5,4242,United Kingdom",  # a typo
    ]
    body = _post(client, (HEADER + "\n".join(rows) + "\n").encode()).json()
    assert body["as_of"] == "2019-03-06"
    [note] = [w for w in body["report"]["warnings"] if w.startswith("these predictions")]
    assert note == (
        "these predictions are as of 2019-03-06, the day after the last purchase day "
        "(2019-03-05), which stands 3287 days after any other: every customer is scored as if "
        "nothing was bought since 2010-03-05"
    )


def test_pipeline_sheet_query_scores_only_the_named_sheets(client: TestClient, tmp_path) -> None:
    from tests.ingest.test_pipeline import _orders, _workbook

    second = _orders(2).with_columns(
        pl.Series("Invoice", ["600001", "600002"]), pl.lit("17850").alias("Customer ID")
    )
    returns = _orders(3).drop("Price").rename({"Description": "Reason"})
    content = _workbook(
        tmp_path / "shop.xlsx", {"Orders": _orders(2), "Orders 2": second, "Returns": returns}
    ).read_bytes()
    refused = _post(client, content, "shop.xlsx")
    assert refused.status_code == 422, refused.text
    assert (
        "(send it again with the query parameter sheet=<sheet name> for each sheet to read: "
        "'Orders', 'Orders 2')" in refused.json()["detail"]
    )
    response = _post(
        client, content, "shop.xlsx", params=[("sheet", "Orders"), ("sheet", "Orders 2")]
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["report"]["rows_loaded"], body["report"]["sheet"]) == (4, "Orders, Orders 2")
    assert sorted(p["customer_id"] for p in body["predictions"]) == ["13085", "17850"]
    unknown = _post(client, content, "shop.xlsx", params={"sheet": "orders"})
    assert unknown.status_code == 422
    assert unknown.json()["detail"] == (
        "no sheet 'orders' with data rows in shop.xlsx; its sheets with data rows: 'Orders', "
        "'Orders 2', 'Returns' (sheet names are matched exactly, case included; empty sheets are "
        "not read)"
    )
