import datetime as dt
import gzip
import io
import re
import zipfile
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from retail_clv.errors import InputFileError, SchemaError
from retail_clv.ingest.pipeline import clean_file
from retail_clv.ingest.readers import read_raw

from .conftest import HEADER_II, VALID, write_csv

GIFT = "489436,GIFT_0001_10,£10 GIFT VOUCHER,1,2009-12-01 09:06:00,8.51,13078,United Kingdom"


def test_latin1_file_with_pound_sign_is_detected_and_decoded(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "latin.csv", [GIFT], encoding="latin-1")
    assert b"\xa3" in path.read_bytes()
    raw = read_raw(path)
    assert raw.encoding == "latin-1"
    assert raw.sheets[0].frame["Description"][0] == "£10 GIFT VOUCHER"
    result = clean_file(path)
    assert result.report.encoding == "latin-1"
    assert result.purchases["description"][0] == "£10 GIFT VOUCHER"


def test_cp1252_specific_bytes_are_reported_as_cp1252(tmp_path: Path) -> None:
    line = "489436,22,\u2018QUOTED\u2019 MUG \u20ac,1,2009-12-01 09:06:00,8.51,13078,France"
    path = write_csv(tmp_path / "win.csv", [line], encoding="cp1252")
    raw = read_raw(path)
    assert raw.encoding == "cp1252"
    assert raw.sheets[0].frame["Description"][0] == "\u2018QUOTED\u2019 MUG \u20ac"


def test_utf8_with_bom_and_semicolons(tmp_path: Path) -> None:
    text = HEADER_II.replace(",", ";") + "\n" + VALID.replace(",", ";") + "\n"
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    raw = read_raw(path)
    assert raw.encoding == "utf-8-sig"
    assert raw.delimiter == ";"
    assert raw.sheets[0].frame.columns[0] == "Invoice"


def test_gzip_csv_detected_by_content_even_with_csv_extension(tmp_path: Path) -> None:
    path = tmp_path / "actually_gzip.csv"
    path.write_bytes(gzip.compress((HEADER_II + "\n" + VALID + "\n").encode()))
    raw = read_raw(path)
    assert raw.file_format == "csv.gz"
    assert raw.sheets[0].frame.height == 1


def test_a_gzip_file_unpacking_past_the_limit_is_refused_without_unpacking_it_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from retail_clv.ingest import readers

    monkeypatch.setattr(readers, "MAX_GZIP_TEXT_BYTES", 1000)
    path = tmp_path / "bomb.csv.gz"
    path.write_bytes(gzip.compress((HEADER_II + "\n" + (VALID + "\n") * 100).encode()))
    with pytest.raises(InputFileError, match=r"unpacks to more than .* GiB; decompress it"):
        read_raw(path)
    small = tmp_path / "small.csv.gz"
    small.write_bytes(gzip.compress((HEADER_II + "\n" + VALID + "\n").encode()))
    assert read_raw(small).sheets[0].frame.height == 1


def test_a_gzip_file_whose_trailer_states_too_much_is_refused_before_unpacking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a 4 MB upload stating 1.2 GB was unpacked whole (2 GB of memory) before the refusal
    from retail_clv.ingest import readers

    def unpack(data: bytes) -> bytes | None:
        raise AssertionError("unpacked a file whose trailer already refuses it")

    monkeypatch.setattr(readers, "MAX_GZIP_TEXT_BYTES", 1000)
    monkeypatch.setattr(readers, "_gunzip_within_limit", unpack)
    path = tmp_path / "bomb.csv.gz"
    path.write_bytes(gzip.compress((HEADER_II + "\n" + (VALID + "\n") * 100).encode()))
    with pytest.raises(InputFileError, match=r"unpacks to more than .* GiB; decompress it"):
        read_raw(path)


