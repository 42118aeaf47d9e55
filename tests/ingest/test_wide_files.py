"""Files with absurdly many columns are refused at once, and messages list few column names.

A CSV header of 200,000 names (1.9 MB) used to keep a core busy for 7 minutes matching every
missing field against every name, and the message would have listed all 200,000.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from retail_clv.errors import InputFileError, SchemaError
from retail_clv.ingest.columns import list_names, resolve_columns
from retail_clv.ingest.pipeline import clean_file
from retail_clv.ingest.readers import MAX_COLUMNS, read_raw

from .conftest import HEADER_II, VALID


@pytest.mark.timeout(60)
def test_a_csv_header_of_200000_columns_is_refused_at_once(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    names = [f"column{i}" for i in range(200_000)]
    path.write_text(",".join(names) + "\n" + ",".join("1" for _ in names) + "\n")
    assert path.stat().st_size > 1_500_000
    with pytest.raises(InputFileError) as caught:  # the timeout guards against the old hang
        clean_file(path)
    message = str(caught.value)
    assert "has 200,000 columns in its header (split at ',')" in message
    assert f"more than the {MAX_COLUMNS:,}" in message
    assert "a wrong delimiter, or the wrong file?" in message
    assert "column199999" not in message and len(message) < 500


def test_an_excel_sheet_with_too_many_columns_is_refused(tmp_path: Path) -> None:
    import xlsxwriter

    path = tmp_path / "wide.xlsx"
    with xlsxwriter.Workbook(path) as workbook:
        sheet = workbook.add_worksheet("Export")
        sheet.write_row(0, 0, [f"c{i}" for i in range(MAX_COLUMNS + 500)])
        sheet.write_row(1, 0, [str(i) for i in range(MAX_COLUMNS + 500)])
    with pytest.raises(InputFileError, match=r"\(sheet 'Export'\) has 1,500 columns, more than"):
        read_raw(path)


def test_a_too_wide_sheet_beside_the_transactions_is_skipped_with_a_warning(
    tmp_path: Path,
) -> None:
    import xlsxwriter

    path = tmp_path / "two.xlsx"
    with xlsxwriter.Workbook(path) as workbook:
        orders = workbook.add_worksheet("Orders")
        orders.write_row(0, 0, HEADER_II.split(","))
        orders.write_row(1, 0, VALID.split(","))
        daily = workbook.add_worksheet("Daily totals")
        daily.write_row(0, 0, [f"d{i}" for i in range(MAX_COLUMNS + 101)])
    result = clean_file(path)
    assert result.report.rows_loaded == 1
    assert any(
        "sheet 'Daily totals' (1,101 columns, more than the 1,000" in w
        for w in result.report.warnings
    )


def test_a_file_at_the_column_limit_is_read(tmp_path: Path) -> None:
    path = tmp_path / "limit.csv"
    header = HEADER_II + "," + ",".join(f"extra{i}" for i in range(MAX_COLUMNS - 8))
    path.write_text(header + "\n" + VALID + "," * (MAX_COLUMNS - 8) + "\n")
    assert read_raw(path).sheets[0].frame.width == MAX_COLUMNS


@pytest.mark.timeout(60)
def test_a_wide_header_without_the_fields_fails_fast_with_a_short_listing(tmp_path: Path) -> None:
    """1,000 columns (the limit), none a field, on the header and ten rows below it."""
    path = tmp_path / "nofields.csv"
    lines = [",".join(f"name{r}x{i}" for i in range(MAX_COLUMNS)) for r in range(12)]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(SchemaError) as caught:  # the timeout guards against the old slowness
        clean_file(path)
    message = str(caught.value)
    assert "'name0x19' … and 980 more" in message
    assert "name0x20'" not in message


def test_listings_are_cut_after_twenty_names() -> None:
    assert list_names([]) == "(none)"
    assert list_names(["a", "b"]) == "'a', 'b'"
    names = [f"n{i}" for i in range(25)]
    assert list_names(names) == ", ".join(repr(n) for n in names[:20]) + " … and 5 more"
    assert list_names(names[:20]) == ", ".join(repr(n) for n in names[:20])


def test_a_missing_column_message_lists_few_names_and_still_suggests() -> None:
    found = [f"Other {i}" for i in range(300)] + ["Invoice", "StockCode", "Qty", "Date"]
    found += ["Customer", "Unit Prise"]
    with pytest.raises(SchemaError) as caught:
        resolve_columns(found)
    message = str(caught.value)
    assert "required column 'price' is missing" in message
    assert "… and 286 more" in message
    assert "(closest match: 'Unit Prise')" in message
