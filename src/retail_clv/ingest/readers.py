"""Read a raw file of any supported type into text columns, detecting its real format.

Supported: CSV (UTF-8, UTF-8 with BOM, UTF-16 with BOM, cp1252, Latin-1), gzip-compressed
CSV, Excel ``.xlsx``/``.xls`` (every sheet, through fastexcel/calamine) and Parquet.

The type is detected from the content (gzip ``1f 8b``, zip/xlsx ``PK``, Parquet ``PAR1``,
OLE2 ``d0 cf 11 e0``), never from the extension alone. Every cell is read as *text*, so the
raw values survive exactly as read (``rejected_data`` stores them); parsing happens later in
:mod:`retail_clv.ingest.rules`. Every failure raises :class:`~retail_clv.errors.InputFileError`
with a message that says what is wrong and how to fix it.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import io
import logging
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from retail_clv.errors import InputFileError, count

logger = logging.getLogger(__name__)

GZIP_MAGIC = b"\x1f\x8b"
#: Largest text a ``.csv.gz`` may unpack to (10 times Online Retail II's two years). A few
#: kilobytes of gzip can unpack to gigabytes; the file is read in memory, so the limit keeps an
#: upload from exhausting it.
MAX_GZIP_TEXT_BYTES = 1 << 30
ZIP_MAGIC = b"PK\x03\x04"
PARQUET_MAGIC = b"PAR1"
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"

_BINARY_EXTENSIONS = {".xlsx", ".xlsm", ".xls", ".parquet", ".pq", ".gz", ".zip"}
_KNOWN_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"SQLite format 3", "an SQLite database"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"BZh", "a bzip2 archive"),
    (b"\xfd7zXZ", "an xz archive"),
    (b"Rar!", "a RAR archive"),
)


@dataclass
class RawSheet:
    """One table of a raw file, every column as text.

    Attributes
    ----------
    name : str or None
        Sheet name for Excel, ``None`` for CSV and Parquet.
    frame : polars.DataFrame
        The cells as read, all columns ``Utf8``; missing cells are null.
    warnings : list of str
        What the reader noticed about the sheet that the report should say (merged cells).
    """

    name: str | None
    frame: pl.DataFrame
    warnings: list[str] = field(default_factory=list)


@dataclass
class RawFile:
    """A raw file read as text tables, with what was detected about it.

    Attributes
    ----------
    path : pathlib.Path
        The file read.
    file_format : str
        ``"csv"``, ``"csv.gz"``, ``"xlsx"``, ``"xls"`` or ``"parquet"`` (detected from content).
    encoding : str or None
        Text encoding of a CSV (``"utf-8"``, ``"utf-8-sig"``, ``"utf-16"``, ``"cp1252"`` or
        ``"latin-1"``); ``None`` for binary formats, whose text is always Unicode.
    sha256 : str
        Hex digest of the file's bytes as stored on disk.
    sheets : list of RawSheet
        The tables (one for CSV/Parquet, one per non-empty sheet for Excel).
    delimiter : str or None
        Field separator of a CSV.
    """

    path: Path
    file_format: str
    encoding: str | None
    sha256: str
    sheets: list[RawSheet] = field(default_factory=list)
    delimiter: str | None = None


def read_raw(path: str | Path) -> RawFile:
    """Read ``path`` into text tables, detecting its format and encoding.

    Parameters
    ----------
    path : str or pathlib.Path
        A CSV, gzip-compressed CSV, Excel workbook or Parquet file.

    Returns
    -------
    RawFile
        The tables as text and the detected format, encoding and sha256.

    Raises
    ------
    InputFileError
        When the file is missing, empty, has no data rows, is binary garbage, is a type that
        is not supported, or its extension claims a type its content is not.
    """
    path = check_input_path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputFileError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if not data:
        raise InputFileError(f"file is empty: {path} (0 bytes); export the data again")
    digest = hashlib.sha256(data).hexdigest()
    return _read_bytes(path, data, digest)


def check_input_path(path: str | Path) -> Path:
    """Return ``path`` as a :class:`~pathlib.Path` if it is an existing file.

    Called by ``clv ingest`` for every input before the store is created or opened.

    Raises
    ------
    InputFileError
        When the path does not exist or is not a regular file (a directory...).
    """
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"file not found: {path}")
    if path.is_dir():
        raise InputFileError(f"{path} is a directory; give the data files themselves")
    if not path.is_file():
        raise InputFileError(f"{path} is not a regular file; give the data files themselves")
    return path


def check_unique_header(where: str, names: list[str]) -> None:
    """Refuse a header that names a transaction column twice (which one holds the data is unknown).

    A repeated name that is no field's (two ``Notes`` columns) is let through: the reader
    renames the second one and it ends up, like every unused column, in ``raw_extra``.

    Raises
    ------
    InputFileError
        Naming the first duplicated column that matches a field.
    """
    from retail_clv.ingest.columns import ALIASES, normalise_name

    known = {alias for aliases in ALIASES.values() for alias in aliases}
    seen: set[str] = set()
    for name in names:
        if name in seen and normalise_name(name) in known:
            raise InputFileError(
                f"{where}: the header has the column {name!r} more than once; rename or "
                "remove the duplicate (which one holds the data cannot be guessed)"
            )
        seen.add(name)


def _read_bytes(path: Path, data: bytes, digest: str) -> RawFile:
    suffix = path.suffix.lower()
    if data.startswith(GZIP_MAGIC):
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as archive:
                inner = archive.read(MAX_GZIP_TEXT_BYTES + 1)  # never more than the limit
        except (OSError, EOFError, zlib.error) as exc:
            raise InputFileError(
                f"{path} is a damaged gzip file ({exc}); download or compress it again"
            ) from exc
        if len(inner) > MAX_GZIP_TEXT_BYTES:
            raise InputFileError(
                f"{path} unpacks to more than {MAX_GZIP_TEXT_BYTES / 2**30:g} GiB; decompress it "
                "and ingest the CSV in parts (clv ingest takes several files)"
            )
        if not inner:
            raise InputFileError(f"file is empty: {path} (the gzip archive holds 0 bytes)")
        if inner.startswith((ZIP_MAGIC, PARQUET_MAGIC, GZIP_MAGIC)):
            raise InputFileError(
                f"{path} is a gzip archive of a binary file; only gzip-compressed CSV is "
                "supported: decompress it first"
            )
        frame, encoding, delimiter, warnings = _read_csv_bytes(path, inner)
        return RawFile(
            path, "csv.gz", encoding, digest, [RawSheet(None, frame, warnings)], delimiter
        )
    if data.startswith(PARQUET_MAGIC):
        return RawFile(path, "parquet", None, digest, [_read_parquet(path, data)])
    if data.startswith(ZIP_MAGIC):
        return _read_zip(path, data, digest)
    if data.startswith(OLE2_MAGIC):
        return RawFile(path, "xls", None, digest, _read_excel(path, data))
    for signature, what in _KNOWN_SIGNATURES:
        if data.startswith(signature):
            raise InputFileError(
                f"{path} is {what}, not a data file; give a CSV, .csv.gz, .xlsx or Parquet file"
            )
    if suffix in _BINARY_EXTENSIONS:
        kind = {
            ".gz": "a gzip archive",
            ".zip": "a zip archive",
            ".parquet": "a Parquet file",
            ".pq": "a Parquet file",
        }.get(suffix, "an Excel workbook")
        raise InputFileError(
            f"{path} has the extension of {kind} but its content is not; if it is a CSV "
            "export, rename it to .csv"
        )
    frame, encoding, delimiter, warnings = _read_csv_bytes(path, data)
    if suffix not in {".csv", ".txt", ".tsv", ""}:
        logger.warning("%s: unusual extension %r, content read as CSV", path, suffix)
    return RawFile(path, "csv", encoding, digest, [RawSheet(None, frame, warnings)], delimiter)


def _read_zip(path: Path, data: bytes, digest: str) -> RawFile:
    try:
        names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    except zipfile.BadZipFile as exc:
        raise InputFileError(f"{path} is a damaged zip/xlsx file ({exc})") from exc
    if any(name.startswith("xl/") for name in names):
        sheets = _read_excel(path, data)
        merged = _merged_cells(data)
        for sheet in sheets:
            if sheet.name in merged:
                ranges, example = merged[sheet.name]
                sheet.warnings.append(
                    f"sheet {sheet.name!r} has {count(ranges, 'merged cell range')} over "
                    f"several rows (e.g. {example}): Excel "
                    "shows a merged value in its first row only, so where the other rows of a "
                    "range are empty in the file they are rejected (MISSING_INVOICE, "
                    "MISSING_CUSTOMER_ID and the like); unmerge the "
                    "cells and fill the values down before exporting"
                )
        return RawFile(path, "xlsx", None, digest, sheets)
    raise InputFileError(
        f"{path} is a zip archive, not an Excel workbook (it holds {len(names)} file(s)); "
        "extract the CSV inside and ingest that"
    )


def _is_utf8(data: bytes, chunk: int = 1 << 22) -> bool:
    """Validate UTF-8 in chunks (no full-size string is ever built)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(data)
    try:
        for offset in range(0, len(data), chunk):
            decoder.decode(view[offset : offset + chunk], final=False)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _decode(path: Path, data: bytes) -> tuple[bytes, str]:
    """Return UTF-8 bytes of a text file and the encoding it was detected in."""
    if data.startswith(b"\xef\xbb\xbf"):
        body = data[3:]
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputFileError(f"{path} starts with a UTF-8 mark but is not UTF-8") from exc
        return body, "utf-8-sig"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16").encode("utf-8"), "utf-16"
        except UnicodeDecodeError as exc:
            raise InputFileError(f"{path} starts with a UTF-16 mark but is not UTF-16") from exc
    if b"\x00" in data[:65536]:
        raise InputFileError(
            f"{path} looks binary (it contains NUL bytes), not a CSV text file; "
            "give a CSV, .csv.gz, .xlsx or Parquet file"
        )
    if _is_utf8(data):
        return data, "utf-8"
    # Not UTF-8: an 8-bit Western export. Latin-1 and cp1252 agree except on 0x80-0x9f,
    # where cp1252 has printable characters (curly quotes, euro sign) and Latin-1 controls.
    if re.search(rb"[\x80-\x9f]", data) is None:
        return data.decode("latin-1").encode("utf-8"), "latin-1"
    try:
        return data.decode("cp1252").encode("utf-8"), "cp1252"
    except UnicodeDecodeError:
        return data.decode("latin-1").encode("utf-8"), "latin-1"