def test_a_utf8_file_with_one_cp1252_line_is_read_line_by_line(tmp_path: Path) -> None:
    # read whole as cp1252, every UTF-8 accent became "Ã©" and a country a new "FranÃ§e"
    utf8 = VALID.replace("15CM CHRISTMAS GLASS BALL 20 LIGHTS", "CAFÉ CRÈME MUG")
    pasted = utf8.replace("489434", "489435").replace("United Kingdom", "Curaçao")
    path = tmp_path / "joined.csv"
    path.write_bytes(
        (HEADER_II + "\n" + utf8 + "\n" + utf8.replace("489434", "489436") + "\n").encode()
        + (pasted + "\n").encode("cp1252")
    )
    raw = read_raw(path)
    frame = raw.sheets[0].frame
    assert raw.encoding == "utf-8+cp1252"
    assert frame["Description"].to_list() == ["CAFÉ CRÈME MUG"] * 3
    assert frame["Country"].to_list()[-1] == "Curaçao"
    assert raw.sheets[0].warnings == [
        "the text is UTF-8 except 1 line (line 4), read as cp1252: check the accented "
        "characters there (two exports joined?)"
    ]
    # a file that is 8-bit throughout is still read whole, without a warning
    whole = tmp_path / "cp1252.csv"
    whole.write_bytes((HEADER_II + "\n" + utf8 + "\n" + pasted + "\n").encode("cp1252"))
    assert read_raw(whole).encoding == "latin-1"  # no byte of 0x80-0x9f: the same text
    assert read_raw(whole).sheets[0].warnings == []


def test_the_mixed_reading_covers_cr_line_ends_a_bom_and_undefined_cp1252_bytes(
    tmp_path: Path,
) -> None:
    from retail_clv.ingest.readers import _decode_mixed

    utf8 = VALID.replace("15CM CHRISTMAS GLASS BALL 20 LIGHTS", "CAFÉ CRÈME MUG")
    pasted = utf8.replace("489434", "489435").replace("United Kingdom", "Curaçao") + "\r"
    lines = [HEADER_II, utf8, utf8.replace("489434", "489436")]
    for name, head, end in (("cr.csv", b"", "\r"), ("bom.csv", b"\xef\xbb\xbf", "\n")):
        path = tmp_path / name
        body = (
            "".join(line + end for line in lines).encode()
            + pasted.rstrip("\r").encode("cp1252")
            + end.encode()
        )
        path.write_bytes(head + body)
        raw = read_raw(path)
        frame = raw.sheets[0].frame
        assert frame["Description"].to_list() == ["CAFÉ CRÈME MUG"] * 3, name
        assert frame["Country"].to_list()[-1] == "Curaçao", name
        assert raw.encoding == ("utf-8-sig+cp1252" if head else "utf-8+cp1252")
    # bytes cp1252 leaves undefined are kept as Latin-1 reads them, as in the whole-file reading
    data = "éé ok\néé ok\n".encode() + b"x\x81y\xe9\n"  # UTF-8 lines, then a cp1252 one
    got = _decode_mixed(tmp_path, data, None)
    assert got is not None and got.decode().splitlines()[2] == "x\x81yé"
    # a few cp1252 lines with many accents among more UTF-8 lines with few: the lines vote
    # (the first version compared bytes with characters and read the file whole as 8-bit)
    few = "Café mug\n".encode() * 10 + "Crème brûlée à la rosé\n".encode("cp1252") * 3
    assert _decode_mixed(tmp_path, few, None) is not None
    # an 8-bit file with one byte pair that happens to be UTF-8 is left to the 8-bit reading
    eight_bit = ("café crème\n" * 50 + "Ã©\n").encode("cp1252")
    assert _decode_mixed(tmp_path, eight_bit, None) is None


def test_parquet_is_read_and_typed_values_become_text(tmp_path: Path) -> None:
    path = tmp_path / "data.parquet"
    pl.DataFrame(
        {
            "Invoice": ["489434"],
            "StockCode": ["85048"],
            "Description": ["LIGHTS"],
            "Quantity": [12],
            "InvoiceDate": [dt.datetime(2009, 12, 1, 7, 45)],
            "Price": [6.95],
            "Customer ID": [13085.0],
            "Country": ["United Kingdom"],
        }
    ).write_parquet(path)
    raw = read_raw(path)
    assert raw.file_format == "parquet"
    assert raw.sheets[0].frame.schema == dict.fromkeys(raw.sheets[0].frame.columns, pl.Utf8)
    result = clean_file(path)
    assert result.report.rows_loaded == 1
    assert result.purchases["customer_id"][0] == "13085"


