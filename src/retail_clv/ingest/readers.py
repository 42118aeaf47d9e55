"""Read a raw file of any supported type into text columns, detecting its real format.

Supported: CSV (UTF-8, UTF-8 with BOM, UTF-16 with BOM, cp1252, Latin-1, UTF-8 with some cp1252
lines), gzip-compressed CSV, Excel ``.xlsx``/``.xls`` (every sheet, through fastexcel/calamine;
``.xls`` in a child process with limited memory, see :mod:`retail_clv.ingest.xls_sandbox`) and
Parquet.

The type is detected from the content (gzip ``1f 8b``, zip/xlsx ``PK``, Parquet ``PAR1``,
OLE2 ``d0 cf 11 e0``), never from the extension alone. Every cell is read as *text*, so the
raw values survive exactly as read (``rejected_data`` stores them); parsing happens later in
:mod:`retail_clv.ingest.rules`. Every failure raises :class:`~retail_clv.errors.InputFileError`
with a message that says what is wrong and how to fix it.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import gzip
import hashlib
import io
import logging
import lzma
import posixpath
import re
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import polars as pl

from retail_clv.errors import InputFileError, count
from retail_clv.ingest.columns import list_names
from retail_clv.ingest.xls_sandbox import read_xls

logger = logging.getLogger(__name__)

#: What reading a damaged zip part raises besides ``BadZipFile``: a corrupt deflate or LZMA
#: stream, a truncated one, an unsupported method, a bad password/CRC, a header whose offsets
#: point before the start ("negative seek value").
_DAMAGED_ZIP = (
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    NotImplementedError,
    RuntimeError,
    ValueError,
    struct.error,
)

GZIP_MAGIC = b"\x1f\x8b"
#: Largest text a ``.csv.gz`` may unpack to (10 times Online Retail II's two years). A few
#: kilobytes of gzip can unpack to gigabytes; the file is read in memory, so the limit keeps an
#: upload from exhausting it.
MAX_GZIP_TEXT_BYTES = 1 << 30
#: Most cells one Excel sheet may span. calamine, which reads workbooks for fastexcel, allocates
#: a dense grid of 32-byte cells from a sheet's first to its last non-empty cell before it returns
#: anything: one stray value at XFD1048576 below a header asks for 512 GiB, and the failed
#: allocation aborts the whole process (the API server, ``clv ingest``). 50 million cells are
#: 1.6 GB for that grid (2.5 GB at the peak, once fastexcel has made text columns of it): twelve
#: times a sheet of Online Retail II (525,000 rows x 8 columns).
MAX_SHEET_CELLS = 50_000_000
#: Largest XML a worksheet may unpack to; checked before and while it is unpacked, a chunk at a
#: time (a sheet at :data:`MAX_SHEET_CELLS` takes about 2 GiB).
MAX_SHEET_XML_BYTES = 4 << 30
#: Most an xlsx workbook's parts other than its worksheets may unpack to, together. calamine reads
#: the shared strings (every distinct text of the cells) whole when it opens a workbook, before
#: any sheet, with the styles and the workbook part: 128 MiB of the shortest strings took 0.6 GB
#: of memory, from a zip of 0.2 MB. Online Retail II saved as .xlsx (1,067,371 rows) has 1.6 MB
#: of such parts, 1.5 MB of them shared strings. Every part but the worksheets counts: calamine
#: finds its parts in the folder the package names and in any letter case.
MAX_WORKBOOK_PARTS_BYTES = 256 << 20
#: Most columns a table may have. A transaction export has a few dozen; a header with hundreds of
#: thousands of names (a wrong delimiter, the wrong file) made matching the names to the fields
#: take minutes.
MAX_COLUMNS = 1_000
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


#: Bytes (of text, once a ``.csv.gz`` is unpacked) :func:`read_header` reads of a CSV: the
#: header, the few rows a title above it may push it down, and the rows below it.
HEADER_BYTES = 1 << 18


def read_header(path: str | Path) -> RawFile | None:
    """Read the first rows of a file as cheaply as its format allows, for a check of its columns.

    A CSV (``.csv.gz`` too) is read from its first :data:`HEADER_BYTES` up to the last whole line
    in them, through the same code as :func:`read_raw`; a Parquet file from its footer (the
    column names; no row is read). The sheets returned hold the header and at most the first
    rows below it (none for Parquet), and ``sha256`` is empty.

    Returns
    -------
    RawFile or None
        ``None`` when the format has no cheap header read: an Excel workbook (calamine parses a
        whole sheet even for its first row, and an ``.xls`` file is parsed whole when opened),
        or content whose type only the full read can tell (binary files, a UTF-16 or old-Mac
        text whose lines cannot be cut).

    Raises
    ------
    InputFileError
        When the path is missing or is no regular file, or when the first rows cannot be read.
        Read from a prefix, a CSV may be judged differently than whole (its encoding is
        detected from the prefix alone): callers confirm a failure with :func:`read_raw`.
    """
    path = check_input_path(path)
    try:
        with path.open("rb") as stream:
            data = stream.read(HEADER_BYTES + 1)
            if data.startswith(GZIP_MAGIC):
                stream.seek(-4, io.SEEK_END)
                if _states_too_much(stream.read(4)):
                    raise _gzip_too_large(path)
                stream.seek(0)
                with gzip.GzipFile(fileobj=stream) as archive:
                    return _header_of_text(path, archive.read(HEADER_BYTES + 1), "csv.gz")
    except (OSError, EOFError, zlib.error) as exc:
        raise InputFileError(f"cannot read {path}: {exc}") from exc
    if data.startswith(PARQUET_MAGIC):
        return _parquet_header(path)
    if data.startswith((ZIP_MAGIC, OLE2_MAGIC)) or not data:
        return None
    if any(data.startswith(signature) for signature, _ in _KNOWN_SIGNATURES):
        return None
    if path.suffix.lower() in _BINARY_EXTENSIONS:
        return None
    return _header_of_text(path, data, "csv")


def _states_too_much(trailer: bytes) -> bool:
    """Whether a gzip file's last 4 bytes state an unpacked size over the limit.

    The size is stated modulo 4 GiB, so the unpacking still counts every byte.
    """
    return struct.unpack("<I", trailer.rjust(4, b"\0"))[0] > MAX_GZIP_TEXT_BYTES


def _gzip_too_large(path: Path) -> InputFileError:
    """Return the refusal of a ``.csv.gz`` unpacking to more than :data:`MAX_GZIP_TEXT_BYTES`."""
    return InputFileError(
        f"{path} unpacks to more than {MAX_GZIP_TEXT_BYTES / 2**30:g} GiB; decompress it "
        "and ingest the CSV in parts (clv ingest takes several files)"
    )


def _header_of_text(path: Path, data: bytes, file_format: str) -> RawFile | None:
    """Read the whole lines of ``data`` (the start of a CSV) as :func:`read_raw` reads a CSV."""
    if not data or data.startswith((ZIP_MAGIC, PARQUET_MAGIC, GZIP_MAGIC)):
        return None
    if len(data) > HEADER_BYTES:  # a prefix: keep whole lines only
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            return None  # UTF-16: the full read decides
        end = data.rfind(b"\n", 0, HEADER_BYTES)
        if end < 0:
            return None
        data = data[: end + 1]
    frame, encoding, delimiter, warnings = _read_csv_bytes(path, data)
    return RawFile(path, file_format, encoding, "", [RawSheet(None, frame, warnings)], delimiter)


def _parquet_header(path: Path) -> RawFile | None:
    """Column names of a Parquet file from its footer, as :func:`_read_parquet` keeps them."""
    try:
        schema = pl.read_parquet_schema(path)
        rows = pl.scan_parquet(path).select(pl.len()).collect().item()
    except Exception as exc:  # noqa: BLE001  (pyarrow/polars raise many types for bad files)
        raise InputFileError(f"{path} is a damaged Parquet file: {exc}") from exc
    if len(schema) > MAX_COLUMNS or rows == 0:
        return None  # the full read words the error
    if any(dtype == pl.Binary for dtype in schema.values()):
        return None  # only the values tell text from other bytes (_read_parquet): read it all
    kept = [
        name
        for name, dtype in schema.items()
        if not (dtype.is_nested() or dtype == pl.Object)  # left out by _read_parquet
    ]
    frame = pl.DataFrame(schema=dict.fromkeys(kept, pl.Utf8))
    return RawFile(path, "parquet", None, "", [RawSheet(None, frame)])


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


def _gunzip_within_limit(data: bytes) -> bytes | None:
    """Unpack ``data`` (gzip), or return None once it exceeds :data:`MAX_GZIP_TEXT_BYTES`.

    Read in 16 MiB chunks (``read(limit)`` would reserve the whole limit at once). Returning
    rather than raising frees the chunks at once: an exception's traceback would keep this
    frame, and a gigabyte of them, alive until the next garbage collection.
    """
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as archive:
        chunks, size = [], 0
        while chunk := archive.read(1 << 24):
            size += len(chunk)
            if size > MAX_GZIP_TEXT_BYTES:
                return None
            chunks.append(chunk)
    return b"".join(chunks)


def _read_bytes(path: Path, data: bytes, digest: str) -> RawFile:
    suffix = path.suffix.lower()
    if data.startswith(GZIP_MAGIC):
        try:
            # the trailer states the unpacked size (modulo 4 GiB): a small bomb is refused
            # once its first 64 KiB unpack (a damaged file is called damaged), before the rest
            # does; the chunked read below still counts every byte
            if _states_too_much(data[-4:]):
                with gzip.GzipFile(fileobj=io.BytesIO(data)) as archive:
                    archive.read(1 << 16)
                raise _gzip_too_large(path)
            inner = _gunzip_within_limit(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputFileError(
                f"{path} is a damaged gzip file ({exc}); download or compress it again"
            ) from exc
        if inner is None:
            raise _gzip_too_large(path)
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
        return RawFile(path, "xls", None, digest, read_xls(path, data))
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
    except _DAMAGED_ZIP as exc:
        raise InputFileError(f"{path} is a damaged zip/xlsx file ({exc})") from exc
    if any(name.startswith("xl/") for name in names):
        scans = _scan_workbook(path, data)  # before calamine allocates a grid per sheet
        sheets = _read_excel(path, data)
        for sheet in sheets:
            scan = scans.get(sheet.name or "")
            if scan is not None and scan.tall_merges:
                ranges, example = len(scan.tall_merges), scan.tall_merges[0]
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


#: Control bytes text files do not hold (all but tab, line feed, form feed, carriage return).
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f]")


def _looks_binary(head: bytes) -> bool:
    """Say whether the first bytes of a file without a byte-order mark are binary, not text.

    Binary data holds NUL bytes among many other control bytes; a text export may hold a stray
    NUL or two, which the ingest removes from the cells with a warning wherever they are
    (``clean_file``). So a NUL counts as binary only when control bytes other than tab, line
    feed, form feed and carriage return make more than 1% of the bytes (a CSV with a NUL on its
    sixth line was refused, while the same NUL on line 1,900 was removed).
    """
    if b"\x00" not in head:
        return False
    controls = len(_CONTROL_BYTES.findall(head))
    return controls * 100 > len(head)


def _decode(path: Path, data: bytes, warnings: list[str] | None = None) -> tuple[bytes, str]:
    """Return UTF-8 bytes of a text file and the encoding it was detected in.

    A file that is UTF-8 but for a few lines (two exports appended, one line pasted from
    another program) is read line by line: each line that is not UTF-8 is read as cp1252 and
    ``warnings`` names them. Read whole as cp1252, its UTF-8 accents came out as ``cafÃ©``.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        body = data[3:]
        if _is_utf8(body):
            return body, "utf-8-sig"
        mixed = _decode_mixed(path, body, warnings)  # Excel's "CSV UTF-8" with a pasted line
        if mixed is not None:
            return mixed, "utf-8-sig+cp1252"
        raise InputFileError(f"{path} starts with a UTF-8 mark but is not UTF-8")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16").encode("utf-8"), "utf-16"
        except UnicodeDecodeError as exc:
            raise InputFileError(f"{path} starts with a UTF-16 mark but is not UTF-16") from exc
    if _looks_binary(data[:65536]):
        raise InputFileError(
            f"{path} looks binary (it contains NUL bytes), not a CSV text file; "
            "give a CSV, .csv.gz, .xlsx or Parquet file"
        )
    if _is_utf8(data):
        return data, "utf-8"
    mixed = _decode_mixed(path, data, warnings)
    if mixed is not None:
        return mixed, "utf-8+cp1252"
    # Not UTF-8: an 8-bit Western export. Latin-1 and cp1252 agree except on 0x80-0x9f,
    # where cp1252 has printable characters (curly quotes, euro sign) and Latin-1 controls.
    if re.search(rb"[\x80-\x9f]", data) is None:
        return data.decode("latin-1").encode("utf-8"), "latin-1"
    try:
        return data.decode("cp1252").encode("utf-8"), "cp1252"
    except UnicodeDecodeError:
        return data.decode("latin-1").encode("utf-8"), "latin-1"