def _sniff_delimiter(header: str) -> str:
    counts = {sep: header.count(sep) for sep in (",", ";", "\t", "|")}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] > 0 else ","


def _first_bad_line(text: bytes, delimiter: str) -> str | None:
    """Locate the first line the CSV parser cannot take, for the error message.

    Only called after Polars refused the file, so the line-by-line scan (Python's ``csv``,
    strict quoting) costs nothing on good files. Returns e.g. ``"line 1501 has 9 fields, the
    header 8"``, or None when the scan finds nothing wrong. When the "header" is too short to
    hold the six required columns and a line near the top is wide enough, it asks whether a
    title line stands above the header.
    """
    rows = csv.reader(
        io.StringIO(text.decode("utf-8", errors="replace"), newline=""),
        delimiter=delimiter,
        strict=True,
    )
    try:
        width = len(next(rows))
        for row in rows:
            if len(row) > width:
                title = rows.line_num <= 12 and width < 6 <= len(row)
                hint = " (a title line above the header? remove it and ingest the file again)"
                return f"line {rows.line_num} has {len(row)} fields, the header {width}" + (
                    hint if title else ""
                )
    except csv.Error as exc:
        return f"line {rows.line_num}: {exc}"
    except StopIteration:
        return None
    return None


def _title_lines(text: bytes, start: int, limit: int = 10) -> tuple[int, int]:
    """Return (lines, offset) of one-field lines above a header (a title such as "Export").

    ``(0, start)`` when the first line already has several fields, or no line of the next
    ``limit`` does.
    """
    offset = start
    for n in range(limit + 1):
        end = text.find(b"\n", offset)
        line = text[offset : end if end >= 0 else None].decode("utf-8", errors="replace")
        fields = next(csv.reader([line], delimiter=_sniff_delimiter(line)), [])
        if len(fields) >= 3:
            return n, offset
        if end < 0:
            break
        offset = end + 1
    return 0, start


