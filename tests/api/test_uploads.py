"""Upload safety: type by content, size cap, multipart errors (through POST /ingest)."""

import gzip
import io
import zipfile
from pathlib import Path

import polars as pl
import pytest
from fastapi.testclient import TestClient

from retail_clv.api.uploads import _safe_stem, sniff_kind

CSV_TEXT = (
    "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"
    "489434,85048,LIGHT,12,2009-12-01 07:45:00,6.95,13085.0,United Kingdom\n"
    "489435,22350,CAT BOWL,12,2009-12-01 07:46:00,2.55,13086.0,France\n"
)


def _zip_bytes(names: list[str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, "x")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        (CSV_TEXT.encode(), "csv"),
        ("Invoice;Prix\n1;2,5 €\n".encode("cp1252"), "csv"),
        ("\ufeffa,b\n1,2\n".encode("utf-16"), "csv"),
        (gzip.compress(CSV_TEXT.encode()), "csv.gz"),
        (b"PAR1" + b"\x00" * 20 + b"PAR1", "parquet"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 50, "xls"),
        (_zip_bytes(["[Content_Types].xml", "xl/workbook.xml"]), "xlsx"),
        (_zip_bytes(["word/document.xml"]), None),
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)), None),
        (bytes(range(256)) * 4, None),
        (b"%PDF-1.7\n\x00\x01\x02binary", None),
    ],
)
def test_sniff_kind_by_content(tmp_path: Path, content: bytes, kind: str | None) -> None:
    path = tmp_path / "upload.bin"
    path.write_bytes(content)
    assert sniff_kind(content[:65536], path) == kind


@pytest.mark.parametrize(
    ("name", "stem"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\sales 2011.xlsx", "sales_2011"),
        ("données.csv.gz", "donn_es"),
        ("...", "upload"),
        ("a" * 300 + ".csv", "a" * 100),
    ],
)
def test_safe_stem_never_escapes_the_temp_folder(name: str, stem: str) -> None:
    assert _safe_stem(name) == stem


def test_garbage_upload_is_415_naming_the_file(empty_client: TestClient) -> None:
    response = empty_client.post(
        "/ingest", files={"file": ("sales.csv", b"\x89PNG\r\n\x1a\n" + bytes(range(256)))}
    )
    assert response.status_code == 415
    assert "sales.csv" in response.json()["detail"]


def test_zip_that_is_not_a_workbook_is_415(empty_client: TestClient) -> None:
    response = empty_client.post(
        "/ingest", files={"file": ("sales.xlsx", _zip_bytes(["word/document.xml"]))}
    )
    assert response.status_code == 415


def test_body_that_is_not_multipart_is_415(empty_client: TestClient) -> None:
    response = empty_client.post(
        "/ingest", content=CSV_TEXT.encode(), headers={"Content-Type": "text/csv"}
    )
    assert response.status_code == 415
    assert "multipart/form-data" in response.json()["detail"]


def test_missing_file_field_is_422(empty_client: TestClient) -> None:
    response = empty_client.post("/ingest", files={"other": ("a.csv", CSV_TEXT.encode())})
    assert response.status_code == 422
    assert "'file'" in response.json()["detail"]


def test_a_multipart_body_without_its_closing_boundary_is_400(empty_client: TestClient) -> None:
    # it was cleaned as a file whose header is its first bytes ("has a header but no data rows")
    body = (
        b'--XYZ\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\n'
        + CSV_TEXT.encode()
    )
    response = empty_client.post(
        "/ingest", content=body, headers={"Content-Type": "multipart/form-data; boundary=XYZ"}
    )
    assert response.status_code == 400
    assert response.json()["detail"].startswith(
        "Malformed multipart body: it ends before its closing boundary"
    )


def test_two_file_parts_are_refused_not_one_dropped(empty_client: TestClient) -> None:
    files = [("file", ("a.csv", CSV_TEXT.encode())), ("file", ("b.csv", CSV_TEXT.encode()))]
    response = empty_client.post("/ingest", files=files)
    assert response.status_code == 422
    assert (
        "Send one file per request: the field 'file' came more than once"
        in (response.json()["detail"])
    )
    assert empty_client.post("/ingest", files=files[:1]).status_code == 200


def test_empty_file_is_422(empty_client: TestClient) -> None:
    response = empty_client.post("/ingest", files={"file": ("a.csv", b"")})
    assert response.status_code == 422
    assert "empty" in response.json()["detail"]


def test_oversize_upload_is_413_by_declared_length(make_client) -> None:
    client = make_client(max_upload_mb=1)
    response = client.post("/ingest", files={"file": ("big.csv", b"a,b\n" * 300_000)})
    assert response.status_code == 413
    detail = response.json()["detail"]
    assert detail.startswith("Upload too large: the limit is 1 MB (CLV_MAX_UPLOAD_MB). ")
    assert "gzip-compressed as .csv.gz" in detail


def test_oversize_upload_is_413_while_streaming(make_client) -> None:
    """No Content-Length (chunked): the cap is enforced on the bytes received."""
    client = make_client(max_upload_mb=1)
    boundary = "xyz"
    payload = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        + b"a,b\n" * 300_000
        + f"\r\n--{boundary}--\r\n".encode()
    )

    def chunks():
        for start in range(0, len(payload), 65536):
            yield payload[start : start + 65536]

    response = client.post(
        "/ingest",
        content=chunks(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 413


def test_upload_temp_folder_is_removed(empty_client: TestClient, monkeypatch, tmp_path) -> None:
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    empty_client.post("/ingest", files={"file": ("x.csv", b"\x00\x01\x02" * 100)})
    empty_client.post("/ingest", files={"file": ("x.csv", CSV_TEXT.encode())})
    assert not list(tmp_path.glob("clv-upload-*"))


def test_wrong_columns_is_422_naming_the_missing_column(empty_client: TestClient) -> None:
    response = empty_client.post("/ingest", files={"file": ("a.csv", b"foo,bar\n1,2\n3,4\n")})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "invoice" in detail.lower() or "customer" in detail.lower()


@pytest.mark.parametrize("fmt", ["csv.gz", "parquet", "xlsx"])
def test_other_formats_are_accepted(empty_client: TestClient, tmp_path: Path, fmt: str) -> None:
    frame = pl.read_csv(io.StringIO(CSV_TEXT), infer_schema_length=0)
    path = tmp_path / f"small.{fmt}"
    if fmt == "csv.gz":
        path.write_bytes(gzip.compress(CSV_TEXT.encode()))
    elif fmt == "parquet":
        frame.write_parquet(path)
    else:
        frame.write_excel(path)
    response = empty_client.post("/ingest", files={"file": (path.name, path.read_bytes())})
    assert response.status_code == 200, response.text
    [report] = response.json()["reports"]
    assert report["rows_read"] == 2
    assert report["rows_loaded"] == 2
    assert report["source_file"] == path.name