#: Every byte value outside ASCII (to count them with ``bytes.translate``, in C).
_HIGH_BYTES = bytes(range(128, 256))
#: A file with this many times more stray bytes than UTF-8 characters is 8-bit text whose
#: bytes pair up like UTF-8 here and there: it skips the line-by-line vote.
_CLEARLY_8_BIT = 100


def _decode_mixed(path: Path, data: bytes, warnings: list[str] | None) -> bytes | None:
    """Decode a mostly-UTF-8 file line by line, reading the lines that are not UTF-8 as cp1252.

    Returns None when the file is rather 8-bit text whose bytes pair up like UTF-8 somewhere:
    at once when its stray bytes outnumber its well-formed UTF-8 characters a hundred times
    (counted by one decode in C, 0.15 s for 75 MB, so a large cp1252 export never goes through
    the line loop), else when fewer of its non-ASCII lines are UTF-8 than not. The whole file
    is then read as 8-bit text. Lines end at LF (also CRLF), or at CR in a file without any LF.
    """
    text = data.decode("utf-8", errors="replace")
    stray = text.count("\ufffd")  # about one per byte that is not UTF-8
    utf8_chars = len(text) - len(data.translate(None, _HIGH_BYTES)) - stray
    del text
    if utf8_chars * _CLEARLY_8_BIT < stray:  # only the line vote below decides a close case
        return None
    newline = b"\n" if b"\n" in data else b"\r"
    lines = data.split(newline)
    bad: list[int] = []
    utf8 = 0
    for number, line in enumerate(lines, start=1):
        if line.isascii():
            continue
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            bad.append(number)
        else:
            utf8 += 1
    if len(bad) >= utf8:
        return None
    for number in bad:
        line = lines[number - 1]
        # cp1252 leaves five bytes undefined (0x81, 0x8d, 0x8f, 0x90, 0x9d): Latin-1 keeps them
        try:
            lines[number - 1] = line.decode("cp1252").encode("utf-8")
        except UnicodeDecodeError:
            lines[number - 1] = line.decode("latin-1").encode("utf-8")
    if warnings is not None:
        shown = ", ".join(str(n) for n in bad[:5]) + (", …" if len(bad) > 5 else "")
        warnings.append(
            f"the text is UTF-8 except {count(len(bad), 'line')} (line{'s' * (len(bad) > 1)} "
            f"{shown}), read as cp1252: check the accented characters there (two exports "
            "joined?)"
        )
    return newline.join(lines)


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
    warnings: list[str] = []
    text, encoding = _decode(path, data, warnings)
    if b"\r" in text and b"\n" not in text:  # classic Mac OS line ends (CR only)
        text = text.replace(b"\r", b"\n")
    start = re.search(rb"\S", text)  # no copy of the (possibly large) buffer
    if start is None:
        raise InputFileError(f"file is empty: {path} (only blank lines)")
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
    header = next(csv.reader([first_line], delimiter=delimiter), [])
    if len(header) > MAX_COLUMNS:
        raise InputFileError(
            f"{path} has {len(header):,} columns in its header (split at {delimiter!r}), more "
            f"than the {MAX_COLUMNS:,} a transaction table can have (an export has a few dozen): "
            "a wrong delimiter, or the wrong file? export the transactions as CSV again"
        )
    check_unique_header(str(path), header)
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
        if where is not None and "fields, the header" in where and "title" not in where:
            # Polars' own words ("more fields than defined in 'Schema'") say nothing more
            message = (
                f"a value holding the separator {delimiter!r} without quotes around it? quote "
                "that value or export the file again"
            )
        raise InputFileError(
            f"{path} is not a readable CSV file: {where + '; ' if where else ''}{message}"
        ) from exc
    if frame.height == 0:
        raise InputFileError(
            f"{path} has a header but no data rows (columns: {list_names(frame.columns)})"
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
    if frame.width > MAX_COLUMNS:
        raise InputFileError(
            f"{path} has {frame.width:,} columns, more than the {MAX_COLUMNS:,} a transaction "
            "table can have (an export has a few dozen): the wrong file?"
        )
    if frame.height == 0:
        raise InputFileError(
            f"{path} has columns but no data rows (columns: {list_names(frame.columns)})"
        )
    # text stored as bytes (no UTF-8 annotation) is text; lists, records, objects and other
    # bytes have no text form a field could use
    for name, dtype in frame.schema.items():
        if dtype == pl.Binary:
            with contextlib.suppress(pl.exceptions.PolarsError):  # not UTF-8: left out below
                frame = frame.with_columns(pl.col(name).cast(pl.Utf8))
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

#: Where calamine looks for the sheets a workbook lists (it resolves every sheet there).
_SHEET_FOLDERS = ("xl/worksheets/", "xl/chartsheets/", "xl/dialogsheets/")
#: Bytes of sheet XML unpacked at a time.
_CHUNK = 1 << 22
#: A start tag longer than this is never a plain cell (chunks are cut before the last ``<``).
_LONGEST_TAG = 4096
_LAST_COLUMN = 18_278  # ZZZ, the largest three-letter column
_LAST_ROW = 9_999_999  # the largest seven-digit row
#: Attributes after ``r`` in a plain cell tag (``t="s"``, ``s="3"``): one space before each,
#: double quotes, no ``<`` or ``>`` in a value, no name starting with ``r`` (calamine takes the
#: last of two ``r``). Possessive quantifiers: nothing to backtrack into, the scan stays fast.
_PLAIN_ATTRIBUTES = rb'(?: [a-qs-z]\w*+="[^"<>]*+")*+/?>'
#: A cell as spreadsheet programs write it: ``<c r="B12" t="s">``.
_PLAIN_CELL = re.compile(rb'<c r="([A-Z]{1,3})([1-9][0-9]{0,6})"' + _PLAIN_ATTRIBUTES)
#: A cell element under a namespace prefix (``<x:c r="A1">``), which calamine reads as a cell.
_PREFIXED_CELL = re.compile(rb":c[\s>/]")


def _attribute(tag: bytes, name: bytes) -> str | None:
    """Return attribute ``name`` (``r:id``, ``Target``...) of one XML start tag, or None."""
    found = re.search(rb"\s" + re.escape(name) + rb"""\s*=\s*(?:"([^"]*)"|'([^']*)')""", tag)
    return (found.group(1) or found.group(2) or b"").decode() if found else None


def _sheet_names(archive: zipfile.ZipFile) -> dict[str, str]:
    """Return ``{lower-cased part name: sheet name}`` as calamine resolves the workbook's sheets.

    Empty when the workbook part or its relationships cannot be read (calamine then fails too).
    """
    import html

    try:
        workbook = archive.read("xl/workbook.xml")
        rels = {
            _attribute(tag, b"Id"): _attribute(tag, b"Target") or ""
            for tag in _RELATIONSHIP_TAG.findall(archive.read("xl/_rels/workbook.xml.rels"))
        }
    except (KeyError, OSError, *_DAMAGED_ZIP):
        return {}
    names: dict[str, str] = {}
    for tag in _SHEET_TAG.findall(workbook):
        name = _attribute(tag, b"name")
        rel = _attribute(tag, b"r:id") or _attribute(tag, b"relationships:id")
        target = rels.get(rel, "")
        if name is None or not target:
            continue
        # absolute ("/xl/worksheets/a.xml") or relative to xl/ ("worksheets/a.xml",
        # "../xl/data/a.xml"), wherever the relationships put it
        part = target[1:] if target.startswith("/") else posixpath.join("xl", target)
        names[posixpath.normpath(part).lower()] = html.unescape(name)
    return names


def workbook_sheet_names(path: Path) -> list[str]:
    """Return the names of every sheet an ``.xlsx`` workbook lists, empty ones included.

    :func:`read_raw` leaves empty sheets out of :attr:`RawFile.sheets`; this tells a sheet that
    is there but empty from a name the workbook lacks. Empty for other files and for a workbook
    whose sheet list cannot be read.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            return list(_sheet_names(archive).values())
    except (OSError, *_DAMAGED_ZIP):
        return []


def _check_workbook_location(path: Path, archive: zipfile.ZipFile) -> None:
    """Refuse a workbook whose package puts the workbook part elsewhere than ``xl/workbook.xml``.

    calamine follows the package's root relationships (``_rels/.rels``) to the workbook and its
    sheets; the cell scan, like every spreadsheet program's writer, expects them under ``xl/``.
    A workbook kept elsewhere would have its sheets read unchecked (a stray cell far outside
    the table could abort the process), so it is refused; no known writer produces one.
    """
    rels = next((i for i in archive.infolist() if i.filename.lower() == "_rels/.rels"), None)
    if rels is None:
        return  # calamine cannot open it either: its own error follows
    for tag in _RELATIONSHIP_TAG.findall(archive.read(rels)):
        if not (_attribute(tag, b"Type") or "").endswith("/officeDocument"):
            continue
        target = (_attribute(tag, b"Target") or "").lstrip("/")
        if target and target.lower() != "xl/workbook.xml":
            raise InputFileError(
                f"{path} keeps its workbook at {target!r}, not at xl/workbook.xml where Excel, "
                "LibreOffice and other spreadsheet programs write it, so its sheets cannot be "
                "checked before reading: open it in a spreadsheet program and save it again as "
                ".xlsx, or save the table as CSV"
            )


@dataclass
class _SheetScan:
    """What a worksheet's XML says about its cells, read before calamine sees it.

    ``rows`` and ``columns`` are 1-based inclusive ranges covering every non-empty cell calamine
    can place (never smaller than calamine's; ``None`` when there is none): the cells' bounding
    box, or an upper bound of its end (the fast scan of plain cells leaves headroom).
    """

    rows: tuple[int, int] | None
    columns: tuple[int, int] | None
    tall_merges: list[str] = field(default_factory=list)

    @property
    def cells(self) -> int:
        """Cells of the grid calamine allocates for the sheet (at most)."""
        if self.rows is None or self.columns is None:
            return 0
        return (self.rows[1] - self.rows[0] + 1) * (self.columns[1] - self.columns[0] + 1)

    @property
    def width(self) -> int:
        """Columns of that grid (at most)."""
        return 0 if self.columns is None else self.columns[1] - self.columns[0] + 1

    def spans(self) -> str:
        """Name the grid as Excel names a range: ``A1:XFD1048576``."""
        assert self.rows is not None and self.columns is not None
        first = f"{_column_name(self.columns[0])}{self.rows[0]}"
        return f"{first}:{_column_name(self.columns[1])}{self.rows[1]}"


def _column_name(number: int) -> str:
    """Turn ``1`` into ``"A"``, ``16384`` into ``"XFD"`` (bijective base 26)."""
    letters = ""
    while number > 0:
        number, rest = divmod(number - 1, 26)
        letters = chr(65 + rest) + letters
    return letters or "?"


def _column_number(letters: bytes | str) -> int:
    """Turn ``"A"`` into ``1``, ``"xfd"`` into ``16384`` (either case, as calamine reads them)."""
    number = 0
    for char in letters.upper() if isinstance(letters, str) else letters.upper().decode():
        number = number * 26 + ord(char) - 64
    return number


def _at_most(bound: str, first: str, low: str, high: str) -> str:
    """Return a regex for the strings up to ``bound``, shorter ones first, then alphabetically.

    Symbols run from ``low`` to ``high`` (from ``first`` in the first place): with ``"1", "0",
    "9"`` it matches the numbers 1 to ``bound``, with ``"A", "A", "Z"`` the columns A to ``bound``.
    """
    parts = []  # as long as the bound first: most rows of a long table have its last row's length
    for i, symbol in enumerate(bound):
        lowest = first if i == 0 else low
        if symbol > lowest:
            below = f"[{lowest}-{chr(ord(symbol) - 1)}]"
            parts.append(f"{bound[:i]}{below}[{low}-{high}]{{{len(bound) - i - 1}}}+")
    parts.append(bound)
    if len(bound) > 1:
        parts.append(f"[{first}-{high}][{low}-{high}]{{0,{len(bound) - 2}}}+")
    return "|".join(parts)


@lru_cache(maxsize=256)
def _unusual_cell(last_column: int, last_row: int) -> re.Pattern[bytes]:
    """Match a cell start tag that is not a plain cell within ``last_column`` x ``last_row``.

    Plain cells inside the bounds, nearly every cell of a sheet, are skipped inside the regex
    engine; what it stops at is a cell further out (the bounds grow) or one in another form.
    """
    columns = (
        "[A-Z]{1,3}"
        if last_column >= _LAST_COLUMN
        else _at_most(_column_name(last_column), "A", "A", "Z")
        if last_column
        else "(?!)"
    )
    rows = (
        "[1-9][0-9]{0,6}"
        if last_row >= _LAST_ROW
        else _at_most(str(last_row), "1", "0", "9")
        if last_row
        else "(?!)"
    )
    plain = rb' r="(?:' + columns.encode() + rb")(?:" + rows.encode() + rb')"'
    return re.compile(rb"<c(?!" + plain + _PLAIN_ATTRIBUTES + rb")[\s>/]")


def _headroom(n: int, extra: int = 16) -> int:
    """Return a bound a little past ``n``: a growing table stops the scan some dozen times."""
    return n + n // 8 + extra


def _unpacked(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Iterator[bytes]:
    """Unpack one part of a zip chunk by chunk, all of it, as calamine's zip reader does.

    zipfile stops at the size the zip directory declares, calamine at the end of the compressed
    data: a part declaring 300 bytes can unpack to gigabytes there. The parts calamine cannot
    unpack (other than stored and deflated, or encrypted: it stops with an error) are read by
    zipfile.
    """
    stored_or_deflated = info.compress_type in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
    if info.flag_bits & 1 or not stored_or_deflated or archive.fp is None:
        with archive.open(info) as stream:
            while block := stream.read(_CHUNK):
                yield block
        return
    source = archive.fp  # shared with zipfile's own readers: seek before every read
    source.seek(info.header_offset)
    header = source.read(30)
    if len(header) < 30 or not header.startswith(ZIP_MAGIC):
        raise zipfile.BadZipFile(f"no local header for {info.filename!r}")
    name_length, extra_length = struct.unpack("<HH", header[26:])
    position = info.header_offset + 30 + name_length + extra_length
    left = info.compress_size
    inflater = None if info.compress_type == zipfile.ZIP_STORED else zlib.decompressobj(-15)
    while left > 0:
        source.seek(position)
        packed = source.read(min(left, 1 << 20))  # 1 MiB in: what is left is copied each time
        if not packed:
            return
        position += len(packed)
        left -= len(packed)
        if inflater is None:
            yield packed
            continue
        pending = packed
        while not inflater.eof:
            block = inflater.decompress(pending, _CHUNK)  # at most _CHUNK bytes at a time
            if block:
                yield block
            pending = inflater.unconsumed_tail
            if not pending and len(block) < _CHUNK:
                break
        if inflater.eof:
            return


def _check_parts_besides_sheets(path: Path, archive: zipfile.ZipFile) -> None:
    """Refuse a workbook whose parts besides the worksheets unpack to more than the limit.

    Checked on the sizes the zip directory declares, then while unpacking (they can lie), a
    chunk at a time: nothing is kept.

    Raises
    ------
    InputFileError
        When the parts other than the worksheets unpack to more than
        :data:`MAX_WORKBOOK_PARTS_BYTES` together.
    """
    parts = [
        info
        for info in archive.infolist()
        if not info.is_dir() and not info.filename.lower().startswith(_SHEET_FOLDERS)
    ]

    def too_big(sizes: dict[str, int]) -> InputFileError:
        largest = max(sizes, key=sizes.__getitem__)
        return InputFileError(
            f"{path} holds more than {MAX_WORKBOOK_PARTS_BYTES / 2**20:g} MiB besides its sheets "
            f"once unpacked (shared strings, styles...; the most in {largest!r}), too large to "
            "read: a damaged or hostile file? save the table as CSV (or .csv.gz) and ingest that"
        )

    declared: dict[str, int] = {}  # a name can come twice
    for info in parts:
        declared[info.filename] = declared.get(info.filename, 0) + info.file_size
    if sum(declared.values()) > MAX_WORKBOOK_PARTS_BYTES:
        raise too_big(declared)
    unpacked = dict.fromkeys(declared, 0)
    total = 0
    for info in parts:
        try:
            for block in _unpacked(archive, info):
                unpacked[info.filename] += len(block)
                total += len(block)
                if total > MAX_WORKBOOK_PARTS_BYTES:
                    raise too_big(unpacked)
        except _DAMAGED_ZIP:
            continue  # a damaged part unpacks no further in calamine (which fails if it needs it)


def _sheet_blocks(archive: zipfile.ZipFile, info: zipfile.ZipInfo, where: str) -> Iterator[bytes]:
    """Unpack a worksheet part chunk by chunk, refusing it past :data:`MAX_SHEET_XML_BYTES`."""
    too_big = (
        f"{where} holds more than {MAX_SHEET_XML_BYTES / 2**30:g} GiB of cells once unpacked, "
        "too large to read; save the table as CSV (or .csv.gz) and ingest that"
    )
    if info.file_size > MAX_SHEET_XML_BYTES:
        raise InputFileError(too_big)
    read = 0
    for block in _unpacked(archive, info):  # all calamine reads, whatever size is declared
        read += len(block)
        if read > MAX_SHEET_XML_BYTES:  # the size in the zip directory can lie
            raise InputFileError(too_big)
        yield block


def _scan_plain(blocks: Iterator[bytes]) -> _SheetScan | None:
    """Bound a worksheet's cells from their ``r="B12"`` references, fast; None when unsure.

    Only cells written as spreadsheet programs write them (``<c r="B12" ...>``, no namespace
    prefix, double quotes) are understood here; at the first other one the caller reads the
    sheet again with :class:`_CellTracker`. The bound is an upper one: ``A1`` to a little past
    the last row and column seen. ``<dimension ref>`` is not used: calamine ignores it too.
    """
    last_row = last_column = 0
    unusual = _unusual_cell(0, 0)
    carry = b""
    after_cells = -1  # offset of "</sheetData>" in the current buffer, once found
    merges: list[str] = []
    first = True
    for block in blocks:
        buffer = carry + block
        if first:
            first = False
            if buffer.startswith((b"\xfe\xff", b"\xff\xfe")) or b"\x00" in buffer[:256]:
                return None  # UTF-16: the byte patterns below would find nothing
        cut = buffer.rfind(b"<")
        if cut < 0 or len(buffer) - cut > _LONGEST_TAG:
            cut = len(buffer)
        carry = buffer[cut:]
        if _PREFIXED_CELL.search(buffer, 0, cut):
            return None
        pos = 0
        while (hit := unusual.search(buffer, pos, cut)) is not None:
            plain = _PLAIN_CELL.match(buffer, hit.start(), cut)
            if plain is None:
                return None
            last_column = max(last_column, _headroom(_column_number(plain[1]), extra=0))
            last_row = max(last_row, _headroom(int(plain[2])))
            unusual = _unusual_cell(min(last_column, _LAST_COLUMN), min(last_row, _LAST_ROW))
            pos = plain.end()
        if after_cells < 0:
            after_cells = buffer.find(b"</sheetData>", 0, cut)
        if after_cells >= 0:
            merges += _tall_merges(buffer[after_cells:cut])
            after_cells = 0
    if not last_row:
        return _SheetScan(None, None, tall_merges=merges)
    return _SheetScan((1, last_row), (1, last_column), tall_merges=merges)


def _tall_merges(xml: bytes) -> list[str]:
    return [ref.decode() for ref, first, last in _MERGE_CELL.findall(xml) if first != last]


def _reference(text: str, row_only: bool = False) -> tuple[int, int] | None:
    """``"B12"`` -> ``(12, 2)`` as calamine reads a reference (letters of either case).

    None where calamine stops with an error (it then allocates nothing).
    """
    found = re.fullmatch(r"([A-Za-z]*)([0-9]+)", text)
    if found is None or int(found[2]) == 0 or (not found[1] and not row_only):
        return None
    return int(found[2]), _column_number(found[1]) if found[1] else 0


class _CellTracker:
    """Place a worksheet's cells as calamine does, from the XML events of a real parser.

    For sheets :func:`_scan_plain` cannot read: cells without ``r`` (placed after the previous
    cell, on the row after the previous ``</row>``), namespace prefixes, odd quoting. An element
    written ``<c/>`` is skipped by calamine but ``<c></c>`` is not, and the parser cannot tell
    the two apart: both readings are kept, as ranges of where the next cell goes.
    """

    def __init__(self) -> None:
        import xml.parsers.expat

        self.parser = xml.parsers.expat.ParserCreate()
        self.parser.StartElementHandler = self._start
        self.parser.EndElementHandler = self._end
        self.parser.StartDoctypeDeclHandler = self._doctype
        self.state = "before"  # "cells" inside the first <sheetData>, then "after"
        self.row = (0, 0)  # calamine's 0-based next row, lowest and highest
        self.column = (0, 0)
        self.saved: tuple[tuple[int, int], tuple[int, int]] | None = None
        self.cell: tuple[tuple[int, int], tuple[int, int]] | None = None
        self.cell_depth = -1
        self.depth = 0
        self.children = 0  # elements opened since the last start tag
        self.value = False
        self.rows: tuple[int, int] | None = None
        self.columns: tuple[int, int] | None = None
        self.merges: list[str] = []

    def _doctype(self, *_: object) -> None:
        # entities declared there would add elements calamine never sees
        raise InputFileError("a worksheet declares a DOCTYPE, which no spreadsheet program writes")

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        local = name.rpartition(":")[2]
        self.depth += 1
        self.children += 1
        if self.cell is not None:
            if self.depth == self.cell_depth + 1:
                if local not in ("v", "is", "f"):
                    raise InputFileError(f"a cell holds a <{name}> element")
                self.value = True
            return
        if self.state == "before":
            if local == "sheetData":
                self.state = "cells"
            return
        if self.state == "after":
            if local == "mergeCell" and (ref := attrs.get("ref")):
                found = re.fullmatch(r"[A-Z]+(\d+):[A-Z]+(\d+)", ref)
                if found and found[1] != found[2]:
                    self.merges.append(ref)
            return
        self.children = 0
        self.saved = (self.row, self.column)
        if local == "row":
            ref = attrs.get("r")
            at = _reference(ref, row_only=True) if ref is not None else None
            if ref is not None and at is None:
                raise InputFileError(f"a row is numbered {ref!r}")
            if at is not None:
                self.row = (at[0] - 1, at[0] - 1)
        elif local == "c":
            ref = attrs.get("r")
            at = _reference(ref) if ref is not None else None
            if ref is not None and at is None:
                raise InputFileError(f"a cell is at {ref!r}")
            rows = self.row
            if at is not None:
                rows = (at[0] - 1, at[0] - 1)
                self.column = (at[1] - 1, at[1] - 1)
            self.cell = (rows, self.column)
            self.cell_depth = self.depth
            self.value = False

    def _end(self, name: str) -> None:
        local = name.rpartition(":")[2]
        self.depth -= 1
        if self.cell is not None:
            if self.depth + 1 != self.cell_depth:
                return
            (rows, columns), self.cell = self.cell, None
            if self.value:
                self._include(rows, columns)
            after = (self.column[0] + 1, self.column[1] + 1)
            if self.children == 0 and self.saved is not None:  # <c/> or <c></c>
                self.column = _union(self.saved[1], after)
            else:
                self.column = after
            self.children = 1
            return
        if self.state != "cells":
            return
        if local == "sheetData":
            self.state = "after"
        elif local == "row":
            after = (self.row[0] + 1, self.row[1] + 1)
            if self.children == 0 and self.saved is not None:  # <row/> or <row></row>
                self.row = _union(self.saved[0], after)
                self.column = _union(self.saved[1], (0, 0))
            else:
                self.row, self.column = after, (0, 0)
        self.children = 1

    def _include(self, rows: tuple[int, int], columns: tuple[int, int]) -> None:
        # 0-based here, 1-based in the result
        rows, columns = (rows[0] + 1, rows[1] + 1), (columns[0] + 1, columns[1] + 1)
        self.rows = rows if self.rows is None else _union(self.rows, rows)
        self.columns = columns if self.columns is None else _union(self.columns, columns)

    def scan(self, blocks: Iterator[bytes]) -> _SheetScan:
        import xml.parsers.expat

        try:
            for block in blocks:
                self.parser.Parse(block, False)
            self.parser.Parse(b"", True)
        except xml.parsers.expat.ExpatError as exc:
            raise InputFileError(f"its XML is damaged ({exc})") from exc
        return _SheetScan(self.rows, self.columns, tall_merges=self.merges)


def _union(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    return min(a[0], b[0]), max(a[1], b[1])


def _scan_sheet(archive: zipfile.ZipFile, info: zipfile.ZipInfo, where: str) -> _SheetScan:
    """Bound the cells of one worksheet part.

    Fast when it is plain; exactly when it is not, or when the fast bound is above
    :data:`MAX_SHEET_CELLS`.
    """
    scan = _scan_plain(_sheet_blocks(archive, info, where))
    if scan is None or scan.cells > MAX_SHEET_CELLS:
        try:
            scan = _CellTracker().scan(_sheet_blocks(archive, info, where))
        except InputFileError as exc:
            if str(exc).startswith(where):
                raise
            raise InputFileError(
                f"{where} cannot be checked before reading: {exc}; open it in a spreadsheet "
                "program and save it again, or save the table as CSV"
            ) from exc
    return scan


def _scan_workbook(path: Path, data: bytes) -> dict[str, _SheetScan]:
    """Scan every worksheet of an xlsx workbook before calamine reads it, and size the rest.

    Returns ``{sheet name: scan}``; a part that the workbook does not list under a name is
    scanned too, under its part name.

    Raises
    ------
    InputFileError
        When a sheet's cells span more than :data:`MAX_SHEET_CELLS` cells (calamine would
        allocate them all, and abort the process when it cannot) or its XML is larger than
        :data:`MAX_SHEET_XML_BYTES`, when the other parts (the shared strings above all) unpack
        to more than :data:`MAX_WORKBOOK_PARTS_BYTES`, or a part cannot be unpacked.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except _DAMAGED_ZIP as exc:
        raise InputFileError(f"{path} is a damaged zip/xlsx file ({exc})") from exc
    try:
        _check_parts_besides_sheets(path, archive)  # before anything reads them whole
        _check_workbook_location(path, archive)  # the scan below looks where writers put it
    except _DAMAGED_ZIP as exc:
        raise InputFileError(f"{path} is a damaged Excel workbook ({exc})") from exc
    names = _sheet_names(archive)
    found: dict[str, _SheetScan] = {}
    for info in archive.infolist():
        part = info.filename.lower()
        # the usual folders, and any other part the workbook lists as a sheet (calamine reads a
        # sheet wherever xl/_rels/workbook.xml.rels points: xl/data/sheet1.xml escaped the scan)
        if info.is_dir() or not (part.startswith(_SHEET_FOLDERS) or part in names):
            continue
        name = names.get(part, info.filename)
        where = f"{path} (sheet {name!r})"
        try:
            scan = _scan_sheet(archive, info, where)
        except _DAMAGED_ZIP as exc:
            raise InputFileError(f"{path} is a damaged Excel workbook ({exc})") from exc
        if scan.cells > MAX_SHEET_CELLS:
            raise InputFileError(
                f"{where} spans {scan.spans()} ({scan.cells:,} cells), too large to read: a "
                "stray value far outside the table? delete it (or clear everything right of and "
                "below the table), or save the table as CSV"
            )
        if part in names:
            found[name] = scan
    return found


def _may_repeat_a_field(names: list[str]) -> bool:
    """Whether a sheet's header row may name a field twice, judged from fastexcel's column names.

    fastexcel renames the second ``Price`` of a header row ``Price_1`` (``Price_2``... while the
    name is taken), so a header naming a field twice leaves a name ``X_N`` after a column ``X``
    whose name is a field's. The same names come from a header with a literal ``Price_1``: True
    means only the header row's text can tell (:func:`check_unique_header` on it). Cells of the
    header row that are no text (numbers, dates, true/false) read as digits or ``true``/``false``,
    never a field's name, so they need no look either.
    """
    from retail_clv.ingest.columns import ALIASES, normalise_name

    known = {alias for aliases in ALIASES.values() for alias in aliases}
    earlier: set[str] = set()
    for name in names:
        base, underscore, number = name.rpartition("_")
        if underscore and number.isdigit() and base in earlier and normalise_name(base) in known:
            return True
        earlier.add(name)
    return False


def _read_excel(path: Path, data: bytes) -> list[RawSheet]:
    import fastexcel

    try:
        reader = fastexcel.read_excel(data)
        sheets: list[RawSheet] = []
        too_wide: list[tuple[str, int]] = []
        for name in reader.sheet_names:
            # calamine parses the whole sheet on every load_sheet: one load serves the width, the
            # header and the cells (to_polars makes the columns, after the checks)
            sheet = reader.load_sheet(name, dtypes="string")
            if sheet.width > MAX_COLUMNS:
                too_wide.append((name, sheet.width))  # no transaction table: skipped below
                continue
            if _may_repeat_a_field([column.name for column in sheet.available_columns()]):
                # rare: only the header row's own text tells a repeated name from a literal
                # "Price_1"; that takes a second parse of the sheet
                header = reader.load_sheet(name, header_row=None, n_rows=1, dtypes="string")
                values = header.to_polars().row(0)
                check_unique_header(
                    f"{path} (sheet {name!r})", [v for v in values if v is not None]
                )
            frame = _as_text(sheet.to_polars())
            if frame.height == 0 or frame.width == 0:
                logger.info("%s: sheet %r has no data rows, skipped", path, name)
                continue
            sheets.append(RawSheet(name, frame))
    except InputFileError:
        raise
    except Exception as exc:  # noqa: BLE001  (calamine errors are not a public hierarchy)
        raise InputFileError(f"{path} is not a readable Excel workbook: {exc}") from exc
    if too_wide and not sheets:
        name, width = too_wide[0]
        raise InputFileError(
            f"{path} (sheet {name!r}) has {width:,} columns, more than the {MAX_COLUMNS:,} a "
            "transaction table can have (an export has a few dozen): the wrong sheet, or a "
            "stray value far right of the table? delete it, or save the table as CSV"
        )
    if not sheets:
        raise InputFileError(f"{path} has no sheet with data rows")
    sheets[0].warnings.extend(
        f"sheet {name!r} ({width:,} columns, more than the {MAX_COLUMNS:,} a transaction table "
        "can have) was skipped, not read as transactions"
        for name, width in too_wide
    )
    return sheets
