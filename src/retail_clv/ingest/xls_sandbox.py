"""Read legacy ``.xls`` workbooks in a child process with limited memory and time.

calamine, which reads workbooks for fastexcel, parses every sheet of an ``.xls`` (OLE2/BIFF)
file as soon as it opens it, and sizes what it allocates from what the file claims: a 5.6 KB
workbook whose DIMENSIONS record says 1,048,576 x 16,384 cells asks for 687 GB, one cell at
row and column 65535 for 137 GB, and a failed allocation aborts the whole process (the API
server, ``clv ingest``). The format has several such paths (cell bounds, a cell far out, string
table counts...), so rather than checking each one ahead, :func:`read_xls` runs
:func:`~retail_clv.ingest.readers._read_excel` in a child Python whose address space is capped
at :data:`XLS_MEMORY_LIMIT` and which is killed after :data:`XLS_TIMEOUT_SECONDS`. When the child
dies or runs out of time the caller gets an :class:`~retail_clv.errors.InputFileError`; the
errors the reader raises on purpose reach it unchanged, in type and message.

The child is a fresh interpreter (``sys.executable``, the caller's ``sys.path``) that imports
only this package's reader: unlike :mod:`multiprocessing`'s ``spawn``, it never runs the caller's
``__main__`` again, so a script without an ``if __name__ == "__main__":`` guard, the API server
and a notebook all work alike. The workbook goes to its standard input; the sheets come back as
Arrow IPC and the rest as JSON (nothing is unpickled from the process that read the file).

Where the standard library has no :mod:`resource` module (Windows), the workbook is read in the
calling process, as before.
"""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retail_clv import errors
from retail_clv.errors import InputFileError, RetailClvError

if TYPE_CHECKING:
    from retail_clv.ingest.readers import RawSheet

logger = logging.getLogger(__name__)

#: Address space the child reading an ``.xls`` workbook may use (``RLIMIT_AS``, bytes). The
#: largest sheet the format holds, 65,536 rows x 256 columns with every cell filled, peaks at
#: about 3.1 GB, of which the interpreter, Polars and fastexcel take 0.4 GB before reading; a
#: transaction export of a few dozen columns stays near 1 GB. Hostile files ask for 50 to 700 GB.
XLS_MEMORY_LIMIT = 4 << 30
#: Seconds the child may take before it is killed (the fullest sheet takes about 6 s).
XLS_TIMEOUT_SECONDS = 180.0

_ADVICE = "(a damaged or hostile file?); save it as .xlsx or CSV and try again"
#: Signals that end a process which could not get memory: abort (a failed allocation in Rust)
#: and kill (the kernel's out-of-memory killer).
_MEMORY_SIGNALS = {signal.SIGABRT, signal.SIGKILL}
#: What the child runs: the caller's import path, then :func:`main`.
_BOOTSTRAP = (
    "import json, sys; sys.path[:] = json.loads(sys.argv[1]); "
    "from retail_clv.ingest.xls_sandbox import main; main()"
)
_LENGTH = 8  # bytes of the big-endian length before each part of the answer


