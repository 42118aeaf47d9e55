import datetime as dt

import polars as pl
import pytest

from retail_clv.ingest.columns import FIELDS
from retail_clv.ingest.rules import REASON_CODES, parse_and_validate, parse_dates

GOOD = {
    "invoice": "489434",
    "stock_code": "85048",
    "description": "15CM CHRISTMAS GLASS BALL 20 LIGHTS",
    "quantity": "12",
    "invoice_date": "2009-12-01 07:45:00",
    "price": "6.95",
    "customer_id": "13085",
    "country": "United Kingdom",
}


def check(**changes: str | None) -> pl.DataFrame:
    row = {**GOOD, **changes}
    frame = pl.DataFrame(
        {f"raw_{k}": [row[k]] for k in FIELDS}, schema={f"raw_{k}": pl.Utf8 for k in FIELDS}
    )
    return parse_and_validate(frame)


def reasons(**changes: str | None) -> list[str]:
    value = check(**changes)["reasons"][0]
    return [] if value is None else value.split("|")


def test_valid_line_has_no_reason_and_is_typed() -> None:
    out = check()
    assert out["reasons"][0] is None
    assert out["quantity"].dtype == pl.Int64 and out["quantity"][0] == 12
    assert out["price"].dtype == pl.Float64 and out["price"][0] == 6.95
    assert out["invoice_date"][0] == dt.datetime(2009, 12, 1, 7, 45)
    assert out["store"][0] == "United Kingdom"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"customer_id": None}, ["MISSING_CUSTOMER_ID"]),
        ({"customer_id": "  "}, ["MISSING_CUSTOMER_ID"]),
        ({"customer_id": "nan"}, ["MISSING_CUSTOMER_ID"]),
        ({"quantity": "0"}, ["NON_POSITIVE_QUANTITY"]),
        # a customer's refund without a C invoice is a cancellation; a stock adjustment
        # (no customer) is not
        ({"quantity": "-3"}, ["CANCELLATION", "NON_POSITIVE_QUANTITY"]),
        ({"quantity": "-3", "customer_id": None}, ["MISSING_CUSTOMER_ID", "NON_POSITIVE_QUANTITY"]),
        ({"quantity": "many"}, ["BAD_QUANTITY"]),
        ({"quantity": "1.5"}, ["BAD_QUANTITY"]),
        ({"quantity": None}, ["BAD_QUANTITY"]),
        ({"price": "-11062.06"}, ["NEGATIVE_PRICE"]),
        ({"price": "0"}, ["ZERO_PRICE"]),
        ({"price": "0.0"}, ["ZERO_PRICE"]),
        ({"price": "abc"}, ["BAD_PRICE"]),
        ({"price": None}, ["BAD_PRICE"]),
        ({"price": "inf"}, ["BAD_PRICE"]),
        ({"price": "Infinity"}, ["BAD_PRICE"]),
        ({"price": "-inf"}, ["BAD_PRICE"]),
        ({"price": "1e400"}, ["BAD_PRICE"]),
        ({"price": "NaN"}, ["BAD_PRICE"]),
        ({"price": "1e300"}, ["BAD_PRICE"]),
        ({"price": "10000000"}, ["BAD_PRICE"]),
        ({"quantity": "inf"}, ["BAD_QUANTITY"]),
        ({"quantity": "1e30"}, ["BAD_QUANTITY"]),
        ({"quantity": "9223372036854775808"}, ["BAD_QUANTITY"]),
        ({"quantity": "-9223372036854775808"}, ["BAD_QUANTITY"]),
        ({"quantity": "10000000"}, ["BAD_QUANTITY"]),
        ({"quantity": "2,5"}, ["BAD_QUANTITY"]),
        ({"invoice_date": "yesterday"}, ["BAD_DATE"]),
        ({"invoice_date": None}, ["BAD_DATE"]),
        ({"invoice_date": "2010-02-30 10:00:00"}, ["BAD_DATE"]),
        ({"invoice_date": "2099-01-01 10:00:00"}, ["DATE_OUT_OF_RANGE"]),
        ({"invoice_date": "1900-01-01 10:00:00"}, ["DATE_OUT_OF_RANGE"]),
        ({"invoice_date": "1969-12-31 23:59:59"}, ["DATE_OUT_OF_RANGE"]),
        ({"invoice_date": "1970-01-01 00:00:00"}, []),
        (
            {"invoice": "A563185", "stock_code": "B", "customer_id": None},
            ["MISSING_CUSTOMER_ID", "BAD_DEBT_ADJUSTMENT"],
        ),
        # a shop whose invoice numbers start with C or A (branch codes) keeps its sales
        ({"invoice": "C-1001"}, []),
        ({"invoice": "AB-1001"}, []),
        ({"invoice": None}, ["MISSING_INVOICE"]),
        ({"invoice": ""}, ["MISSING_INVOICE"]),
        ({"stock_code": None}, ["MISSING_STOCK_CODE"]),
        ({"stock_code": "X" * 65}, ["FIELD_TOO_LONG"]),
        ({"customer_id": "9" * 65}, ["FIELD_TOO_LONG"]),
        ({"country": "Y" * 201}, ["FIELD_TOO_LONG"]),
        (
            {"invoice": "C489449", "quantity": "-12"},
            ["CANCELLATION", "NON_POSITIVE_QUANTITY"],
        ),
        (
            {"customer_id": None, "price": "0", "quantity": "-1", "invoice_date": "x"},
            ["MISSING_CUSTOMER_ID", "NON_POSITIVE_QUANTITY", "ZERO_PRICE", "BAD_DATE"],
        ),
    ],
)
def test_each_rule_and_several_rules_at_once(changes: dict, expected: list[str]) -> None:
    assert reasons(**changes) == expected


