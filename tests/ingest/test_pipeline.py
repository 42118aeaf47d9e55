import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retail_clv.errors import SchemaError
from retail_clv.ingest.columns import FIELDS
from retail_clv.ingest.pipeline import (
    CANCELLATION_COLUMNS,
    PURCHASE_COLUMNS,
    REJECTED_COLUMNS,
    AccountingError,
    IngestReport,
    check_invariant,
    clean_file,
    clean_frame,
)

from .conftest import VALID

LINES = [
    VALID,
    VALID,  # exact duplicate of the line above
    "C489449,22087,PAPER BUNTING WHITE LACE,-12,2009-12-01 10:33:00,2.95,16321,Australia",
    "489435,22350,CAT BOWL ,12,2009-12-01 07:46:00,2.55,,United Kingdom",
    "489436,POST,POSTAGE,1,2009-12-01 09:06:00,18.0,13078.0,France",
    "A563185,B,Adjust bad debt,1,2011-08-12 14:50:00,11062.06,,United Kingdom",
    "489437,21232,STRAWBERRY CERAMIC TRINKET BOX,0,12/1/2009 9:08,1.25,13078,France",
]


def test_clean_file_splits_every_row_into_one_outcome(csv_file) -> None:
    result = clean_file(csv_file(LINES))
    report = result.report
    assert (report.rows_read, report.rows_loaded, report.rows_rejected, report.rows_duplicate) == (
        7,
        2,
        4,
        1,
    )
    assert report.reason_counts == {
        "MISSING_CUSTOMER_ID": 2,
        "CANCELLATION": 1,
        "BAD_DEBT_ADJUSTMENT": 1,
        "NON_POSITIVE_QUANTITY": 2,
    }
    assert report.customers == 2 and report.products == 2
    assert report.date_min == dt.datetime(2009, 12, 1, 7, 45)
    assert report.date_max == dt.datetime(2009, 12, 1, 9, 6)
    assert report.file_format == "csv" and report.encoding == "utf-8"
    assert report.invariant_holds


def test_public_frames_follow_the_contract(csv_file) -> None:
    result = clean_file(csv_file(LINES))
    assert tuple(result.purchases.columns) == PURCHASE_COLUMNS
    assert result.purchases.schema["invoice_date"] == pl.Datetime("us")
    assert result.purchases.schema["quantity"] == pl.Int64
    assert tuple(result.cancellations.columns) == CANCELLATION_COLUMNS
    assert tuple(result.rejected.columns) == REJECTED_COLUMNS
    # Non-product codes are purchases, with their own category; customer ids are normalised.
    post = result.purchases.filter(pl.col("stock_code") == "POST")
    assert post["category"].to_list() == ["Non-product"]
    assert post["customer_id"].to_list() == ["13078"]
    cancel = result.cancellations.row(0, named=True)
    assert cancel["quantity"] == -12 and cancel["customer_id"] == "16321"


def test_rejected_rows_keep_raw_values_file_and_row_number(csv_file) -> None:
    result = clean_file(csv_file(LINES, name="shop.csv"))
    rejected = result.rejected.sort("row_number")
    assert rejected["row_number"].to_list() == [3, 4, 6, 7]
    row = rejected.row(1, named=True)
    assert row["source_file"] == "shop.csv" and row["sheet"] is None
    assert row["raw_description"] == "CAT BOWL "  # trailing space kept as read
    assert row["raw_customer_id"] is None
    assert row["reasons"] == "MISSING_CUSTOMER_ID"
    assert rejected.row(3, named=True)["raw_invoice_date"] == "12/1/2009 9:08"


def test_extra_columns_are_kept_as_json(csv_file) -> None:
    header = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country,Note"
    result = clean_file(csv_file([LINES[3] + ",call back"], header=header))
    assert result.rejected["raw_extra"][0] == '{"Note":"call back"}'


def test_store_column_is_used_when_present(csv_file) -> None:
    header = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country,Shop"
    result = clean_file(csv_file([VALID + ",Leeds"], header=header))
    assert result.valid_rows["store"].to_list() == ["Leeds"]


