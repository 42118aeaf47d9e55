"""The pre-flight of an ingest (``check_file``): cheap where the format allows, never wrong.

The command-line side (nothing stored, no store created) is in test_cli_ingest.py.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from retail_clv.errors import SchemaError
from retail_clv.ingest import pipeline, readers
from retail_clv.ingest.pipeline import FilesRefusedError, check_file, check_files, ingest_files

from .conftest import HEADER_II, VALID, write_csv, write_no_price, write_parquet


def test_a_big_csv_is_checked_from_its_first_lines_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readers, "HEADER_BYTES", 1_000)
    lines = [VALID.replace("489434", str(500_000 + i)) for i in range(200)]
    good = write_csv(tmp_path / "good.csv", lines)
    assert good.stat().st_size > 10 * readers.HEADER_BYTES
    seen: list[int] = []
    real = readers._read_csv_bytes

    def spy(path: Path, data: bytes) -> tuple[pl.DataFrame, str, str, list[str]]:
        seen.append(len(data))
        return real(path, data)

    monkeypatch.setattr(readers, "_read_csv_bytes", spy)
    monkeypatch.setattr(pipeline, "read_raw", _no_full_read)
    assert check_file(good) is None
    assert seen and max(seen) <= readers.HEADER_BYTES


def _no_full_read(path: object) -> None:
    raise AssertionError(f"{path} was read whole")


def test_a_csv_the_first_lines_misjudge_is_read_whole_and_not_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readers, "HEADER_BYTES", 400)
    # a quoted description with line breaks across the cut: the first lines alone do not parse
    long = '"' + "line\n" * 200 + '"'
    lines = [VALID, VALID.replace("15CM CHRISTMAS GLASS BALL 20 LIGHTS", long)]
    path = write_csv(tmp_path / "multiline.csv", lines)
    raw = check_file(path)
    assert raw is not None and raw.sheets[0].frame.height == 2
    with pytest.raises(SchemaError, match="required column 'price' is missing"):
        check_file(write_no_price(tmp_path / "bad.csv"))


def test_a_parquet_file_is_checked_from_its_footer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_parquet(tmp_path / "good.parquet", [VALID])
    monkeypatch.setattr(pipeline, "read_raw", _no_full_read)
    assert check_file(path) is None


def _workbook(path: Path, frame: pl.DataFrame) -> Path:
    import xlsxwriter

    with xlsxwriter.Workbook(path) as workbook:
        frame.write_excel(workbook, worksheet="Orders")
    return path


def _orders() -> pl.DataFrame:
    names = HEADER_II.split(",")
    return pl.DataFrame(
        {name: [value] for name, value in zip(names, VALID.split(","), strict=True)}
    )


def test_a_workbook_is_read_once_for_the_check_and_the_ingest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    book = _workbook(tmp_path / "shop.xlsx", _orders())
    reads: list[Path] = []
    real = pipeline.read_raw

    def counting(path: str | Path) -> readers.RawFile:
        reads.append(Path(path))
        return real(path)

    monkeypatch.setattr(pipeline, "read_raw", counting)
    engine = sa.create_engine(f"sqlite:///{tmp_path}/s.db")
    from retail_clv.store.db import migrate

    migrate(engine)
    [report] = ingest_files(check_files([book]), engine, progress=False)
    engine.dispose()
    assert report.rows_loaded == 1 and reads == [book]


def test_a_workbook_without_a_required_column_stops_before_a_good_csv_is_stored(
    tmp_path: Path,
) -> None:
    good = write_csv(tmp_path / "good.csv", [VALID])
    book = _workbook(tmp_path / "shop.xlsx", _orders().drop("Price"))
    engine = sa.create_engine(f"sqlite:///{tmp_path}/s.db")
    with pytest.raises(FilesRefusedError) as caught:
        ingest_files([good, book], engine, progress=False)
    engine.dispose()
    assert [path for path, _ in caught.value.problems] == [book]
    assert "required column 'price' is missing in shop.xlsx (sheet 'Orders')" in str(caught.value)
    assert not (tmp_path / "s.db").exists()  # the engine was never used


def test_a_parquet_id_column_of_bytes_that_are_no_text_is_refused_before_anything_is_stored(
    tmp_path: Path,
) -> None:
    """The footer says Binary; only the values show it is no UTF-8 text, which the ingest drops."""
    good = write_csv(tmp_path / "good.csv", [VALID])
    names = HEADER_II.split(",")
    values = VALID.split(",")
    frame = pl.DataFrame({n: [v] for n, v in zip(names, values, strict=True)}).with_columns(
        pl.Series("Customer ID", [b"\xff\xfe13085"], dtype=pl.Binary)
    )
    binary = tmp_path / "binary.parquet"
    frame.write_parquet(binary)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'store.db'}")
    with pytest.raises(FilesRefusedError, match=r"binary.parquet.*customer_id"):
        ingest_files([good, binary], engine, progress=False)
    assert not sa.inspect(engine).has_table("transactions")  # nothing of good.csv either
    # text stored as bytes passes the check, read whole and kept for the ingest
    text = frame.with_columns(pl.Series("Customer ID", [b"13085"], dtype=pl.Binary))
    text.write_parquet(binary)
    kept = check_file(binary)
    assert kept is not None and kept.sheets[0].frame["Customer ID"].to_list() == ["13085"]