def test_codes_are_listed_in_canonical_order() -> None:
    got = reasons(invoice="C1", customer_id=None, quantity="-1", price="0", invoice_date="?")
    assert got == sorted(got, key=REASON_CODES.index)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13085", "13085"),
        ("13085.0", "13085"),
        ("13085.00", "13085"),  # a spreadsheet's two-decimal number format
        ("12.000", "12.000"),  # perhaps 12,000 with a thousands dot: never 12
        ("13085.50", "13085.50"),
        ("A13.00", "A13.00"),
        (" 13085 ", "13085"),
        ("C-77", "C-77"),
        ("12.5", "12.5"),
        (" Kunde7@Shop.DE ", "kunde7@shop.de"),
        ("@SUM(A1)", "@SUM(A1)"),  # not an e-mail address: kept as written
    ],
)
def test_customer_ids_are_normalised_text(raw: str, expected: str) -> None:
    assert check(customer_id=raw)["customer_id"][0] == expected


def test_quantity_written_as_float_is_accepted_when_whole() -> None:
    assert check(quantity="12.0")["quantity"][0] == 12


def test_price_with_currency_sign_and_thousands_separator() -> None:
    assert check(price="£1,234.50")["price"][0] == 1234.5


def test_text_is_stripped_but_raw_is_kept() -> None:
    out = check(description="  WHITE CHERRY LIGHTS ", stock_code=" 79323W")
    assert out["description"][0] == "WHITE CHERRY LIGHTS"
    assert out["raw_description"][0] == "  WHITE CHERRY LIGHTS "
    assert out["stock_code"][0] == "79323W"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2010-12-01 08:26:00", dt.datetime(2010, 12, 1, 8, 26)),
        ("2010-12-01 08:26", dt.datetime(2010, 12, 1, 8, 26)),
        ("2010-12-01T08:26:00", dt.datetime(2010, 12, 1, 8, 26)),
        ("2010-12-01 08:26:00.000000", dt.datetime(2010, 12, 1, 8, 26)),
        ("2010-12-01", dt.datetime(2010, 12, 1)),
        ("12/1/2010 8:26", dt.datetime(2010, 12, 1, 8, 26)),
        ("01.12.2010 08:26", dt.datetime(2010, 12, 1, 8, 26)),
    ],
)
def test_date_formats(text: str, expected: dt.datetime) -> None:
    assert parse_dates(pl.Series([text]))[0] == expected


