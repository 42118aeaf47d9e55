from __future__ import annotations

import csv
import datetime as dt
import io

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from retail_clv.errors import NotEnoughDataError
from retail_clv.models.scoring import (
    CSV_COLUMNS,
    default_as_of,
    default_training_as_of,
    safe_csv_frame,
    to_csv_frame,
)

DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+44 20", "'+44 20"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("12345", "12345"),
        ("a=b", "a=b"),
        ("'=already", "'=already"),
        ("", ""),
        (None, None),
    ],
)
def test_safe_csv_frame_prefixes_formula_cells(raw, safe) -> None:
    frame = pl.DataFrame({"customer_id": [raw]}, schema={"customer_id": pl.String})
    assert safe_csv_frame(frame)["customer_id"].to_list() == [safe]


def test_safe_csv_frame_leaves_numbers_alone() -> None:
    frame = pl.DataFrame({"customer_id": ["-1"], "value": [-1.5], "n": [-3]})
    out = safe_csv_frame(frame)
    assert out.to_dicts() == [{"customer_id": "'-1", "value": -1.5, "n": -3}]
    assert out.schema == frame.schema


@given(st.lists(st.text(max_size=12), max_size=20))
def test_safe_csv_frame_properties(values: list[str]) -> None:
    frame = pl.DataFrame({"c": values}, schema={"c": pl.String})
    out = safe_csv_frame(frame)["c"].to_list()
    for before, after in zip(values, out, strict=True):
        assert not after.startswith(DANGEROUS)
        assert after == (f"'{before}" if before.startswith(DANGEROUS) else before)
    assert safe_csv_frame(safe_csv_frame(frame)).equals(safe_csv_frame(frame))  # idempotent


def test_to_csv_frame_has_exactly_the_contract_columns_in_order() -> None:
    scored = pl.DataFrame(
        {
            "country": ["France", "United Kingdom"],
            "r2_model2": [0.7, 0.7],
            "customer_id": ["=cmd|' /C calc'!A0", "12346"],
            "predicted_products_30d": [1.5, 0.0],
            "predicted_spend_30d_model2": [10.0, 0.0],
            "predicted_spend_30d_model1": [9.0, 0.0],
            "r2_model1": [0.6, 0.6],
        }
    )
    text = to_csv_frame(scored).write_csv()
    rows = list(csv.reader(io.StringIO(text)))
    assert (
        rows[0]
        == CSV_COLUMNS
        == [
            "customer_id",
            "predicted_spend_30d_model1",
            "predicted_spend_30d_model2",
            "predicted_products_30d",
            "r2_model1",
            "r2_model2",
        ]
    )
    assert rows[1] == ["'=cmd|' /C calc'!A0", "9.0", "10.0", "1.5", "0.6", "0.7"]


def test_default_dates_follow_the_last_purchase() -> None:
    purchases = pl.DataFrame(
        {"invoice_date": [dt.datetime(2010, 12, 1, 8, 26), dt.datetime(2011, 12, 9, 12, 50)]}
    )
    assert default_as_of(purchases) == dt.date(2011, 12, 10)
    # Online Retail II: the default training cutoff is the public evaluation cutoff
    assert default_training_as_of(purchases, 30) == dt.date(2011, 11, 9)
    with pytest.raises(NotEnoughDataError, match="ingest data first: clv ingest FILE"):
        default_as_of(purchases.clear())
