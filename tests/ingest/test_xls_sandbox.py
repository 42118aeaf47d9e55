"""Legacy .xls workbooks are read in a child process with limited memory and time.

calamine parses every sheet of an .xls when it opens the workbook and allocates what the file
claims: before the child process, a 5.6 KB workbook whose DIMENSIONS record says 1M x 16K cells
aborted the process (the API server) on a 687 GB allocation. The workbooks are written here by
hand, OLE2 container and BIFF8 records: no .xls writer is a dependency.
"""

from __future__ import annotations

import logging
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from retail_clv.errors import InputFileError
from retail_clv.ingest import readers, xls_sandbox
from retail_clv.ingest.readers import read_raw

from .conftest import HEADER_II, VALID, read_raw_in_a_child

_END_OF_CHAIN, _FREE, _FAT_SECTOR, _NO_STREAM = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD, 0xFFFFFFFF


def _record(kind: int, body: bytes = b"") -> bytes:
    return struct.pack("<HH", kind, len(body)) + body


def _bof(substream: int) -> bytes:
    """BOF of BIFF8: 0x0005 workbook globals, 0x0010 worksheet."""
    return _record(0x0809, struct.pack("<HHHHII", 0x0600, substream, 0x0DBB, 0x07CC, 0, 6))


def dimensions(first_row: int, after_row: int, first_col: int, after_col: int) -> bytes:
    """DIMENSIONS record: the cells a sheet claims (the last row and column are exclusive)."""
    return _record(0x0200, struct.pack("<IIHHH", first_row, after_row, first_col, after_col, 0))


def label(row: int, col: int, text: str) -> bytes:
    """LABEL record: a text cell, in UTF-16."""
    head = struct.pack("<HHHHB", row, col, 0, len(text), 1)
    return _record(0x0204, head + text.encode("utf-16-le"))


def cells(lines: list[str]) -> bytes:
    """Cells of comma-separated ``lines``, from A1 (an empty field is no cell)."""
    rows = [line.split(",") for line in lines]
    return b"".join(label(r, c, v) for r, row in enumerate(rows) for c, v in enumerate(row) if v)


def table(lines: list[str]) -> bytes:
    """Cells of comma-separated ``lines``, from A1, after the DIMENSIONS they span."""
    width = max(len(line.split(",")) for line in lines)
    return dimensions(0, len(lines), 0, width) + cells(lines)


def _workbook_stream(sheets: list[tuple[str, bytes]]) -> bytes:
    def globals_(offsets: list[int]) -> bytes:
        out = _bof(0x0005) + _record(0x0042, struct.pack("<H", 1200))  # CODEPAGE: UTF-16
        for (name, _), offset in zip(sheets, offsets, strict=True):  # BOUNDSHEET8
            body = struct.pack("<IBBBB", offset, 0, 0, len(name), 1) + name.encode("utf-16-le")
            out += _record(0x0085, body)
        return out + _record(0x000A)  # EOF

    start = len(globals_([0] * len(sheets)))
    offsets, bodies = [], b""
    for _, records in sheets:
        offsets.append(start + len(bodies))
        bodies += _bof(0x0010) + records + _record(0x000A)
    stream = globals_(offsets) + bodies
    return stream.ljust(4096, b"\0")  # at 4 KiB a stream leaves the mini-stream, as Excel pads


def _compound_file(stream: bytes) -> bytes:
    """An OLE2 container (version 3, 512-byte sectors) holding ``stream`` as "Workbook"."""
    sectors = -(-len(stream) // 512)
    fats = 1
    while fats * 128 < fats + 1 + sectors:
        fats += 1
    assert fats <= 109, "the header's DIFAT holds 109 FAT sectors"
    first = fats + 1  # FAT sectors, then the directory sector, then the stream
    fat = [_FAT_SECTOR] * fats + [_END_OF_CHAIN]
    fat += [first + i + 1 for i in range(sectors - 1)] + [_END_OF_CHAIN]
    fat += [_FREE] * (fats * 128 - len(fat))

    def entry(name: str, kind: int, child: int, start: int, size: int) -> bytes:
        raw = name.encode("utf-16-le") + b"\0\0" if name else b""
        return (
            raw.ljust(64, b"\0")
            + struct.pack("<HBBIII", len(raw), kind, 1, _NO_STREAM, _NO_STREAM, child)
            + bytes(36)  # CLSID, state bits, times
            + struct.pack("<III", start, size, 0)
        )

    directory = (
        entry("Root Entry", 5, 1, _END_OF_CHAIN, 0)
        + entry("Workbook", 2, _NO_STREAM, first, len(stream))
        + entry("", 0, _NO_STREAM, 0, 0) * 2
    )
    header = (
        readers.OLE2_MAGIC
        + bytes(16)
        + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6)
        + bytes(6)
        + struct.pack("<9I", 0, fats, fats, 0, 4096, _END_OF_CHAIN, 0, _END_OF_CHAIN, 0)
        + struct.pack("<109I", *range(fats), *[_FREE] * (109 - fats))
    )
    fat_bytes = struct.pack(f"<{len(fat)}I", *fat)
    return header + fat_bytes + directory + stream.ljust(sectors * 512, b"\0")