def test_slash_dates_default_to_month_first() -> None:
    parsed = parse_dates(pl.Series(["1/2/2011 10:00", "3/4/2011 10:00"]))
    assert parsed.to_list() == [dt.datetime(2011, 1, 2, 10), dt.datetime(2011, 3, 4, 10)]


def test_slash_dates_switch_to_day_first_when_the_column_proves_it() -> None:
    parsed = parse_dates(pl.Series(["25/12/2010 10:00", "1/2/2011 10:00", "13/1/2011 9:00"]))
    assert parsed.to_list() == [
        dt.datetime(2010, 12, 25, 10),
        dt.datetime(2011, 2, 1, 10),
        dt.datetime(2011, 1, 13, 9),
    ]


def test_missing_optional_columns_are_tolerated() -> None:
    frame = pl.DataFrame(
        {f"raw_{k}": [GOOD[k]] for k in FIELDS if k not in ("description", "country")}
    )
    out = parse_and_validate(frame)
    assert out["reasons"][0] is None
    assert out["store"][0] == "Unknown"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # chrono's %Y reads "12" as the year 12: 2-digit years must reach the %y formats.
        ("12/01/09 10:46", dt.datetime(2009, 12, 1, 10, 46)),
        ("12/01/09", dt.datetime(2009, 12, 1)),
        ("01/13/09", dt.datetime(2009, 1, 13)),
        ("12/01/2009 10:46 AM", dt.datetime(2009, 12, 1, 10, 46)),
        ("12/1/2009 1:05 pm", dt.datetime(2009, 12, 1, 13, 5)),
        ("12/01/2009 10:46:10 PM", dt.datetime(2009, 12, 1, 22, 46, 10)),
        ("01-Dec-2009", dt.datetime(2009, 12, 1)),
        ("01-Dec-2009 10:46", dt.datetime(2009, 12, 1, 10, 46)),
        ("01 Dec 2009", dt.datetime(2009, 12, 1)),
        ("01 Dec 2009 10:46:10", dt.datetime(2009, 12, 1, 10, 46, 10)),
        ("01.12.09 10:40", dt.datetime(2009, 12, 1, 10, 40)),
        ("01.12.09", dt.datetime(2009, 12, 1)),
        ("12-01-2009 10:46", dt.datetime(2009, 12, 1, 10, 46)),  # dashes like slashes
        ("12-13-2009", dt.datetime(2009, 12, 13)),
    ],
)
def test_two_digit_years_and_more_formats(text: str, expected: dt.datetime) -> None:
    assert parse_dates(pl.Series([text]))[0] == expected


@pytest.mark.parametrize(
    "text",
    [
        "2011-01-05T23:30:00Z",
        "2011-01-05 23:30:00 +0100",
        "2011-01-05T23:30+01:00",
        "2011-01-05T23:30:00.000-05:00",
        "2011-01-05T23:30:00 UTC",
    ],
)
def test_iso_time_zone_suffix_is_dropped_keeping_the_written_time(text: str) -> None:
    notes: list[str] = []
    parsed = parse_dates(pl.Series([text, "2011-01-06 08:00:00"]), notes=notes)
    # kept as written: converting 23:30 +01:00 to UTC would move no date, -05:00 would
    assert parsed.to_list() == [dt.datetime(2011, 1, 5, 23, 30), dt.datetime(2011, 1, 6, 8)]
    [note] = notes
    assert note.startswith("1 dates carry a time-zone suffix") and "no conversion to UTC" in note


def test_no_time_zone_note_without_a_suffix() -> None:
    notes: list[str] = []
    parse_dates(pl.Series(["2011-01-05T23:30:00", "2011-01-05 +0100"]), notes=notes)
    assert not [n for n in notes if "time-zone" in n]


def test_year_formats_need_four_digits() -> None:
    parsed = parse_dates(pl.Series(["12/01/09 10:46", "0012-01-09", "12-01-09"]))
    assert parsed[0] == dt.datetime(2009, 12, 1, 10, 46)
    assert parsed[1] == dt.datetime(12, 1, 9)  # written in full: DATE_OUT_OF_RANGE, not a guess
    assert parsed[2] is None