def test_parquet_list_and_record_columns_are_left_out_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "nested.parquet"
    names = HEADER_II.split(",")
    columns = {name: [value] for name, value in zip(names, VALID.split(","), strict=True)}
    pl.DataFrame({**columns, "tags": [[1, 2]], "meta": [{"a": 1}]}, strict=False).write_parquet(
        path
    )
    result = clean_file(path)
    assert result.report.rows_loaded == 1
    assert any(
        w.startswith("2 columns holding lists, records or bytes") and "'tags' (List(Int64))" in w
        for w in result.report.warnings
    )
    as_bytes = tmp_path / "bytes.parquet"  # text written without the UTF-8 annotation
    pl.DataFrame(
        {**columns, "Customer ID": [b"13085"], "blob": [b"\xff\xfe"]}, strict=False
    ).write_parquet(as_bytes)
    read = clean_file(as_bytes)
    assert read.report.rows_loaded == 1 and read.purchases["customer_id"][0] == "13085"
    assert any("'blob' (Binary)" in w for w in read.report.warnings)
    only_lists = tmp_path / "lists.parquet"
    pl.DataFrame({"x": [[1, 2], [3]]}).write_parquet(only_lists)
    with pytest.raises(SchemaError, match="missing"):
        clean_file(only_lists)


def test_parquet_with_wrong_extension_is_still_parquet(tmp_path: Path) -> None:
    path = tmp_path / "misnamed.csv"
    pl.DataFrame({"Invoice": ["1"]}).write_parquet(path)
    assert read_raw(path).file_format == "parquet"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", b"", "file is empty"),
        ("blank.csv", b"\n\n  \n", "file is empty"),
        ("header.csv", (HEADER_II + "\n").encode(), "has a header but no data rows"),
        ("garbage.csv", bytes(range(256)) * 40, "looks binary"),
        ("image.csv", b"\x89PNG\r\n\x1a\n" + b"\x00" * 50, "is a PNG image"),
        ("doc.csv", b"%PDF-1.4 something", "is a PDF document"),
        ("data.xlsx", (HEADER_II + "\n" + VALID + "\n").encode(), "extension of an Excel workbook"),
        ("data.parquet", b"Invoice\n1\n", "extension of a Parquet file"),
        ("broken.gz", b"\x1f\x8b\x08\x00garbage", "damaged gzip"),
        ("data.json", b'[{"Invoice": 1}]', "looks like JSON"),
        ("legacy.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, "not a readable Excel"),
    ],
)
def test_bad_files_raise_input_file_error(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputFileError, match=message):
        clean_file(path)


def test_zip_that_is_not_a_workbook(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("data.csv", HEADER_II + "\n" + VALID + "\n")
    path = tmp_path / "data.zip"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(InputFileError, match="zip archive, not an Excel workbook"):
        read_raw(path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="file not found"):
        read_raw(tmp_path / "nope.csv")
    with pytest.raises(InputFileError, match="is a directory"):
        read_raw(tmp_path)


def test_wrong_columns_name_every_missing_one(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "wrong.csv", ["1,2,3"], header="Order,Item,Amount")
    missing = "'stock_code', 'quantity', 'invoice_date', 'price', 'customer_id'"
    with pytest.raises(SchemaError, match=f"required columns {missing} are missing in wrong.csv"):
        clean_file(path)


def test_ragged_csv_is_an_input_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "ragged.csv", [VALID + ",extra,fields,here"])
    with pytest.raises(InputFileError, match="not a readable CSV"):
        clean_file(path)