def read_xls(path: Path, data: bytes) -> list[RawSheet]:
    """Read the sheets of an ``.xls`` workbook as ``_read_excel`` does, in a limited child.

    Parameters
    ----------
    path : pathlib.Path
        The file, for the messages.
    data : bytes
        Its content.

    Returns
    -------
    list of RawSheet
        What :func:`~retail_clv.ingest.readers._read_excel` returns for ``data``.

    Raises
    ------
    InputFileError
        What ``_read_excel`` raises (the same message), or when reading needed more than
        :data:`XLS_MEMORY_LIMIT` bytes, took longer than :data:`XLS_TIMEOUT_SECONDS` or the
        child stopped for another reason.
    """
    from retail_clv.ingest.readers import _read_excel

    try:
        import resource  # noqa: F401  (POSIX only)
    except ImportError:
        return _read_excel(path, data)
    if not sys.executable:  # an embedded interpreter: no Python to start
        return _read_excel(path, data)
    limit, timeout = XLS_MEMORY_LIMIT, XLS_TIMEOUT_SECONDS
    command = [sys.executable, "-c", _BOOTSTRAP, json.dumps(sys.path), str(limit), str(path)]
    with subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as child:
        try:
            answer, messages = child.communicate(data, timeout=timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
            raise InputFileError(
                f"{path} could not be read: reading this .xls workbook took longer than "
                f"{_duration(timeout)} {_ADVICE}"
            ) from None
        except BaseException:  # interrupted: never leave the child behind
            child.kill()
            raise
    try:
        header, sheets = _parse(answer)
    except ValueError:
        said = messages[:1000].decode("utf-8", errors="replace").strip().partition("\n")[0]
        logger.warning(  # the first line: "memory allocation of 687194767360 bytes failed"
            "the process reading %s stopped with code %s: %s",
            path,
            child.returncode,
            said or "(nothing on standard error)",
        )
        raise InputFileError(_stopped(path, child.returncode, limit)) from None
    for name, level, text in header.get("log", []):
        logging.getLogger(name).log(level, "%s", text)
    return _outcome(path, header, sheets, limit)


def _parse(answer: bytes) -> tuple[dict[str, Any], list[bytes]]:
    """Split the child's answer into its JSON header and the Arrow IPC of each sheet."""
    parts = []
    view, offset = memoryview(answer), 0
    while offset < len(view):
        if offset + _LENGTH > len(view):
            raise ValueError("truncated answer")
        size = int.from_bytes(view[offset : offset + _LENGTH], "big")
        offset += _LENGTH
        if offset + size > len(view):
            raise ValueError("truncated answer")
        parts.append(bytes(view[offset : offset + size]))
        offset += size
    if not parts:
        raise ValueError("no answer")
    header = json.loads(parts[0])
    if not isinstance(header, dict):
        raise ValueError("not an answer")
    return header, parts[1:]


def _outcome(path: Path, header: dict[str, Any], sheets: list[bytes], limit: int) -> list[RawSheet]:
    import polars as pl

    from retail_clv.ingest.readers import RawSheet

    outcome = header.get("outcome")
    if outcome == "sheets":
        return [
            RawSheet(sheet["name"], pl.read_ipc(io.BytesIO(ipc)), list(sheet["warnings"]))
            for sheet, ipc in zip(header["sheets"], sheets, strict=True)
        ]
    if outcome == "error":
        kind = getattr(errors, str(header.get("type")), None)
        if isinstance(kind, type) and issubclass(kind, RetailClvError):
            raise kind(header["message"])
    if outcome == "memory":
        raise InputFileError(_out_of_memory(path, limit))
    raise InputFileError(f"{path} is not a readable Excel workbook: {header.get('message')}")


def main() -> None:
    """Run in the child started by :func:`read_xls`: read the workbook on standard input.

    Arguments: the import path (JSON), the address space limit in bytes and the file's path
    (for the messages). The answer, on standard output, is a JSON header then the Arrow IPC of
    each sheet, each part after its length; the header's ``outcome`` is ``"sheets"``,
    ``"error"`` (an error of the package: ``type`` and ``message``), ``"memory"`` or
    ``"failed"`` (any other exception, described in ``message``).
    """
    limit, path = int(sys.argv[2]), Path(sys.argv[3])
    answer = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # whatever else writes to standard output goes to standard error
    records: list[tuple[str, int, str]] = []
    handler = _Collector(records)
    package = logging.getLogger("retail_clv")
    package.addHandler(handler)
    package.setLevel(logging.DEBUG)  # the caller's loggers decide what to keep
    _limit_resources(limit)
    try:
        parts = _read(path, sys.stdin.buffer.read(), records)
    except MemoryError:
        parts = [json.dumps({"outcome": "memory", "log": records}).encode()]
    finally:
        package.removeHandler(handler)
    for part in parts:
        answer.write(len(part).to_bytes(_LENGTH, "big"))
        answer.write(part)
    answer.close()


def _read(path: Path, data: bytes, records: list[tuple[str, int, str]]) -> list[bytes]:
    header: dict[str, Any]
    blobs: list[bytes] = []
    try:
        from retail_clv.ingest.readers import _read_excel

        sheets = _read_excel(path, data)
        for sheet in sheets:
            blob = io.BytesIO()
            sheet.frame.write_ipc(blob, compression="uncompressed")
            blobs.append(blob.getvalue())
        header = {
            "outcome": "sheets",
            "sheets": [{"name": s.name, "warnings": s.warnings} for s in sheets],
        }
    except MemoryError:
        raise
    except RetailClvError as exc:
        if isinstance(exc.__cause__, MemoryError):  # _read_excel wraps every exception
            raise exc.__cause__ from None
        header = {"outcome": "error", "type": type(exc).__name__, "message": str(exc)}
    except BaseException as exc:  # noqa: BLE001  (calamine panics are BaseException)
        header = {"outcome": "failed", "message": f"{type(exc).__name__}: {exc}"}
    header["log"] = records
    return [json.dumps(header).encode(), *blobs]


def _limit_resources(limit: int) -> None:
    """Cap the child's address space at ``limit`` bytes and its CPU time near the timeout."""
    import resource

    try:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ValueError, OSError) as exc:  # macOS may refuse: the child still shields the caller
        logger.debug("cannot limit the address space of the .xls reader: %s", exc)
    # the caller kills the child at the timeout; should the caller die first, the child's own
    # CPU limit ends it (SIGXCPU) instead of leaving it running on
    seconds = int(XLS_TIMEOUT_SECONDS) + 5
    try:
        _, hard_cpu = resource.getrlimit(resource.RLIMIT_CPU)
        if hard_cpu != resource.RLIM_INFINITY:
            seconds = min(seconds, hard_cpu)
        resource.setrlimit(resource.RLIMIT_CPU, (seconds, hard_cpu))
    except (ValueError, OSError) as exc:
        logger.debug("cannot limit the CPU time of the .xls reader: %s", exc)


class _Collector(logging.Handler):
    """Keep the child's log records as ``(logger, level, message)`` for the caller to emit."""

    def __init__(self, records: list[tuple[str, int, str]]) -> None:
        super().__init__(logging.DEBUG)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.name, record.levelno, record.getMessage()))


def _stopped(path: Path, returncode: int, limit: int) -> str:
    if returncode < 0 and -returncode in _MEMORY_SIGNALS:
        return _out_of_memory(path, limit)
    if returncode < 0:
        try:
            how = f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            how = f"signal {-returncode}"
    else:
        how = f"exit code {returncode}"
    return (
        f"{path} could not be read: the process reading this .xls workbook stopped ({how}) "
        f"{_ADVICE}"
    )


def _out_of_memory(path: Path, limit: int) -> str:
    return (
        f"{path} could not be read: reading this .xls workbook needed more than "
        f"{limit / 2**30:g} GiB of memory {_ADVICE}"
    )


def _duration(seconds: float) -> str:
    if seconds >= 120:
        return f"{seconds / 60:g} minutes"
    return f"{seconds:g} seconds"