def test_two_digit_day_first_column() -> None:
    parsed = parse_dates(pl.Series(["01/12/09", "25/12/09 10:00"]))
    assert parsed.to_list() == [dt.datetime(2009, 12, 1), dt.datetime(2009, 12, 25, 10)]


def test_ambiguous_slash_dates_take_the_reading_that_keeps_them_together() -> None:
    # the first three days of March written day-first were read as 3 January, 3 February and
    # 3 March (a file of early-month days proves nothing: no part above 12)
    notes: list[str] = []
    parsed = parse_dates(pl.Series(["01/03/2010", "02/03/2010", "03/03/2010"]), notes=notes)
    assert parsed.to_list() == [
        dt.datetime(2010, 3, 1),
        dt.datetime(2010, 3, 2),
        dt.datetime(2010, 3, 3),
    ]
    [note] = notes
    assert note.startswith(
        "2 slash dates could be read day-first or month-first (no part above 12, e.g. "
        "'01/03/2010'); they were read day-first ('01/03/2010' = 2010-03-01), the reading that "
        "keeps the file's dates together (90% of the rows within 2 days, against 59 "
        "month-first). If the export writes the month first, undo this ingest run (clv "
        "undo-ingest with the run id of the report) and ingest it again with --month-first"
    )
    # one stray line among many does not decide the span (first-to-last did)
    december = [f"{d:02d}/12/2010" for d in range(1, 13)] * 100 + ["02/03/2010"]
    assert parse_dates(pl.Series(december))[0] == dt.datetime(2010, 12, 1)
    # the same rule keeps a month-first export of 1-12 December month-first
    notes.clear()
    december_us = parse_dates(pl.Series(["12/01/2010", "12/05/2010", "12/11/2010"]), notes=notes)
    assert december_us.to_list()[0] == dt.datetime(2010, 12, 1)
    assert "they were read month-first ('12/01/2010' = 2010-12-01)" in notes[0]
    assert "--day-first" in notes[0]


def test_ambiguous_slash_dates_as_far_apart_either_way_are_read_month_first() -> None:
    notes: list[str] = []
    parsed = parse_dates(pl.Series(["01/02/2010", "02/01/2010"]), notes=notes)
    assert parsed.to_list() == [dt.datetime(2010, 1, 2), dt.datetime(2010, 2, 1)]
    assert "they were read month-first ('01/02/2010' = 2010-01-02)" in notes[0]


@pytest.mark.parametrize(
    "values",
    [
        ["25/12/2010", "01/03/2010"],  # proven day-first
        ["12/25/2010", "01/03/2010"],  # proven month-first
        ["01/01/2010", "2010-03-01"],  # same reading either way
        ["2010-01-03 10:00:00"],  # no slash date
    ],
)
def test_no_date_order_note_when_the_column_decides(values: list[str]) -> None:
    notes: list[str] = []
    parse_dates(pl.Series(values), notes=notes)
    assert notes == []


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        (["01-03-2010 10:40", "02-03-2010"], "dashed"),
        (["01-03-2010", "02/03/2010"], "slash and dashed"),
    ],
)
def test_the_date_order_note_names_the_separator_the_file_uses(
    values: list[str], kind: str
) -> None:
    notes: list[str] = []
    parse_dates(pl.Series(values), notes=notes)
    assert len(notes) == 1
    assert notes[0].startswith(f"2 {kind} dates could be read day-first or month-first")


def test_mixed_date_orders_are_noted() -> None:
    notes: list[str] = []
    parsed = parse_dates(pl.Series(["25/12/2010", "26/12/2010", "12/27/2010"]), notes=notes)
    assert parsed.to_list() == [dt.datetime(2010, 12, 25), dt.datetime(2010, 12, 26), None]
    assert notes and "mix both orders" in notes[0] and "read day-first" in notes[0]


