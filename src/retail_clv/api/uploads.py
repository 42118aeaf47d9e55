"""Receive an uploaded file safely: streamed to disk, size-capped, typed by its content.

The multipart body is parsed incrementally (python-multipart) while it arrives, so a 200 MB upload
never sits in memory and an oversize one is refused as soon as the cap is crossed (413). The file
type comes from the first bytes, not from the name the client chose (415 for anything that is not
CSV text, an Excel workbook or Parquet). The temporary folder is removed by
:meth:`SavedUpload.cleanup`, which the routes call in ``finally``.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from fastapi import HTTPException, Request
from python_multipart import MultipartParser
from python_multipart.multipart import parse_options_header

#: Extra bytes allowed on top of the file cap for multipart boundaries and small form fields.
MULTIPART_SLACK = 64 * 1024
_SNIFF_BYTES = 64 * 1024
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_EXTENSIONS = {
    "csv": ".csv",
    "csv.gz": ".csv.gz",
    "xlsx": ".xlsx",
    "xls": ".xls",
    "parquet": ".parquet",
}


@dataclass
class SavedUpload:
    """An uploaded file on local disk, with the type detected from its content."""

    path: Path
    original_name: str
    kind: str
    size: int
    folder: Path

    def cleanup(self) -> None:
        """Delete the temporary folder holding the upload (idempotent)."""
        shutil.rmtree(self.folder, ignore_errors=True)


def sniff_kind(head: bytes, path: Path) -> str | None:
    """Detect the type of a file from its first bytes.

    Parameters
    ----------
    head
        The first bytes of the file (up to 64 KiB).
    path
        The file itself, opened only to look inside ZIP containers.

    Returns
    -------
    str or None
        ``"xlsx"``, ``"xls"``, ``"parquet"``, ``"csv.gz"`` or ``"csv"``; ``None`` when the content
        is none of these (binary data, an image, a ZIP that is not a workbook...).
    """
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as archive:
                names = set(archive.namelist())
        except (zipfile.BadZipFile, OSError):
            return None
        return "xlsx" if "xl/workbook.xml" in names else None
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "xls"
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"\x1f\x8b"):
        return "csv.gz"
    return "csv" if _looks_like_text(head) else None


def _looks_like_text(head: bytes) -> bool:
    """Tell delimited text from binary: no NUL bytes and almost no control characters."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return True  # UTF-16 with a byte-order mark: let the reader decide on the encoding
    if not head or b"\x00" in head:
        return False
    controls = sum(head.count(bytes([c])) for c in range(32) if c not in (9, 10, 13))
    return controls <= len(head) // 100


def _safe_stem(filename: str) -> str:
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    for suffix in (".csv.gz", ".csv", ".xlsx", ".xls", ".parquet", ".gz", ".txt"):
        if base.lower().endswith(suffix):
            base = base[: -len(suffix)]
            break
    stem = _SAFE_NAME.sub("_", base).strip("._")[:100]
    return stem or "upload"


class _FileCollector:
    """python-multipart callbacks writing the part named ``field`` to a file on disk."""

    def __init__(self, field: str, target: IO[bytes], max_bytes: int) -> None:
        self.field = field
        self.target = target
        self.max_bytes = max_bytes
        self.size = 0
        self.filename: str | None = None
        self.found = False
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._in_target = False
        self._seen_disposition: tuple[str | None, str | None] = (None, None)
        self.repeated = False  # a second part under the field's name (dropped silently before)
        self.complete = False  # the closing boundary arrived

    def on_part_begin(self) -> None:
        self._in_target = False
        self._seen_disposition = (None, None)

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if bytes(self._header_field).lower() == b"content-disposition":
            _, options = parse_options_header(bytes(self._header_value))
            name = options.get(b"name")
            filename = options.get(b"filename")
            self._seen_disposition = (
                name.decode("utf-8", "replace") if name is not None else None,
                filename.decode("utf-8", "replace") if filename is not None else None,
            )
        self._header_field.clear()
        self._header_value.clear()

    def on_headers_finished(self) -> None:
        name, filename = self._seen_disposition
        if name == self.field and self.found:
            self.repeated = True
        if name == self.field and not self.found:
            self._in_target = True
            self.found = True
            self.filename = filename or "upload"

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if not self._in_target:
            return
        self.size += end - start
        if self.size > self.max_bytes:
            raise _TooLarge
        self.target.write(data[start:end])

    def on_part_end(self) -> None:
        self._in_target = False

    def on_end(self) -> None:
        self.complete = True