def test_a_ragged_line_deep_in_the_file_is_named(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "deep.csv", [VALID] * 1499 + [VALID + ",extra"] + [VALID] * 5)
    with pytest.raises(InputFileError, match="line 1501 has 9 fields, the header 8"):
        clean_file(path)


def test_duplicated_field_header_is_refused_in_csv_and_excel(tmp_path: Path) -> None:
    import xlsxwriter

    csv_path = tmp_path / "dup.csv"
    csv_path.write_text("Invoice;Price;Price\n1;2,5;3\n")
    with pytest.raises(InputFileError, match="the header has the column 'Price' more than once"):
        read_raw(csv_path)

    xlsx_path = tmp_path / "dup.xlsx"
    with xlsxwriter.Workbook(xlsx_path) as workbook:
        sheet = workbook.add_worksheet("Sales")
        for col, value in enumerate(["Invoice", "Price", "Price"]):
            sheet.write(0, col, value)
            sheet.write(1, col, str(col))
    with pytest.raises(
        InputFileError, match=r"\(sheet 'Sales'\): the header has the column 'Price'"
    ):
        read_raw(xlsx_path)


def _count_sheet_loads(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Count ``load_sheet`` calls per sheet: calamine parses the whole sheet on each one."""
    import fastexcel

    loads: Counter[str] = Counter()
    load_sheet = fastexcel.ExcelReader.load_sheet

    def counting(self: fastexcel.ExcelReader, idx_or_name: str, **options: object) -> object:
        loads[idx_or_name] += 1
        return load_sheet(self, idx_or_name, **options)  # type: ignore[call-overload]

    monkeypatch.setattr(fastexcel.ExcelReader, "load_sheet", counting)
    return loads


def test_each_sheet_is_parsed_once_with_the_names_and_cells_fastexcel_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Header cells that are no text, a repeated non-field name, an empty header cell: the
    names and cells are those of the one ``load_sheet(name, dtypes="string")`` the reader
    has always made, and no sheet is parsed a second time for its header row."""
    import fastexcel
    import xlsxwriter

    from retail_clv.ingest.readers import _as_text

    path = tmp_path / "odd.xlsx"
    with xlsxwriter.Workbook(path) as workbook:
        orders = workbook.add_worksheet("Orders")
        day = workbook.add_format({"num_format": "yyyy-mm-dd"})
        orders.write_row(0, 0, [*HEADER_II.split(","), "Notes", "Notes", 1.0000000001, True])
        orders.write_datetime(0, 13, dt.datetime(2010, 12, 1), day)  # 12: no header
        for row in range(1, 40):
            orders.write_row(row, 0, [*VALID.split(","), "a", "b", row / 7, row % 2 == 0])
            orders.write_number(row, 3, row)
            orders.write_datetime(row, 4, dt.datetime(2009, 12, 1, 7, row), day)
        notes = workbook.add_worksheet("Notes")
        notes.write_column(0, 0, ["Note", "exported by the shop"])
    reader = fastexcel.read_excel(path.read_bytes())
    expected = {
        name: _as_text(reader.load_sheet(name, dtypes="string").to_polars())
        for name in ("Orders", "Notes")
    }
    loads = _count_sheet_loads(monkeypatch)
    raw = read_raw(path)
    assert loads == {"Orders": 1, "Notes": 1}
    assert [sheet.name for sheet in raw.sheets] == ["Orders", "Notes"]
    for sheet in raw.sheets:
        assert sheet.frame.equals(expected[sheet.name or ""])
    # the names calamine gives those cells, not their text as values ("1", "true", a date)
    assert raw.sheets[0].frame.columns[8:] == [
        "Notes",
        "Notes_1",
        "1.0000000001",
        "__UNNAMED__11",
        "__UNNAMED__12",
        "__UNNAMED__13",
    ]
    assert raw.sheets[0].frame.row(0)[10:] == ("0.142857143", "false", None, None)


def test_a_header_naming_a_field_twice_is_told_from_a_literal_numbered_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fastexcel names a second ``Price`` ``Price_1``: a header with a real ``Price_1`` has the
    same names, so its row is read again to tell, and is let through; the repeat is refused."""
    import xlsxwriter

    def workbook(name: str, header: list[str]) -> Path:
        path = tmp_path / name
        with xlsxwriter.Workbook(path) as book:
            sheet = book.add_worksheet("Sales")
            sheet.write_row(0, 0, header)
            sheet.write_row(1, 0, [str(col) for col in range(len(header))])
        return path

    loads = _count_sheet_loads(monkeypatch)
    raw = read_raw(workbook("literal.xlsx", ["Invoice", "Price", "Price_1"]))
    assert raw.sheets[0].frame.columns == ["Invoice", "Price", "Price_1"]
    assert loads == {"Sales": 2}
    with pytest.raises(
        InputFileError, match=r"\(sheet 'Sales'\): the header has the column 'Price'"
    ):
        read_raw(workbook("twice.xlsx", ["Invoice", "Price", "Price"]))


def test_merged_cells_are_found_whatever_the_attribute_order_and_titles_are_not_counted(
    tmp_path: Path,
) -> None:
    import zipfile

    import xlsxwriter

    from retail_clv.ingest.readers import _scan_workbook

    def _merged_cells(data: bytes) -> dict[str, tuple[int, str]]:
        """{sheet: (tall merged ranges, first range)}, as the reader's scan finds them."""
        scans = _scan_workbook(Path("workbook"), data).items()
        return {name: (len(s.tall_merges), s.tall_merges[0]) for name, s in scans if s.tall_merges}

    path = tmp_path / "m.xlsx"
    with xlsxwriter.Workbook(path) as workbook:
        sheet = workbook.add_worksheet("Orders")
        sheet.merge_range(0, 0, 0, 7, "Sales export")  # a title across one row: harmless
        sheet.merge_range(2, 0, 4, 0, "489434")  # one invoice over three rows
    assert _merged_cells(path.read_bytes()) == {"Orders": (1, "A3:A5")}
    # other writers put Target before Id in the relationships part
    reordered = tmp_path / "r.xlsx"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(reordered, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "xl/_rels/workbook.xml.rels":
                data = re.sub(
                    rb'<Relationship Id="([^"]*)" Type="([^"]*)" Target="([^"]*)"',
                    rb'<Relationship Type="\2" Target="\3" Id="\1"',
                    data,
                )
                assert b'Target="worksheets/sheet1.xml" Id=' in data
            dst.writestr(item, data)
    assert _merged_cells(reordered.read_bytes()) == {"Orders": (1, "A3:A5")}


def corrupt_lzma_workbook() -> bytes:
    """An .xlsx-shaped zip whose LZMA-compressed workbook part is damaged mid-stream."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        part = b'<workbook><sheets><sheet name="A" sheetId="1"/></sheets></workbook>' * 50
        archive.writestr("xl/workbook.xml", part, compress_type=zipfile.ZIP_LZMA)
    damaged = bytearray(buffer.getvalue())
    for offset in range(60, 90):
        damaged[offset] ^= 0xFF
    return bytes(damaged)


def test_a_damaged_zip_part_is_a_damaged_file_not_a_crash(tmp_path: Path) -> None:
    # LZMAError (a damaged LZMA part) and NotImplementedError (a mangled "version needed" field
    # in the central directory) escaped as tracebacks, a 500 from the API
    lzma_file = tmp_path / "lzma.xlsx"
    lzma_file.write_bytes(corrupt_lzma_workbook())
    with pytest.raises(InputFileError, match=r"lzma\.xlsx is (a damaged|not a readable) "):
        read_raw(lzma_file)
    version = tmp_path / "version.xlsx"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("xl/workbook.xml", b"<workbook/>")
    data = bytearray(buffer.getvalue())
    central = data.rfind(b"PK\x01\x02")
    data[central + 6] = 250  # "version needed to extract" 25.0: zipfile refuses it
    version.write_bytes(bytes(data))
    with pytest.raises(InputFileError, match=r"version\.xlsx is a damaged zip/xlsx file"):
        read_raw(version)