def test_day_first_can_be_forced() -> None:
    values = pl.Series(["01/03/2010 10:00", "02/03/2010", "01.04.2010"])
    assert parse_dates(values, day_first=True).to_list() == [
        dt.datetime(2010, 3, 1, 10),
        dt.datetime(2010, 3, 2),
        dt.datetime(2010, 4, 1),
    ]
    assert parse_dates(pl.Series(["25/12/2010"]), day_first=False)[0] is None


def test_date_out_of_range_is_relative_to_ingestion_time() -> None:
    now = dt.datetime(2011, 12, 10, 12, 0)
    frame = pl.DataFrame(
        {
            f"raw_{k}": [GOOD[k]] * 3
            if k != "invoice_date"
            else ["2011-12-11 11:59:00", "2011-12-11 12:01:00", "2009-12-01 07:45:00"]
            for k in FIELDS
        }
    )
    out = parse_and_validate(frame, now=now)
    assert out["reasons"].to_list() == [None, "DATE_OUT_OF_RANGE", None]


def column(**values: list[str]) -> pl.DataFrame:
    """Validate a frame of ``GOOD`` rows whose given fields take the listed values."""
    n = len(next(iter(values.values())))
    frame = pl.DataFrame(
        {f"raw_{k}": values.get(k, [GOOD[k]] * n) for k in FIELDS},
        schema={f"raw_{k}": pl.Utf8 for k in FIELDS},
    )
    return parse_and_validate(frame)


def test_decimal_comma_prices_are_read_per_column() -> None:
    notes: list[str] = []
    raw = ["1,65", "2,5", "1.234,50", "€ 3,20", "1.000", "12", "6.95"]
    frame = pl.DataFrame(
        {f"raw_{k}": raw if k == "price" else [GOOD[k]] * len(raw) for k in FIELDS}
    )
    out = parse_and_validate(frame, notes=notes)
    assert out["price"].to_list() == [1.65, 2.5, 1234.5, 3.2, 1000.0, 12.0, None]
    assert out["reasons"].to_list() == [None] * 6 + ["BAD_PRICE"]
    assert notes == [
        "prices use a decimal comma ('1,65' read as 1.65); dots in prices and quantities are "
        "read as thousands separators; 1 price written with a decimal dot (e.g. '6.95') "
        "rejected as BAD_PRICE rather than guessed"
    ]


def test_a_lone_decimal_comma_price_is_not_a_thousands_separator() -> None:
    assert check(price="1,65")["price"][0] == 1.65


def price_column(raw: list[str]) -> tuple[pl.DataFrame, list[str]]:
    notes: list[str] = []
    frame = pl.DataFrame(
        {f"raw_{k}": raw if k == "price" else [GOOD[k]] * len(raw) for k in FIELDS}
    )
    return parse_and_validate(frame, notes=notes), notes


def test_three_decimal_comma_prices_after_a_zero_are_decimal() -> None:
    out, notes = price_column(["0,820", "7,640", "12,500"])
    assert out["price"].to_list() == [0.82, 7.64, 12.5]
    assert notes and notes[0].startswith("prices use a decimal comma ('0,820' read as 0.82)")
    assert price_column(["1,2345", "3,000"])[0]["price"].to_list() == [1.2345, 3.0]


def test_prices_whose_comma_could_be_either_are_read_as_thousands_with_a_warning() -> None:
    out, notes = price_column(["7,640", "12,500", "3"])
    assert out["price"].to_list() == [7640.0, 12500.0, 3.0]
    [note] = notes
    assert note.startswith("prices such as '7,640' were read with the comma as a thousands")
    assert "1000 times too high" in note
    assert price_column(["7,640", "1,234.50"])[1] == []  # a thousands comma settles it
    assert price_column(["7,640", "1.50"])[1] == []  # and so does a decimal dot


def test_currency_after_the_number_codes_and_space_thousands_are_read() -> None:
    dot, _ = price_column(["0.82 €", "EUR 0.82", "0.82€", "GBP 1 234.50", "$2.5", "0.82 usd"])
    assert dot["price"].to_list() == [0.82, 0.82, 0.82, 1234.5, 2.5, 0.82]
    comma, _ = price_column(["0,82 €", "1 234,50", "1\u00a0234,50", "£1 234 567,00"])
    assert comma["price"].to_list() == [0.82, 1234.5, 1234.5, 1234567.0]