class _TooLarge(Exception):
    """Internal signal: the file part crossed the size cap."""


def _too_large(max_bytes: int) -> HTTPException:
    return HTTPException(
        status_code=413,
        detail=f"Upload too large: the limit is {max_bytes / 1_000_000:g} MB (CLV_MAX_UPLOAD_MB). "
        "Upload a CSV gzip-compressed as .csv.gz (Online Retail II's 93 MB CSV is 15 MB "
        "compressed), split the file, or raise the limit",
    )


async def receive_upload(request: Request, max_bytes: int, field: str = "file") -> SavedUpload:
    """Stream the multipart field ``field`` of ``request`` to a temporary file and type it.

    Parameters
    ----------
    request
        The incoming request; its body must be ``multipart/form-data``.
    max_bytes
        Size cap of the file (413 beyond it, checked against ``Content-Length`` first).
    field
        Name of the multipart field holding the file.

    Returns
    -------
    SavedUpload
        The file on disk, named after the client's file name (sanitised) with the extension of
        the detected type. The caller must call :meth:`SavedUpload.cleanup`.

    Raises
    ------
    fastapi.HTTPException
        413 (too large), 415 (not multipart, or content is not CSV/Excel/Parquet), 422 (no such
        field, or an empty file).
    """
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise HTTPException(
            status_code=415,
            detail=f"Send the file as multipart/form-data in a field named '{field}'",
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes + MULTIPART_SLACK:
        raise _too_large(max_bytes)

    folder = Path(tempfile.mkdtemp(prefix="clv-upload-"))
    part_path = folder / "upload.part"
    try:
        with part_path.open("wb") as target:
            collector = _FileCollector(field, target, max_bytes)
            parser = MultipartParser(
                boundary,
                callbacks={  # type: ignore[arg-type]
                    "on_part_begin": collector.on_part_begin,
                    "on_header_field": collector.on_header_field,
                    "on_header_value": collector.on_header_value,
                    "on_header_end": collector.on_header_end,
                    "on_headers_finished": collector.on_headers_finished,
                    "on_part_data": collector.on_part_data,
                    "on_part_end": collector.on_part_end,
                    "on_end": collector.on_end,
                },
            )
            total = 0
            async for chunk in request.stream():
                total += len(chunk)
                if total > max_bytes + MULTIPART_SLACK:
                    raise _TooLarge
                parser.write(chunk)
            parser.finalize()
        if not collector.complete:
            raise HTTPException(
                status_code=400,
                detail="Malformed multipart body: it ends before its closing boundary (a "
                "truncated or hand-built request?)",
            )
        if collector.repeated:
            raise HTTPException(
                status_code=422,
                detail=f"Send one file per request: the field '{field}' came more than once "
                "(upload the files one request each)",
            )
        if not collector.found:
            raise HTTPException(
                status_code=422, detail=f"The multipart field '{field}' (the file) is missing"
            )
        if collector.size == 0:
            raise HTTPException(status_code=422, detail="The uploaded file is empty")
        with part_path.open("rb") as handle:
            head = handle.read(_SNIFF_BYTES)
        kind = sniff_kind(head, part_path)
        original = collector.filename or "upload"
        if kind is None:
            raise HTTPException(
                status_code=415,
                detail=(
                    f"Unsupported file content in '{original}': expected CSV text, an Excel "
                    "workbook (.xlsx/.xls) or Parquet"
                ),
            )
        final = folder / f"{_safe_stem(original)}{_EXTENSIONS[kind]}"
        part_path.rename(final)
        return SavedUpload(final, original, kind, collector.size, folder)
    except _TooLarge:
        shutil.rmtree(folder, ignore_errors=True)
        raise _too_large(max_bytes) from None
    except HTTPException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    except Exception as exc:
        shutil.rmtree(folder, ignore_errors=True)
        if type(exc).__module__.startswith("python_multipart"):
            raise HTTPException(status_code=400, detail=f"Malformed multipart body: {exc}") from exc
        raise