def _read_csv_bytes(path: Path, data: bytes) -> tuple[pl.DataFrame, str, str, list[str]]:
    text, encoding = _decode(path, data)
    start = re.search(rb"\S", text)  # no copy of the (possibly large) buffer
    if start is None:
        raise InputFileError(f"file is empty: {path} (only blank lines)")
    warnings = []
    title, offset = _title_lines(text, start.start())
    if title:
        line = text.count(b"\n", 0, offset) + 1  # blank lines before the title count too
        text = text[offset:]
        start = re.search(rb"\S", text)
        assert start is not None  # the line found has fields
        warnings.append(
            f"the header of {path.name} is on its line {line}: the {count(title, 'line')} "
            "above it with fewer than three fields (a title?) "
            f"{'was' if title == 1 else 'were'} skipped"
        )
    if text[start.start() : start.start() + 1] in (b"{", b"["):
        raise InputFileError(f"{path} looks like JSON, not CSV; export the data as CSV")
    end = text.find(b"\n", start.start())
    first_line = text[start.start() : end if end >= 0 else None].decode("utf-8", errors="replace")
    delimiter = _sniff_delimiter(first_line)
    check_unique_header(str(path), next(csv.reader([first_line], delimiter=delimiter), []))
    try:
        frame = pl.read_csv(
            text,
            infer_schema=False,
            separator=delimiter,
            quote_char='"',
            raise_if_empty=True,
        )
    except pl.exceptions.NoDataError as exc:
        raise InputFileError(f"file is empty: {path}") from exc
    except (pl.exceptions.ComputeError, pl.exceptions.PolarsError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        where = _first_bad_line(text, delimiter)
        raise InputFileError(
            f"{path} is not a readable CSV file: {where + '; ' if where else ''}{message}"
        ) from exc
    if frame.height == 0:
        raise InputFileError(
            f"{path} has a header but no data rows (columns: {', '.join(frame.columns)})"
        )
    return frame, encoding, delimiter, warnings


def _as_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Cast every column to text, turning float NaN into null first."""
    exprs = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if dtype.is_float():
            col = col.fill_nan(None)
        exprs.append(col.cast(pl.Utf8).alias(name))
    return frame.select(exprs)


def _read_parquet(path: Path, data: bytes) -> RawSheet:
    try:
        frame = pl.read_parquet(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001  (pyarrow/polars raise many types for bad files)
        raise InputFileError(f"{path} is a damaged Parquet file: {exc}") from exc
    if frame.height == 0:
        raise InputFileError(
            f"{path} has columns but no data rows (columns: {', '.join(frame.columns)})"
        )
    # lists, records and raw bytes have no text form a field could use
    nested = {
        name: str(dtype)
        for name, dtype in frame.schema.items()
        if dtype.is_nested() or dtype in (pl.Object, pl.Binary)
    }
    warnings = []
    if nested:
        frame = frame.drop(list(nested))
        listed = ", ".join(f"{name!r} ({dtype})" for name, dtype in nested.items())
        warnings.append(
            f"{count(len(nested), 'column')} holding lists, records or bytes rather than "
            f"one value per cell {'was' if len(nested) == 1 else 'were'} left out: {listed}"
        )
    return RawSheet(None, _as_text(frame), warnings)


_SHEET_TAG = re.compile(rb"<(?:\w+:)?sheet\b[^>]*>")
_RELATIONSHIP_TAG = re.compile(rb"<(?:\w+:)?Relationship\b[^>]*>")
#: A merged range over more than one row (``A2:A12``); ranges within a row (a title over
#: ``A1:H1``) leave no data row blank.
_MERGE_CELL = re.compile(rb'<(?:\w+:)?mergeCell\b[^>]*?\bref="([A-Z]+(\d+):[A-Z]+(\d+))"')


def _attribute(tag: bytes, name: bytes) -> str | None:
    """Return attribute ``name`` (``r:id``, ``Target``...) of one XML start tag, or None."""
    found = re.search(rb"\s" + re.escape(name) + rb'="([^"]*)"', tag)
    return found.group(1).decode() if found else None


def _merged_cells(data: bytes) -> dict[str, tuple[int, str]]:
    """Return ``{sheet name: (merged ranges, first range)}`` of an xlsx workbook.

    calamine (fastexcel) reads a merged range's value into its first cell only; the ranges
    are listed in each worksheet's XML, which is scanned here. A workbook whose parts cannot be
    read this way gives ``{}`` (no warning rather than a failed ingest).
    """
    import html

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        workbook = archive.read("xl/workbook.xml")
        rels = {
            _attribute(tag, b"Id"): _attribute(tag, b"Target") or ""
            for tag in _RELATIONSHIP_TAG.findall(archive.read("xl/_rels/workbook.xml.rels"))
        }
        found: dict[str, tuple[int, str]] = {}
        for tag in _SHEET_TAG.findall(workbook):
            name, target = _attribute(tag, b"name"), rels.get(_attribute(tag, b"r:id"), "")
            if name is None or not target:
                continue
            part = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
            tall = [
                ref.decode()
                for ref, first, last in _MERGE_CELL.findall(_after_sheet_data(archive, part))
                if first != last
            ]
            if tall:
                found[html.unescape(name)] = (len(tall), tall[0])
        return found
    except (KeyError, zipfile.BadZipFile, UnicodeDecodeError, OSError):
        return {}


def _after_sheet_data(archive: zipfile.ZipFile, part: str, chunk: int = 1 << 22) -> bytes:
    """Return a worksheet's XML after its cells (where ``<mergeCells>`` stands), streamed.

    The cells can be hundreds of MB once decompressed; they are read chunk by chunk and dropped.
    """
    marker = b"</sheetData>"
    tail = b""
    with archive.open(part) as stream:
        while block := stream.read(chunk):
            buffer = tail + block
            found = buffer.find(marker)
            if found >= 0:
                return buffer[found:] + stream.read()
            tail = buffer[-len(marker) :]
    return b""


def _read_excel(path: Path, data: bytes) -> list[RawSheet]:
    import fastexcel

    try:
        reader = fastexcel.read_excel(data)
        sheets: list[RawSheet] = []
        for name in reader.sheet_names:
            header = reader.load_sheet(name, header_row=None, n_rows=1, dtypes="string")
            if header.height:
                values = header.to_polars().row(0)
                check_unique_header(
                    f"{path} (sheet {name!r})", [v for v in values if v is not None]
                )
            sheet = reader.load_sheet(name, dtypes="string")
            frame = _as_text(sheet.to_polars())
            if frame.height == 0 or frame.width == 0:
                logger.info("%s: sheet %r has no data rows, skipped", path, name)
                continue
            sheets.append(RawSheet(name, frame))
    except InputFileError:
        raise
    except Exception as exc:  # noqa: BLE001  (calamine errors are not a public hierarchy)
        raise InputFileError(f"{path} is not a readable Excel workbook: {exc}") from exc
    if not sheets:
        raise InputFileError(f"{path} has no sheet with data rows")
    return sheets