def test_a_sign_before_the_currency_mark_stays_with_the_number() -> None:
    # '-$3.00' was BAD_PRICE while '$-3.00' was NEGATIVE_PRICE
    out, _ = price_column(["-$3.00", "$-3.00", "-£1,234.50", "+€5", "2.50"])
    assert out["price"].to_list() == [-3.0, -3.0, -1234.5, 5.0, 2.5]
    assert out["reasons"].to_list()[:3] == ["NEGATIVE_PRICE"] * 3


def test_any_three_letter_currency_code_is_read_and_mixed_currencies_are_warned() -> None:
    out, notes = price_column(["15.87 CHF", "CHF 2", "SEK 10.50", "12.5"])
    assert out["price"].to_list() == [15.87, 2.0, 10.5, 12.5]
    [note] = notes
    assert note.startswith("prices carry several currencies (lines per currency: CHF 2, SEK 1)")
    assert "does not convert them" in note
    # one currency, however written, is no mix
    assert price_column(["€1.50", "2.00 EUR", "eur 3", "4"])[1] == []
    assert price_column(["₹100", "INR 100"])[1] == []
    # three capitals that are no currency code leave a value unread; Swiss thousands are read
    out, _ = price_column(["ABC123", "12 PCS", "CHF 1'234.50", "CHF 1’234.50", "2"])
    assert out["price"].to_list() == [None, None, 1234.5, 1234.5, 2.0]
    assert price_column(["£1.50", "GBP 2"])[1] == []


def test_thousands_commas_with_a_decimal_dot_keep_the_old_reading() -> None:
    out = column(price=["1,234.50", "6.95", "1,000"])
    assert out["price"].to_list() == [1234.5, 6.95, 1000.0]
    assert out["reasons"].to_list() == [None, None, None]


def test_a_column_mixing_both_conventions_rejects_the_values_with_a_comma() -> None:
    notes: list[str] = []
    raw = ["1,65", "1,234.50", "6.95"]
    frame = pl.DataFrame(
        {f"raw_{k}": raw if k == "price" else [GOOD[k]] * len(raw) for k in FIELDS}
    )
    out = parse_and_validate(frame, notes=notes)
    assert out["reasons"].to_list() == ["BAD_PRICE", "BAD_PRICE", None]
    assert out["price"][2] == 6.95
    assert len(notes) == 1 and "mix a decimal comma ('1,65')" in notes[0]


def test_one_stray_decimal_comma_price_among_decimal_dots_rejects_only_itself() -> None:
    # one '2,5' used to switch the whole column to decimal commas and reject every '1.60'
    out, notes = price_column(["1.60", "2.5", "0.85", "12.00", "2,5", "3"])
    assert out["price"].to_list() == [1.6, 2.5, 0.85, 12.0, None, 3.0]
    assert out["reasons"].to_list() == [None] * 4 + ["BAD_PRICE", None]
    assert notes == [
        "prices use a decimal dot ('1.60'); 1 price written with a decimal comma (e.g. '2,5') "
        "rejected as BAD_PRICE rather than guessed"
    ]
    # a stray thousands-comma value in the same column is still read with the majority
    assert price_column(["1.60", "2.5", "0.85", "2,5", "1,234.50"])[0]["price"].to_list() == [
        1.6,
        2.5,
        0.85,
        None,
        1234.5,
    ]
    # and the other way round: the comma majority rejects a stray decimal dot
    out, _ = price_column(["1,60", "2,5", "0,85", "12,00", "2.5"])
    assert out["price"].to_list() == [1.6, 2.5, 0.85, 12.0, None]