def test_check_invariant_raises_on_a_broken_report() -> None:
    report = IngestReport("x.csv", None, "csv", "utf-8", 10, 5, 3, 1)
    with pytest.raises(AccountingError, match="rows read 10 = loaded 5 \\+ rejected 3"):
        check_invariant(report)


def test_report_to_dict_is_json_safe(csv_file) -> None:
    import json

    data = clean_file(csv_file(LINES)).report.to_dict()
    assert json.loads(json.dumps(data))["date_min"] == "2009-12-01T07:45:00"


# --- property: every row has exactly one outcome, whatever the mess -------------------------

VALUES = {
    "invoice": ["489434", "C489449", "A1", "", None, " 5 "],
    "stock_code": ["85048", "POST", None, "m"],
    "description": ["LIGHTS", None, " BAG ", "£10 GIFT"],
    "quantity": ["12", "-3", "0", "x", None, "2.0"],
    "invoice_date": ["2010-12-01 08:26:00", "12/1/2010 8:26", "bad", None],
    "price": ["2.5", "0", "-1", "£3", None, "nan"],
    "customer_id": ["13085", "13085.0", None, "", "nan"],
    "country": ["United Kingdom", None, "France"],
}
ROW = st.fixed_dictionaries({k: st.sampled_from(v) for k, v in VALUES.items()})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(ROW, min_size=0, max_size=40), repeat=st.lists(st.integers(0, 39), max_size=10)
)
def test_accounting_invariant_on_random_messy_frames(rows: list[dict], repeat: list[int]) -> None:
    rows = rows + [rows[i] for i in repeat if i < len(rows)]
    frame = pl.DataFrame(
        {f"raw_{k}": [r[k] for r in rows] for k in FIELDS},
        schema={f"raw_{k}": pl.Utf8 for k in FIELDS},
    ).with_columns(
        raw_extra=pl.lit(None, dtype=pl.Utf8),
        sheet=pl.lit(None, dtype=pl.Utf8),
        row_number=pl.int_range(1, len(rows) + 1, dtype=pl.Int64),
    )
    base = IngestReport("x.csv", None, "csv", "utf-8", len(rows), 0, 0, 0)
    result = clean_frame(frame, base, source_file="x.csv")
    report = result.report
    distinct = len({tuple(r[k] for k in FIELDS) for r in rows})
    assert report.rows_read == len(rows)
    assert report.rows_duplicate == len(rows) - distinct
    assert report.rows_loaded + report.rows_rejected + report.rows_duplicate == len(rows)
    purchases = result.purchases
    assert (purchases["quantity"] > 0).all() and (purchases["price"] > 0).all()
    assert purchases["customer_id"].null_count() == 0
    assert purchases["invoice_date"].null_count() == 0
    cancelled = result.cancellations
    assert (cancelled["quantity"] < 0).all() and cancelled["customer_id"].null_count() == 0
    assert result.rejected["reasons"].null_count() == 0
    assert result.cancellations.height <= report.reason_counts.get("CANCELLATION", 0)


# --- a two-sheet workbook built from the real data --------------------------------------------