def write_xls(path: Path, sheets: list[tuple[str, bytes]]) -> Path:
    """Write an .xls workbook of ``(sheet name, BIFF8 records)``."""
    path.write_bytes(_compound_file(_workbook_stream(sheets)))
    return path


ORDERS = table([HEADER_II, VALID])
TOO_MUCH_MEMORY = (
    "could not be read: reading this .xls workbook needed more than 4 GiB of memory (a damaged "
    "or hostile file?); save it as .xlsx or CSV and try again"
)


@pytest.fixture
def children(monkeypatch: pytest.MonkeyPatch) -> list[subprocess.Popen[bytes]]:
    """Record the processes the reader starts."""
    started: list[subprocess.Popen[bytes]] = []
    real = subprocess.Popen

    def popen(*args, **kwargs):
        child = real(*args, **kwargs)
        started.append(child)
        return child

    monkeypatch.setattr(xls_sandbox.subprocess, "Popen", popen)
    return started


@pytest.fixture
def no_child(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the reader starts a process."""

    def popen(*args, **kwargs):
        raise AssertionError("a child process was started")

    monkeypatch.setattr(xls_sandbox.subprocess, "Popen", popen)


@pytest.mark.parametrize(
    ("records", "asked"),
    [
        pytest.param(
            dimensions(0, 1 << 20, 0, 1 << 14) + cells([HEADER_II, VALID]),
            687_194_767_360,
            id="dimensions-1M-x-16K",
        ),
        pytest.param(ORDERS + label(65535, 65535, "x"), 137_438_953_472, id="cell-at-65535"),
    ],
)
def test_a_hostile_xls_is_refused_instead_of_aborting(
    tmp_path: Path, records: bytes, asked: int
) -> None:
    """The reported files: 5.6 KB. Read by a script: before the fix the process aborted."""
    path = write_xls(tmp_path / "hostile.xls", [("Orders", records)])
    assert path.stat().st_size < 6000
    done = read_raw_in_a_child(path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == f"{path} {TOO_MUCH_MEMORY}"
    # the child's standard error is kept out of the caller's, and logged
    assert f"stopped with code -6: memory allocation of {asked} bytes failed" in done.stderr
    assert "rust_oom" not in done.stderr  # nor its backtrace


def test_a_small_xls_is_read_as_in_process(
    tmp_path: Path, children: list[subprocess.Popen[bytes]], caplog: pytest.LogCaptureFixture
) -> None:
    second = table(["Invoice,Quantity,Customer ID", "1,2,3", ",5,"])
    path = write_xls(
        tmp_path / "orders.xls",
        [("Orders", ORDERS), ("Empty", b""), ("Second £", second)],
    )
    expected = readers._read_excel(path, path.read_bytes())
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="retail_clv"):
        raw = read_raw(path)
    assert len(children) == 1 and children[0].returncode == 0
    assert raw.file_format == "xls" and raw.encoding is None
    assert [s.name for s in raw.sheets] == ["Orders", "Second £"] == [s.name for s in expected]
    for got, want in zip(raw.sheets, expected, strict=True):
        assert got.frame.schema == want.frame.schema
        assert got.frame.equals(want.frame)
        assert got.warnings == want.warnings
    assert raw.sheets[0].frame.row(0) == tuple(VALID.split(","))
    assert raw.sheets[1].frame.rows() == [("1", "2", "3"), (None, "5", None)]
    # what the reader logs in the child is logged in the caller
    assert f"{path}: sheet 'Empty' has no data rows, skipped" in caplog.messages


@pytest.mark.parametrize(
    "sheets",
    [
        pytest.param([("Orders", table(["Invoice,Price,Invoice", "1,2,3"]))], id="duplicate"),
        pytest.param([("Orders", table([",".join(f"c{i}" for i in range(1001)), "1"]))], id="wide"),
        pytest.param([("Empty", b"")], id="no-rows"),
    ],
)
def test_errors_of_the_reader_reach_the_caller_unchanged(
    tmp_path: Path, sheets: list[tuple[str, bytes]]
) -> None:
    path = write_xls(tmp_path / "bad.xls", sheets)
    with pytest.raises(InputFileError) as in_process:
        readers._read_excel(path, path.read_bytes())
    with pytest.raises(InputFileError) as in_child:
        read_raw(path)
    assert type(in_child.value) is InputFileError
    assert str(in_child.value) == str(in_process.value)


def test_a_slow_read_is_stopped_and_the_child_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, children: list[subprocess.Popen[bytes]]
) -> None:
    monkeypatch.setattr(xls_sandbox, "XLS_TIMEOUT_SECONDS", 0.01)  # less than Python's start
    path = write_xls(tmp_path / "orders.xls", [("Orders", ORDERS)])
    message = (
        f"{path} could not be read: reading this .xls workbook took longer than 0.01 seconds "
        "(a damaged or hostile file?); save it as .xlsx or CSV and try again"
    )
    with pytest.raises(InputFileError, match=f"^{re.escape(message)}$"):
        read_raw(path)
    assert [child.returncode for child in children] == [-9]  # killed, and waited for


@pytest.mark.parametrize(
    ("bootstrap", "how"),
    [
        ("import os, signal; os.kill(os.getpid(), signal.SIGTERM)", "signal SIGTERM"),
        ("import sys; sys.exit(3)", "exit code 3"),
        ("import sys; sys.stdout.write('garbage')", "exit code 0"),
    ],
)
def test_a_child_that_stops_without_an_answer_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bootstrap: str, how: str
) -> None:
    monkeypatch.setattr(xls_sandbox, "_BOOTSTRAP", bootstrap)
    path = write_xls(tmp_path / "orders.xls", [("Orders", ORDERS)])
    message = (
        f"{path} could not be read: the process reading this .xls workbook stopped ({how}) "
        "(a damaged or hostile file?); save it as .xlsx or CSV and try again"
    )
    with pytest.raises(InputFileError, match=f"^{re.escape(message)}$"):
        read_raw(path)


_FAILING_READER = """
import json, sys
sys.path[:] = json.loads(sys.argv[1])
from retail_clv.errors import InputFileError
from retail_clv.ingest import readers, xls_sandbox

class Panic(BaseException):
    pass

def read_excel(path, data):
    {body}

readers._read_excel = read_excel
xls_sandbox.main()
"""


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param("raise MemoryError", TOO_MUCH_MEMORY, id="memory-error"),
        pytest.param(
            "raise InputFileError('not readable') from MemoryError()",
            TOO_MUCH_MEMORY,
            id="memory-error-wrapped-by-the-reader",
        ),
        pytest.param(
            "raise Panic('boom')", "is not a readable Excel workbook: Panic: boom", id="panic"
        ),
    ],
)
def test_other_failures_in_the_child_are_worded_for_the_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str, expected: str
) -> None:
    monkeypatch.setattr(xls_sandbox, "_BOOTSTRAP", _FAILING_READER.format(body=body))
    path = write_xls(tmp_path / "orders.xls", [("Orders", ORDERS)])
    with pytest.raises(InputFileError, match=f"^{re.escape(f'{path} {expected}')}$"):
        read_raw(path)


def test_without_the_resource_module_the_workbook_is_read_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_child: None
) -> None:
    monkeypatch.setitem(sys.modules, "resource", None)  # as on Windows: import fails
    path = write_xls(tmp_path / "orders.xls", [("Orders", ORDERS)])
    assert read_raw(path).sheets[0].frame.row(0) == tuple(VALID.split(","))


def test_xlsx_and_csv_are_still_read_in_process(tmp_path: Path, no_child: None) -> None:
    from .test_excel_limits import write_workbook

    assert read_raw(write_workbook(tmp_path / "orders.xlsx", "")).file_format == "xlsx"
    csv = tmp_path / "orders.csv"
    csv.write_text(f"{HEADER_II}\n{VALID}\n")
    assert read_raw(csv).file_format == "csv"