def test_thousands_separators_in_quantities_follow_the_price_column() -> None:
    out = column(price=["1.65"] * 5, quantity=["1,200", "12,345,678", "1 200", "1\u00a0200", "12"])
    assert out["quantity"].to_list() == [1200, None, 1200, 1200, 12]
    assert out["reasons"].to_list() == [
        None,
        "BAD_QUANTITY",
        None,
        None,
        None,
    ]  # 12,345,678: too big
    comma = column(price=["1,65"] * 3, quantity=["1 200", "1.200", "1,200"])
    assert comma["quantity"].to_list() == [1200, 1200, None]  # '1,200' is 1.2 there
    # whole-number prices prove nothing: '1,000' may be one piece of a decimal-comma export
    unproven = column(price=["5", "12", "7"], quantity=["1,000", "2", "1 500"])
    assert unproven["quantity"].to_list() == [None, 2, 1500]
    # a currency sign does not hide the proof
    signed = column(price=["$3.50", "£2.10"], quantity=["1,200", "2"])
    assert signed["quantity"].to_list() == [1200, 2]


def test_quantities_in_a_decimal_comma_file() -> None:
    out = column(price=["1,65"] * 4, quantity=["2,5", "1.000", "12,0", "12.0"])
    assert out["quantity"].to_list() == [None, 1000, 12, None]
    assert out["reasons"].to_list() == ["BAD_QUANTITY", None, None, "BAD_QUANTITY"]


def test_thousands_dot_quantity_is_refused_when_prices_mix_conventions() -> None:
    out = column(price=["1,65", "1,234.50"], quantity=["1.000", "3"])
    assert out["quantity"].to_list() == [None, 3]


def test_a_first_or_last_day_far_from_the_others_is_pointed_out() -> None:
    from retail_clv.ingest.rules import isolated_end_dates_notes

    may = [dt.datetime(2011, 5, d, 10) for d in range(1, 20)]
    [last] = isolated_end_dates_notes(pl.Series([*may, dt.datetime(2012, 5, 3)]))
    assert last.startswith(
        "the last purchase day, 2012-05-03 (1 line), is 350 days away from any other "
        "(2011-05-19): a mistyped date?"
    )
    early = [dt.datetime(2001, 5, 3), dt.datetime(2001, 5, 3, 11), *may]
    [first] = isolated_end_dates_notes(pl.Series(early))
    assert first.startswith("the first purchase day, 2001-05-03 (2 lines), is 3650 days away")
    gap_59 = [*may, dt.datetime(2011, 7, 17)]  # 59 days after 2011-05-19: not isolated
    assert isolated_end_dates_notes(pl.Series(gap_59)) == []
    assert isolated_end_dates_notes(pl.Series([dt.datetime(2011, 5, 1), None])) == []
    two_days = pl.Series([dt.datetime(2011, 5, 1), dt.datetime(2012, 5, 1)])
    [one] = isolated_end_dates_notes(two_days)  # one gap, said once, naming both days
    assert one.startswith("the only two purchase days, 2011-05-01 and 2012-05-01, are 366 days")
    assert "if its rows were stored, undo that ingest run first" in one
    [store] = isolated_end_dates_notes(two_days, whole_store=True)
    assert "clv undo-ingest on the run that holds it (clv ingest-runs)" in store
    assert store.endswith(
        "clv train and clv predict refuse their default as-of date after it (pass --as-of), "
        "and training history is counted from it"
    )


def test_dashed_dates_follow_the_columns_order_like_slashed_ones() -> None:
    out = parse_dates(pl.Series(["01-12-2009 10:40", "25-12-2009 10:40"]))
    assert out.to_list() == [dt.datetime(2009, 12, 1, 10, 40), dt.datetime(2009, 12, 25, 10, 40)]


def test_number_dates_are_excel_days_or_unix_timestamps_with_a_note() -> None:
    notes: list[str] = []
    text = ["40513", "40513.5", "1291198800.0", "1291198800000", "123456", "99999", "19999"]
    out = parse_dates(pl.Series(text), notes=notes).to_list()
    assert out[:4] == [
        dt.datetime(2010, 12, 1),
        dt.datetime(2010, 12, 1, 12),
        dt.datetime(2010, 12, 1, 10, 20),
        dt.datetime(2010, 12, 1, 10, 20),
    ]
    assert out[4:] == [None, None, None]  # 6 digits; Excel days outside 1954..2119
    assert notes == [
        "2 dates written as Excel day numbers, e.g. '40513' = 2010-12-01 00:00",
        "1 date written as Unix seconds (read as UTC), e.g. '1291198800.0' = 2010-12-01 10:20",
        "1 date written as Unix milliseconds (read as UTC), e.g. '1291198800000' = "
        "2010-12-01 10:20",
    ]