def _real_slice(path: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Rows of 2010-12-01 before 10:00 from each sheet (the sheets overlap on that day)."""
    head = pl.read_csv(path, infer_schema=False, n_rows=525_461 + 3_000)
    morning = pl.col("InvoiceDate").is_between(pl.lit("2010-12-01"), pl.lit("2010-12-01 10:00"))
    sheet1 = head.slice(0, 525_461).filter(morning)
    sheet2 = head.slice(525_461, 3_000).filter(morning)
    return sheet1, sheet2


def _typed(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(
        pl.col("Quantity").cast(pl.Int64),
        pl.col("Price").cast(pl.Float64),
        pl.col("Customer ID").cast(pl.Float64),
        pl.col("InvoiceDate").str.to_datetime("%Y-%m-%d %H:%M:%S"),
    )


def test_two_sheet_workbook_counts_the_overlap_once(tmp_path: Path, online_retail_ii: Path) -> None:
    import xlsxwriter

    sheet1, sheet2 = _real_slice(online_retail_ii)
    path = tmp_path / "online_retail_II.xlsx"
    with xlsxwriter.Workbook(path) as workbook:
        _typed(sheet1).write_excel(workbook, worksheet="Year 2009-2010")
        _typed(sheet2).write_excel(workbook, worksheet="Year 2010-2011")

    # Independent expectation from the CSV text: duplicates are repeated full rows.
    both = pl.concat([sheet1, sheet2])
    distinct = both.unique()
    overlap = sheet2.unique().join(sheet1.unique(), on=sheet1.columns, how="semi", nulls_equal=True)
    valid = distinct.filter(
        pl.col("Customer ID").is_not_null()
        & ~pl.col("Invoice").str.starts_with("C")
        & ~pl.col("Invoice").str.starts_with("A")
        & (pl.col("Quantity").cast(pl.Int64) > 0)
        & (pl.col("Price").cast(pl.Float64) > 0)
    )
    assert overlap.height > 100  # the slice really does overlap (2010-12-01..09 is in both)

    result = clean_file(path)
    report = result.report
    assert report.file_format == "xlsx"
    assert report.sheet == "Year 2009-2010, Year 2010-2011"
    assert report.rows_read == both.height
    assert report.rows_duplicate == both.height - distinct.height
    assert report.rows_loaded == valid.height
    assert report.rows_rejected == distinct.height - valid.height
    assert set(result.rejected["sheet"].unique()) <= {"Year 2009-2010", "Year 2010-2011"}
    # Row numbers are 1-based data rows of each sheet.
    assert result.rejected["row_number"].min() >= 1
    assert result.rejected["row_number"].max() <= max(sheet1.height, sheet2.height)


def test_future_and_ancient_dates_are_rejected_and_not_kept_as_cancellations(csv_file) -> None:
    lines = [
        VALID,
        VALID.replace("2009-12-01 07:45:00", "2099-01-01 10:00:00").replace("489434", "489500"),
        VALID.replace("2009-12-01 07:45:00", "1900-01-01 10:00:00").replace("489434", "489501"),
        "C489449,22087,PAPER BUNTING WHITE LACE,-12,2099-12-01 10:33:00,2.95,16321,Australia",
    ]
    result = clean_file(csv_file(lines))
    assert result.report.rows_loaded == 1
    assert result.report.reason_counts["DATE_OUT_OF_RANGE"] == 3
    assert result.report.date_max == dt.datetime(2009, 12, 1, 7, 45)
    assert result.cancellations.height == 0


def test_ambiguous_slash_dates_give_a_report_warning(csv_file) -> None:
    lines = [  # as far apart either way (32 days month-first and day-first): month-first
        VALID.replace("2009-12-01 07:45:00", "03/01/2010 10:00"),
        VALID.replace("2009-12-01 07:45:00", "04/02/2010 10:00").replace("489434", "489435"),
    ]
    result = clean_file(csv_file(lines))
    assert result.report.date_min == dt.datetime(2010, 3, 1, 10)
    assert len(result.report.warnings) == 1 and "read month-first" in result.report.warnings[0]
    forced = clean_file(csv_file(lines, name="again.csv"), day_first=True)
    assert forced.report.date_min == dt.datetime(2010, 1, 3, 10)
    assert forced.report.warnings == []


def test_a_file_whose_lines_only_lack_customer_ids_says_so(csv_file) -> None:
    guest = VALID.replace(",13085,", ",,")
    result = clean_file(csv_file([guest, guest.replace("489434", "489435")]))
    assert result.report.valid_lines == 0
    assert result.report.reason_counts == {"MISSING_CUSTOMER_ID": 2}
    assert result.report.warnings[-1].startswith(
        "no purchase line could be loaded, and 2 lines were rejected only for lacking a customer id"
    )
    some = clean_file(csv_file([VALID, guest], name="some.csv"))
    assert not any("customer id" in w for w in some.report.warnings)


def test_dates_filled_only_on_each_order_s_first_line_are_explained(csv_file) -> None:
    # the CLI said "most dates could not be parsed" of cells that were empty
    first = VALID.replace("489434", "489440")
    rest = first.replace("2009-12-01 07:45:00", "").replace(",13085,", ",,")
    report = clean_file(csv_file([first, rest, rest.replace("85048", "85049")])).report
    assert report.reason_counts == {"BAD_DATE": 2, "MISSING_CUSTOMER_ID": 2}
    assert report.bad_date_examples == []
    assert report.warnings[-1] == (
        "2 rows of the 2 rejected as BAD_DATE have no date at all (empty) and most of them no "
        "customer id either: if the export fills the order's date, customer and country only "
        "on each order's first line, fill them down to the order's other lines (in a "
        "spreadsheet) and ingest the file again"
    )
    spaces = first.replace("2009-12-01 07:45:00", "   ").replace(",13085,", ",,")
    spaced = clean_file(csv_file([first, spaces.replace("85048", "85050")], name="sp.csv"))
    assert spaced.report.reason_counts == {"BAD_DATE": 1, "MISSING_CUSTOMER_ID": 1}
    assert spaced.report.bad_date_examples == []  # a cell of spaces is no unparsed date
    typo = VALID.replace("2009-12-01 07:45:00", "2009-13-45 07:45")
    unread = clean_file(csv_file([VALID, typo], name="typo.csv")).report
    assert not any("no date at all" in w for w in unread.warnings)


def test_many_exact_repeats_within_a_file_are_explained(csv_file) -> None:
    scans = [VALID] * 12 + [VALID.replace("489434", f"4895{i:02d}") for i in range(8)]
    report = clean_file(csv_file(scans)).report
    assert report.rows_duplicate == 11
    assert any(
        w.startswith("11 rows (55% of the file) repeat another row in every column read")
        for w in report.warnings
    )
    few = [VALID] * 2 + [VALID.replace("489434", f"4895{i:02d}") for i in range(30)]
    assert not any(
        "repeat another row" in w for w in clean_file(csv_file(few, name="f.csv")).report.warnings
    )


def test_rows_of_cancelled_or_refunded_orders_are_pointed_out(csv_file) -> None:
    header = (
        "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country,"
        "Financial Status,Cancelled at"
    )
    lines = [
        VALID + ",paid,",
        VALID.replace("489434", "489435") + ",voided,",
        VALID.replace("489434", "489436") + ",paid,2009-12-02 10:00",
        VALID.replace("489434", "489437") + ",Refunded,",
    ]
    report = clean_file(csv_file(lines, header=header)).report
    assert report.rows_loaded == 4  # loaded as they stand, with a word
    [note] = [w for w in report.warnings if "cancelled, voided or refunded" in w]
    assert note.startswith("3 rows of ")
    assert "'Financial Status' / 'Cancelled at' column" in note
    plain = clean_file(csv_file([VALID], name="plain.csv")).report
    assert not [w for w in plain.warnings if "refunded" in w]


def test_semicolon_export_with_decimal_commas(csv_file) -> None:
    header = "Invoice;StockCode;Description;Quantity;InvoiceDate;Price;Customer ID;Country"
    lines = [
        "489434;85048;GLASS BALL;12;2009-12-01 07:45:00;1,65;13085;France",
        "489435;22350;CAT BOWL;1.000;2009-12-01 07:46:00;1.234,50;13085;France",
        "489436;22351;DOG BOWL;2,5;2009-12-01 07:47:00;2,5;13085;France",
    ]
    result = clean_file(csv_file(lines, name="eu.csv", header=header))
    assert result.purchases["price"].to_list() == [1.65, 1234.5]
    assert result.purchases["quantity"].to_list() == [12, 1000]
    assert result.report.reason_counts == {"BAD_QUANTITY": 1}
    assert any("decimal comma" in w for w in result.report.warnings)


def _workbook(path: Path, sheets: dict[str, pl.DataFrame]) -> Path:
    import xlsxwriter

    with xlsxwriter.Workbook(path) as workbook:
        for name, frame in sheets.items():
            frame.write_excel(workbook, worksheet=name)
    return path


def _orders(n: int = 3) -> pl.DataFrame:
    names = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country"
    values = VALID.split(",")
    return pl.DataFrame(
        {name: [values[i]] * n for i, name in enumerate(names.split(","))}
    ).with_columns(pl.Series("Invoice", [f"48943{i}" for i in range(n)]))


def test_a_summary_sheet_with_some_matching_columns_is_skipped_with_a_warning(
    tmp_path: Path,
) -> None:
    summary = pl.DataFrame({"Country": ["UK"], "Revenue": ["100"], "Customer ID": ["13085"]})
    notes = pl.DataFrame({"Remark": ["exported by the till"]})
    path = _workbook(
        tmp_path / "shop.xlsx", {"Summary": summary, "Orders": _orders(), "Notes": notes}
    )
    report = clean_file(path).report
    assert report.rows_read == 3 and report.rows_loaded == 3 and report.sheet == "Orders"
    summary_note, notes_note = report.warnings
    assert summary_note.startswith(
        "sheet 'Summary' (1 row) was skipped, not read as transactions: required columns "
        "'invoice', 'stock_code', 'quantity', 'invoice_date', 'price' are missing in shop.xlsx "
        "(sheet 'Summary')"
    )
    assert summary_note.endswith("the rows of 'Orders' were read")
    assert notes_note.startswith("sheet 'Notes' (1 row) was skipped")


def test_a_workbook_without_a_transactions_sheet_names_the_closest_sheets_gap(
    tmp_path: Path,
) -> None:
    summary = pl.DataFrame({"Country": ["UK"], "Revenue": ["100"], "Customer ID": ["13085"]})
    no_price = _orders().drop("Price")
    path = _workbook(tmp_path / "shop.xlsx", {"Summary": summary, "Orders": no_price})
    with pytest.raises(
        SchemaError, match=r"required column 'price' is missing in shop.xlsx \(sheet 'Orders'\)"
    ):
        clean_file(path)


def test_a_workbook_whose_sheets_tie_for_closest_names_them_all(tmp_path: Path) -> None:
    summary = pl.DataFrame({"Country": ["UK"], "Revenue": ["100"]})
    notes = pl.DataFrame({"Note": ["call back"], "Customer ID": ["13085"]})
    totals = pl.DataFrame({"Week": ["1"], "Customer ID": ["13085"]})
    path = _workbook(tmp_path / "shop.xlsx", {"Summary": summary, "Notes": notes, "Totals": totals})
    with pytest.raises(SchemaError) as caught:
        clean_file(path)
    message = str(caught.value)
    assert message.startswith(
        "no sheet of shop.xlsx holds transactions: sheets 'Notes', 'Totals' each name 1 of the "
        "6 required columns. The first of them: required columns "
    )
    assert "(sheet 'Notes')" in message


def test_blank_rows_are_left_out_with_a_note(csv_file) -> None:
    path = csv_file([VALID, ",,,,,,,", " , ,,,,,,", "", VALID.replace("13085", "13086")])
    result = clean_file(path)
    report = result.report
    assert (report.rows_read, report.rows_loaded, report.rows_rejected) == (2, 2, 0)
    assert "3 blank rows were left out" in " ".join(report.warnings)
    assert sorted(result.purchases["customer_id"].to_list()) == ["13085", "13086"]
    bad = VALID.replace(",12,", ",-1,")
    rejected = clean_file(csv_file([VALID, ",,,,,,,", bad], name="b.csv")).rejected
    assert rejected["row_number"].to_list() == [3]  # row numbers still count the blank row


def test_a_header_followed_by_blank_lines_only_has_no_data_rows(tmp_path: Path) -> None:
    from retail_clv.errors import InputFileError

    path = tmp_path / "empty.csv"
    path.write_text(
        "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n,,,,,,,\n"
    )
    with pytest.raises(InputFileError, match=r"empty.csv has a header but no data rows \(1 blank"):
        clean_file(path)


def test_a_file_without_descriptions_says_what_categories_lose(tmp_path: Path) -> None:
    path = tmp_path / "nodesc.csv"
    header = "Invoice,StockCode,Quantity,InvoiceDate,Price,Customer ID,Country"
    path.write_text(f"{header}\n489434,85048,12,2009-12-01 07:45:00,6.95,13085,UK\n")
    [note] = clean_file(path).report.warnings
    assert note.startswith("no product descriptions were found")
    assert note.endswith('map it with --column description="<column name>"')
    with_description = tmp_path / "desc.csv"
    with_description.write_text(
        f"Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n{VALID}\n"
    )
    assert clean_file(with_description).report.warnings == []


def test_a_repeated_column_name_no_field_uses_is_kept_in_raw_extra(tmp_path: Path) -> None:
    path = tmp_path / "notes.csv"
    header = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country"
    bad = VALID.replace(",12,", ",-1,")
    path.write_text(f"{header},Notes,Notes\n{VALID},a,b\n{bad},c,d\n")
    result = clean_file(path)
    assert (result.report.rows_read, result.report.rows_loaded) == (2, 1)
    [extra] = result.rejected["raw_extra"].to_list()
    assert sorted(json.loads(extra).values()) == ["c", "d"]  # both Notes columns kept


def test_merged_cells_in_a_workbook_are_named_as_the_cause_of_blank_rows(tmp_path: Path) -> None:
    import xlsxwriter

    header = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country"
    values = VALID.split(",")
    path = tmp_path / "report.xlsx"
    with xlsxwriter.Workbook(path) as workbook:
        sheet = workbook.add_worksheet("Orders & Co")
        for col, name in enumerate(header.split(",")):
            sheet.write(0, col, name)
        for row in (1, 2, 3):
            for col, value in enumerate(values):
                if col not in (0, 6):  # invoice and customer: merged below
                    sheet.write(row, col, value.replace("85048", f"8504{row}"))
        sheet.merge_range(1, 0, 3, 0, values[0])  # one invoice over three lines
        sheet.merge_range(1, 6, 3, 6, values[6])
    report = clean_file(path).report
    assert (report.rows_loaded, report.rows_rejected) == (1, 2)
    [note] = report.warnings
    assert note.startswith(
        "sheet 'Orders & Co' has 2 merged cell ranges over several rows (e.g. A2:A4)"
    )
    assert "unmerge the cells and fill the values down" in note


HEADER_LINE = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country"


@pytest.mark.parametrize(
    ("title", "said"),
    [
        (
            "Sales export Shop XY,,,,,,,",
            "is on its row 2: the 1 row above it (a title?) was skipped",
        ),
        (
            "\n\nSales export Shop XY\ngenerated 2011-04-01",
            "is on its line 5: the 2 lines above it with fewer than three fields (a title?) were",
        ),
    ],
)
def test_a_title_above_the_header_is_skipped_with_a_note(tmp_path: Path, title, said) -> None:
    path = tmp_path / "export.csv"
    path.write_text(f"{title}\n{HEADER_LINE}\n{VALID}\n")
    report = clean_file(path).report
    assert (report.rows_read, report.rows_loaded) == (1, 1)
    [note] = report.warnings
    assert note.startswith("the header of export.csv ") and said in note


def test_a_title_row_above_an_excel_table_is_skipped(tmp_path: Path) -> None:
    import xlsxwriter

    path = tmp_path / "titled.xlsx"
    with xlsxwriter.Workbook(path) as workbook:
        sheet = workbook.add_worksheet("Export")
        sheet.write(0, 0, "Sales export - Shop XY")
        sheet.write(0, 3, "generated 2011-04-01")
        for col, value in enumerate(HEADER_LINE.split(",")):
            sheet.write(2, col, value)
        for col, value in enumerate(VALID.split(",")):
            sheet.write(3, col, value)
    report = clean_file(path).report
    assert (report.rows_read, report.rows_loaded) == (1, 1)
    [note] = report.warnings
    assert note.startswith("the header of titled.xlsx (sheet 'Export') is on its row 3")


def test_a_file_without_any_header_row_still_names_the_missing_columns(tmp_path: Path) -> None:
    path = tmp_path / "nohead.csv"
    path.write_text("Shop XY,,,,,,,\nfoo,bar,baz,,,,,\n")
    with pytest.raises(SchemaError, match="are missing in nohead.csv"):
        clean_file(path)


def test_a_second_transaction_sheet_with_a_column_problem_stops_the_ingest(tmp_path: Path) -> None:
    other = _orders(200).rename({"Customer ID": "Client Ref"})
    path = _workbook(tmp_path / "two.xlsx", {"Orders": _orders(2), "2011": other})
    with pytest.raises(SchemaError, match=r"'customer_id' is missing in two.xlsx \(sheet '2011'\)"):
        clean_file(path)  # 200 sales are not dropped for a warning line


def test_a_repeated_field_column_under_a_title_is_refused_as_without_one(tmp_path: Path) -> None:
    from retail_clv.errors import InputFileError

    path = tmp_path / "titled.csv"
    path.write_text(f"Sales report,,,,,,,,\n{HEADER_LINE},Price\n{VALID},9.99\n")
    with pytest.raises(InputFileError, match="the header has the column 'Price' more than once"):
        clean_file(path)


def test_a_column_mapping_for_the_orders_sheet_does_not_stop_at_the_summary_sheet(
    tmp_path: Path,
) -> None:
    summary = pl.DataFrame({"Country": ["UK"], "Revenue": ["100"]})
    orders = _orders(3).rename({"Price": "Unit Amount"})
    path = _workbook(tmp_path / "book.xlsx", {"Orders": orders, "Summary": summary})
    report = clean_file(path, column_map={"price": "Unit Amount"}).report
    assert (report.rows_loaded, report.sheet) == (3, "Orders")
    [note] = report.warnings
    assert note.startswith("sheet 'Summary' (1 row) was skipped")


def test_a_title_line_with_several_fields_is_named_as_the_likely_cause(tmp_path: Path) -> None:
    from retail_clv.errors import InputFileError

    path = tmp_path / "t3.csv"
    path.write_text(f"Sales export, Shop XY, April 2011\n{HEADER_LINE}\n{VALID}\n")
    with pytest.raises(InputFileError, match=r"a title line above the header\? remove it"):
        clean_file(path)


def test_a_sheet_naming_three_required_columns_stops_the_ingest(tmp_path: Path) -> None:
    renamed = _orders(4).rename({"StockCode": "Art", "InvoiceDate": "Wann", "Price": "Betrag"})
    path = _workbook(tmp_path / "months.xlsx", {"Jan": _orders(2), "Feb": renamed})
    with pytest.raises(SchemaError, match=r"missing in months.xlsx \(sheet 'Feb'\)"):
        clean_file(path)  # Feb names invoice, quantity and customer: a transaction sheet


def test_a_returns_sheet_beside_the_orders_says_how_to_ingest_the_orders(
    tmp_path: Path,
) -> None:
    # the error named only the missing column, with no way forward for the orders
    returns = _orders(3).drop("Price").rename({"Description": "Reason"})
    path = _workbook(tmp_path / "shop.xlsx", {"Orders": _orders(2), "Returns": returns})
    with pytest.raises(SchemaError) as caught:
        clean_file(path)
    message = str(caught.value)
    assert "required column 'price' is missing in shop.xlsx (sheet 'Returns')" in message
    assert message.endswith(
        "Sheet 'Orders' of shop.xlsx holds transactions; if sheet 'Returns' holds something "
        "else (returns, stock...), ingest only the sheets of transactions (clv ingest --sheet "
        "Orders FILE), or save them alone as CSV and ingest that"
    )
    # several sheets: one option each, quoted for the shell where needed
    two = _workbook(
        tmp_path / "two.xlsx", {"Orders": _orders(2), "Orders 2": _orders(1), "Returns": returns}
    )
    with pytest.raises(SchemaError, match=r"\(clv ingest --sheet Orders --sheet 'Orders 2' FILE\)"):
        clean_file(two)
    # choosing the sheet reads the orders and says what was left out
    report = clean_file(path, sheets=["Orders"]).report
    assert (report.rows_loaded, report.sheet) == (2, "Orders")
    assert report.warnings[-1].startswith(
        "sheet 'Returns' (3 rows) was skipped, not read as transactions: not chosen with --sheet"
    )


def test_a_sheet_choice_names_what_is_not_there(tmp_path: Path, csv_file) -> None:
    import xlsxwriter

    from retail_clv.errors import InputFileError

    path = tmp_path / "shop.xlsx"
    with xlsxwriter.Workbook(path) as workbook:
        _orders(2).write_excel(workbook, worksheet="Orders")
        workbook.add_worksheet("Blank")  # an empty sheet is not read: it was called missing
        _orders(1).write_excel(workbook, worksheet="Notes")
    for typo in (["Order"], ["Blank"], ["Blank", "Blank"], ["Order", "Orders"]):
        with pytest.raises(InputFileError) as caught:
            clean_file(path, sheets=typo)
        assert str(caught.value) == (
            f"no sheet '{typo[0]}' with data rows in shop.xlsx; its sheets with data rows: "
            "'Orders', 'Notes' (sheet names are matched exactly, case included; empty sheets "
            "are not read)"
        )
    # an empty sheet chosen beside one with rows (the dashboard lists every sheet) is skipped
    report = clean_file(path, sheets=["Orders", "Blank"]).report
    assert (report.rows_loaded, report.sheet) == (2, "Orders")
    assert any(
        w.startswith(
            "sheet 'Blank' (0 rows) was skipped, not read as transactions: it was not read"
        )
        for w in report.warnings
    )
    with pytest.raises(InputFileError, match="without sheets: --sheet applies to Excel"):
        clean_file(csv_file([VALID]), sheets=["Orders"])
    # a chosen sheet with a column problem stops the file, as a single sheet does
    broken = _workbook(
        tmp_path / "b.xlsx", {"Orders": _orders(2).drop("Price"), "Other": _orders(1)}
    )
    with pytest.raises(SchemaError, match=r"'price' is missing in b.xlsx \(sheet 'Orders'\)"):
        clean_file(broken, sheets=["Orders"])


def test_an_unquoted_comma_in_a_row_is_not_called_a_title(tmp_path: Path) -> None:
    from retail_clv.errors import InputFileError

    path = tmp_path / "comma.csv"
    path.write_text(f"{HEADER_LINE}\n{VALID}\n{VALID.replace('BALL', 'BALL, RED')}\n")
    with pytest.raises(InputFileError) as caught:
        clean_file(path)
    assert "line 3 has 9 fields, the header 8" in str(caught.value)
    assert "title" not in str(caught.value)


@pytest.mark.parametrize("suffix", ["xlsx", "csv"])
def test_ingest_keeps_no_copy_of_the_file_as_read_while_cleaning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    import gc

    import xlsxwriter

    from retail_clv.ingest import pipeline
    from retail_clv.ingest.readers import RawFile
    from retail_clv.store.db import get_engine

    from .conftest import write_csv

    csv = write_csv(tmp_path / "a.csv", [VALID, VALID.replace("489434", "489435")])
    path = csv
    if suffix == "xlsx":  # a workbook is read whole by the pre-flight check, then handed over
        path = tmp_path / "a.xlsx"
        with xlsxwriter.Workbook(path) as workbook:
            pl.read_csv(csv, infer_schema=False).write_excel(workbook, worksheet="Orders")
    live: list[int] = []
    clean = pipeline._clean_frame_owned

    def counting(*args, **kwargs):
        gc.collect()
        live.append(sum(isinstance(o, RawFile) for o in gc.get_objects()))
        return clean(*args, **kwargs)

    monkeypatch.setattr(pipeline, "_clean_frame_owned", counting)
    engine = get_engine(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        [report] = pipeline.ingest_files([path], engine, progress=False)
    finally:
        engine.dispose()
    assert report.rows_loaded == 2
    assert live == [0]  # the rows as read can be freed once cleaning has copied them
