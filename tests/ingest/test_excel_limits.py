"""Workbooks whose cells would make calamine allocate a gigantic grid are refused first.

calamine (fastexcel's reader) allocates every cell from a sheet's first to its last non-empty
one; before the check, a 1.7 KB workbook with one value at XFD1048576 aborted the process.
"""

from __future__ import annotations

import re
import struct
import zipfile
import zlib
from pathlib import Path

import pytest

from retail_clv.errors import InputFileError
from retail_clv.ingest import readers
from retail_clv.ingest.readers import MAX_SHEET_CELLS, read_raw

from .conftest import HEADER_II, VALID, read_raw_in_a_child

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="application/'
    'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
    'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>'
)
_ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>'
)
_WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="Orders" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>'
)


def _cell(ref: str, value: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{value}</t></is></c>'


def _table() -> str:
    """The header and one valid line of Online Retail II, in rows 1 and 2."""
    rows = []
    for n, line in enumerate([HEADER_II, VALID], start=1):
        cells = "".join(_cell(f"{chr(65 + i)}{n}", v) for i, v in enumerate(line.split(",")))
        rows.append(f'<row r="{n}">{cells}</row>')
    return "".join(rows)


def write_workbook(path: Path, sheet_data: str, *, dimension: str = "A1:H2") -> Path:
    """Write a minimal xlsx by hand: the test table, then ``sheet_data`` (raw XML rows)."""
    sheet = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        f'<dimension ref="{dimension}"/><sheetData>{_table()}{sheet_data}</sheetData>'
        "</worksheet>"
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("_rels/.rels", _ROOT_RELS)
        archive.writestr("xl/workbook.xml", _WORKBOOK)
        archive.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        archive.writestr("xl/worksheets/sheet1.xml", sheet)
    return path


STRAY = '<row r="1048576">' + _cell("XFD1048576", "x") + "</row>"
TOO_LARGE = "spans A1:XFD1048576 (17,179,869,184 cells), too large to read"


def test_a_stray_cell_at_the_last_excel_cell_is_refused_instead_of_aborting(
    tmp_path: Path,
) -> None:
    """The reported file: 1.7 KB. Run in a child process: the old code aborted its process."""
    path = write_workbook(tmp_path / "stray.xlsx", STRAY)
    assert path.stat().st_size < 2500
    done = read_raw_in_a_child(path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "(sheet 'Orders') " + TOO_LARGE in done.stdout
    assert "a stray value far outside the table? delete it" in done.stdout
    assert "save the table as CSV" in done.stdout


_NO_R_ROW = '<row r="1048576">' + "<c><v>1</v></c>" * 16_384 + "</row>"


@pytest.mark.parametrize(
    "sheet_data",
    [
        pytest.param(_NO_R_ROW, id="cells-without-r-placed-by-count"),
        pytest.param(
            '<row r="1048576"><x:c r="XFD1048576"><x:v>1</x:v></x:c></row>', id="prefixed-cell"
        ),
        pytest.param('<row r="9"><c r="xfd1048576"><v>1</v></c></row>', id="lower-case-ref"),
        pytest.param("<row r=\"9\"><c r='XFD1048576'><v>1</v></c></row>", id="single-quotes"),
        pytest.param('<row r="9"><c x=">" r="XFD1048576"><v>1</v></c></row>', id="gt-in-value"),
        pytest.param('<row r="9"><c  r="XFD1048576"><v>1</v></c></row>', id="two-spaces"),
        pytest.param(
            '<row r="9"><c r="A9"><v>1</v></c></row><!-- <c r="B9"> -->'
            '<row r="1048576"><c r="XFD1048576"><v>1</v></c></row>',
            id="after-a-comment",
        ),
    ],
)
def test_cells_written_in_unusual_forms_are_placed_as_calamine_places_them(
    tmp_path: Path, sheet_data: str
) -> None:
    path = write_workbook(tmp_path / "odd.xlsx", sheet_data)
    with pytest.raises(InputFileError, match=re.escape(TOO_LARGE)):
        read_raw(path)


def test_a_second_r_attribute_which_calamine_would_follow_is_refused(tmp_path: Path) -> None:
    path = write_workbook(
        tmp_path / "twice.xlsx", '<row r="9"><c r="A9" r="XFD1048576"><v>1</v></c></row>'
    )
    with pytest.raises(InputFileError, match="cannot be checked before reading"):
        read_raw(path)


def test_a_worksheet_part_named_in_another_case_is_checked_too(tmp_path: Path) -> None:
    path = write_workbook(tmp_path / "named.xlsx", STRAY)
    renamed = tmp_path / "renamed.xlsx"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(renamed, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "xl/_rels/workbook.xml.rels":
                data = data.replace(b"worksheets/sheet1.xml", b"worksheets/Sheet1.xml")
            if item.filename == "xl/worksheets/sheet1.xml":
                item.filename = "XL/WORKSHEETS/SHEET1.XML"  # calamine ignores the case
            dst.writestr(item, data)
    with pytest.raises(InputFileError, match=re.escape(TOO_LARGE)):
        read_raw(renamed)


@pytest.mark.parametrize(
    "sheet_data",
    [
        pytest.param('<row r="1048576"><c r="XFD1048576" s="0"/></row>', id="styled-empty-cell"),
        pytest.param('<row r="1048576" ht="30" customHeight=\'1\'/>', id="empty-row"),
        pytest.param("", id="dimension-only"),
    ],
)
def test_formatting_and_the_dimension_far_away_do_not_count(
    tmp_path: Path, sheet_data: str
) -> None:
    """calamine skips cells without a value and ignores ``<dimension>``; so does the check."""
    path = write_workbook(tmp_path / "styled.xlsx", sheet_data, dimension="A1:XFD1048576")
    raw = read_raw(path)
    assert raw.sheets[0].frame.shape == (1, 8)


def test_a_sheet_as_tall_as_online_retail_ii_is_read(tmp_path: Path) -> None:
    """525,000 rows x 8 columns: 4.2 million cells, far below the limit."""
    far = '<row r="525001">' + _cell("H525001", "United Kingdom") + "</row>"
    raw = read_raw(write_workbook(tmp_path / "tall.xlsx", far))
    assert raw.sheets[0].frame.shape == (525_000, 8)
    assert raw.sheets[0].frame["Country"][-1] == "United Kingdom"


def test_the_limit_is_on_the_cells_the_sheet_spans(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(readers, "MAX_SHEET_CELLS", 8 * 40)
    inside = write_workbook(tmp_path / "in.xlsx", '<row r="40">' + _cell("H40", "x") + "</row>")
    assert read_raw(inside).sheets[0].frame.height == 39
    outside = write_workbook(tmp_path / "out.xlsx", '<row r="41">' + _cell("H41", "x") + "</row>")
    with pytest.raises(InputFileError, match=r"spans A1:H41 \(328 cells\)"):
        read_raw(outside)


def test_a_sheet_that_unpacks_to_too_much_xml_is_refused_before_it_is_read(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(readers, "MAX_SHEET_XML_BYTES", 1000)
    path = write_workbook(tmp_path / "big.xlsx", "")
    with pytest.raises(InputFileError, match=r"\(sheet 'Orders'\) holds more than .* unpacked"):
        read_raw(path)


def add_shared_strings(path: Path, chunks: list[bytes], *, times: int = 1) -> Path:
    """Add a shared-strings part (``<si>`` items: ``chunks`` written ``times`` over)."""
    with (
        zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
        archive.open("xl/sharedStrings.xml", "w", force_zip64=times > 1) as part,
    ):
        part.write(b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">')
        for _ in range(times):
            for chunk in chunks:
                part.write(chunk)
        part.write(b"</sst>")
    return path


def declare(path: Path, name: str, size: int) -> None:
    """Make the zip declare ``size`` bytes for part ``name`` (with the CRC of that many)."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(name)
        crc = zlib.crc32(archive.read(name)[:size])
    struct.pack_into("<I", data, info.header_offset + 14, crc)  # local header
    struct.pack_into("<I", data, info.header_offset + 22, size)
    entry = data.index(b"PK\x01\x02")  # the central directory, entry by entry
    while data[entry + 46 : entry + 46 + len(name)] != name.encode():
        entry = data.index(b"PK\x01\x02", entry + 4)
    struct.pack_into("<I", data, entry + 16, crc)
    struct.pack_into("<I", data, entry + 24, size)
    path.write_bytes(bytes(data))


def test_shared_strings_unpacking_past_the_limit_are_refused_before_calamine_reads_them(
    tmp_path: Path,
) -> None:
    """calamine reads the shared strings whole when it opens a workbook: 256 MiB of ``<si/>``
    are 0.4 MB of zip, and took it 1.2 GB of memory."""
    path = write_workbook(tmp_path / "strings.xlsx", "")
    empty_strings = b"<si/>" * (1 << 20)  # 5 MiB
    add_shared_strings(path, [empty_strings], times=(256 << 20) // len(empty_strings) + 1)
    assert path.stat().st_size < 2 << 20  # a small upload
    with pytest.raises(
        InputFileError,
        match=re.escape(f"{path} holds more than 256 MiB besides its sheets once unpacked")
        + r" .*'xl/sharedStrings.xml'.*save the table as CSV",
    ):
        read_raw(path)


def test_parts_are_measured_as_calamine_unpacks_them_whatever_size_the_zip_declares(
    tmp_path: Path, monkeypatch
) -> None:
    import fastexcel

    monkeypatch.setattr(readers, "MAX_WORKBOOK_PARTS_BYTES", 1 << 20)
    last = '<row r="3"><c r="A3" t="s"><v>99999</v></c></row>'
    path = write_workbook(tmp_path / "liar.xlsx", last)
    add_shared_strings(path, [b"<si><t>%d</t></si>" % n for n in range(100_000)])  # 1.9 MB
    declare(path, "xl/sharedStrings.xml", 300)
    with zipfile.ZipFile(path) as archive:  # zipfile unpacks 300 bytes, without complaint
        assert len(archive.read("xl/sharedStrings.xml")) == 300
    sheet = fastexcel.read_excel(path.read_bytes()).load_sheet(0, dtypes="string")
    assert sheet.to_polars()["Invoice"][-1] == "99999"  # calamine unpacks them all
    with pytest.raises(InputFileError, match="holds more than 1 MiB besides its sheets"):
        read_raw(path)


def test_a_sheet_declaring_a_smaller_size_is_scanned_to_its_end(
    tmp_path: Path, monkeypatch
) -> None:
    """zipfile stops at the declared size, calamine does not: the scan read only the cells
    before it, and let a stray cell after it through (at XFD1048576, the process aborted)."""
    monkeypatch.setattr(readers, "MAX_SHEET_CELLS", 8 * 40)
    path = write_workbook(tmp_path / "liar.xlsx", '<row r="41">' + _cell("H41", "x") + "</row>")
    with zipfile.ZipFile(path) as archive:
        xml = archive.read("xl/worksheets/sheet1.xml")
    declare(path, "xl/worksheets/sheet1.xml", xml.index(b'<row r="41">'))
    with pytest.raises(InputFileError, match=r"spans A1:H41 \(328 cells\)"):
        read_raw(path)


@pytest.mark.parametrize("compression", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED])
def test_parts_unpack_to_what_zipfile_reads_when_their_size_is_true(
    tmp_path: Path, compression: int
) -> None:
    import io

    import xlsxwriter

    buffer = io.BytesIO()
    with xlsxwriter.Workbook(buffer) as workbook:
        sheet = workbook.add_worksheet("Orders")
        for row in range(3000):
            sheet.write_row(row, 0, [f"text {row}", row, row / 3])
    packed = io.BytesIO()
    with zipfile.ZipFile(buffer) as source, zipfile.ZipFile(packed, "w", compression) as target:
        for item in source.infolist():
            target.writestr(item.filename, source.read(item))
    data = packed.getvalue()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            unpacked = b"".join(readers._unpacked(archive, info))
            assert unpacked == archive.read(info), info.filename
    path = tmp_path / "ok.xlsx"
    path.write_bytes(data)
    assert read_raw(path).sheets[0].frame.height == 2999


def test_a_normal_workbook_is_read_with_its_merged_cells_found(tmp_path: Path) -> None:
    import xlsxwriter

    path = tmp_path / "shop.xlsx"
    with xlsxwriter.Workbook(path) as workbook:
        sheet = workbook.add_worksheet("Orders")
        sheet.write_row(0, 0, HEADER_II.split(","))
        for row in range(1, 1201):
            sheet.write_row(row, 0, VALID.split(","))
        sheet.merge_range(1201, 0, 1203, 0, "489435")
        notes = workbook.add_worksheet("Notes")
        notes.write_column(0, 0, ["Note", "exported by the shop"])
    raw = read_raw(path)
    assert [s.name for s in raw.sheets] == ["Orders", "Notes"]
    assert raw.sheets[0].frame.shape == (1201, 8)  # calamine: the merged value in A1202 only
    assert any("A1202:A1204" in warning for warning in raw.sheets[0].warnings)


def test_the_fast_scan_bounds_what_the_exact_one_finds(tmp_path: Path) -> None:
    """The plain scan's bound covers the exact bounding box (``A1`` to a little past the end)."""
    import io

    import xlsxwriter

    path = tmp_path / "b.xlsx"
    with xlsxwriter.Workbook(path) as workbook:
        sheet = workbook.add_worksheet("Orders")
        for row in range(3, 2000, 7):
            sheet.write_row(row, 2, ["a", 1, 2.5, "b"])
    with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as archive:
        info = archive.getinfo("xl/worksheets/sheet1.xml")
        fast = readers._scan_plain(readers._sheet_blocks(archive, info, "b"))
        exact = readers._CellTracker().scan(readers._sheet_blocks(archive, info, "b"))
    assert exact.rows == (4, 1999) and exact.columns == (3, 6)
    assert exact.spans() == "C4:F1999"
    assert fast is not None and fast.rows is not None and fast.columns is not None
    assert fast.rows[0] == 1 and 1999 <= fast.rows[1] <= 1999 * 9 // 8 + 16
    assert fast.columns[0] == 1 and 6 <= fast.columns[1] <= 7


@pytest.mark.parametrize("bound", [1, 7, 9, 10, 26, 27, 52, 99, 100, 318, 702, 703, 1000, 1999])
def test_the_bound_regexes_match_exactly_the_numbers_and_columns_up_to_the_bound(
    bound: int,
) -> None:
    digits = re.compile(readers._at_most(str(bound), "1", "0", "9"))
    assert [n for n in range(1, 3000) if digits.fullmatch(str(n))] == list(range(1, bound + 1))
    assert not digits.fullmatch("0") and not digits.fullmatch("01")
    letters = re.compile(readers._at_most(readers._column_name(bound), "A", "A", "Z"))
    names = [readers._column_name(n) for n in range(1, 3000)]
    assert [n for n, name in enumerate(names, 1) if letters.fullmatch(name)] == list(
        range(1, bound + 1)
    )


def test_column_names_and_numbers() -> None:
    assert [readers._column_name(n) for n in (1, 26, 27, 702, 703, 16_384)] == [
        "A",
        "Z",
        "AA",
        "ZZ",
        "AAA",
        "XFD",
    ]
    assert readers._column_number("XFD") == readers._column_number(b"xfd") == 16_384
    assert MAX_SHEET_CELLS >= 525_000 * 8 * 10


def test_a_workbook_kept_outside_xl_is_refused_before_calamine_reads_it(tmp_path: Path) -> None:
    """calamine follows _rels/.rels anywhere; the cell scan looks under xl/ as writers do."""
    path = write_workbook(tmp_path / "moved.xlsx", "")
    moved = tmp_path / "elsewhere.xlsx"
    with zipfile.ZipFile(path) as old, zipfile.ZipFile(moved, "w", zipfile.ZIP_DEFLATED) as new:
        for info in old.infolist():
            data = old.read(info)
            if info.filename == "_rels/.rels":
                data = data.replace(b'Target="xl/workbook.xml"', b'Target="/data/workbook.xml"')
            new.writestr(info.filename.replace("xl/", "data/"), data)
        new.writestr("xl/workbook.xml", old.read("xl/workbook.xml"))  # a decoy where writers look
    with pytest.raises(InputFileError, match="keeps its workbook at 'data/workbook.xml'"):
        read_raw(moved)
    # the same package with the workbook where writers put it reads as before
    assert read_raw(path).sheets[0].frame.height == 1


@pytest.mark.parametrize(
    ("target", "part"),
    [
        ("data/sheet1.xml", "xl/data/sheet1.xml"),
        ("/xl/Data/Sheet1.xml", "xl/Data/Sheet1.xml"),
        ("../xl/other/sheet1.xml", "xl/other/sheet1.xml"),
    ],
)
def test_a_sheet_kept_in_another_folder_of_xl_is_scanned_too(
    tmp_path: Path, target: str, part: str
) -> None:
    """calamine reads a sheet wherever the workbook's relationships point; so does the scan.

    Run in a child process: the old code let the stray cell through and calamine aborted.
    """
    path = write_workbook(tmp_path / "standard.xlsx", STRAY)
    moved = tmp_path / "moved.xlsx"
    with zipfile.ZipFile(path) as old, zipfile.ZipFile(moved, "w", zipfile.ZIP_DEFLATED) as new:
        for info in old.infolist():
            data = old.read(info)
            name = info.filename
            if name == "xl/_rels/workbook.xml.rels":
                data = data.replace(
                    b'Target="worksheets/sheet1.xml"', f'Target="{target}"'.encode()
                )
            elif name == "xl/worksheets/sheet1.xml":
                name = part
            new.writestr(name, data)
    done = read_raw_in_a_child(moved)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "(sheet 'Orders') " + TOO_LARGE in done.stdout