def test_mostly_unreadable_prices_are_shown_with_examples() -> None:
    out, notes = price_column(["0.82 Fr.", "Fr. 1.0", "1.5", "abc", ""])
    assert out["price"].to_list() == [None, None, 1.5, None, None]
    [note] = notes
    assert note.startswith(
        "3 of 4 prices could not be read as numbers (BAD_PRICE), e.g. '0.82 Fr.', 'Fr. 1.0'; "
        "accepted:"
    )
    assert price_column(["0.82 Fr.", "1.5", "2.5"])[1] == []  # a few bad prices: no note


def test_spreadsheet_errors_dashes_and_guest_placeholders_are_missing_ids() -> None:
    ids = ["#N/A", "#REF!", "-", "Guest", "GUEST", "anonymous", "Walk-in", "12345", "0"]
    # in any letter case: "NaN" (pandas' spelling) was loaded as a customer named NaN
    ids += ["NaN", "gUEST", "n/A", "#n/a", "NULL", "Walk-In"]
    out = column(customer_id=ids)
    assert out["customer_id"].to_list() == [None] * 7 + ["12345", "0"] + [None] * 6
    assert (
        out["reasons"].to_list()
        == ["MISSING_CUSTOMER_ID"] * 7 + [None, None] + ["MISSING_CUSTOMER_ID"] * 6
    )
    assert column(invoice=["NaN", "nAn"])["reasons"].to_list() == ["MISSING_INVOICE"] * 2
    # the guest words are no missing value in other fields: a country may be "Unknown"
    assert column(country=["Unknown", "#N/A"])["country"].to_list() == ["Unknown", None]


def test_one_id_holding_a_large_share_of_the_lines_is_pointed_out() -> None:
    from retail_clv.ingest.rules import DOMINANT_ID_SHARE

    notes: list[str] = []
    ids = [str(12000 + i) for i in range(40)] * 2 + ["0"] * 10  # "0": 10 of 90 lines
    frame = pl.DataFrame(
        {f"raw_{k}": ids if k == "customer_id" else [GOOD[k]] * len(ids) for k in FIELDS}
    )
    parse_and_validate(frame, notes=notes)
    assert DOMINANT_ID_SHARE <= 10 / 90
    assert notes == [
        "customer id '0' holds 11% of the valid purchase lines (10 of 90): if it stands for "
        "guest orders rather than one customer, blank those ids in the file (lines without a "
        "customer id are rejected as MISSING_CUSTOMER_ID), undo this ingest and ingest the "
        "file again"
    ]
    notes.clear()
    even = pl.DataFrame(
        {f"raw_{k}": ids[:80] if k == "customer_id" else [GOOD[k]] * 80 for k in FIELDS}
    )
    parse_and_validate(even, notes=notes)
    assert notes == []

    def notes_for(customer_ids: list[str]) -> list[str]:
        out: list[str] = []
        frame = pl.DataFrame(
            {
                f"raw_{k}": customer_ids if k == "customer_id" else [GOOD[k]] * len(customer_ids)
                for k in FIELDS
            }
        )
        parse_and_validate(frame, notes=out)
        return out

    # a real wholesale buyer shaped like every other id is no placeholder (Online Retail II's
    # Netherlands: one customer holds 76% of the lines)
    assert notes_for(ids[:80] + ["12005"] * 10) == []
    # one character repeated, or another shape, is
    assert notes_for(ids[:80] + ["99999"] * 10)[0].startswith("customer id '99999' holds 11%")
    assert notes_for(ids[:80] + ["GUEST-01"] * 10)[0].startswith("customer id 'GUEST-01'")
