from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import fastexcel
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retail_clv.synth import DirtRates, GenerateReport, generate
from retail_clv.synth.generator import COLUMNS, truth_path_for

from .helpers import START, clean_purchases, read_raw


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------- determinism


def test_same_seed_same_bytes_whatever_the_chunk_size(tmp_path: Path) -> None:
    # 5000 customers = 2 blocks: chunking 1 row or everything must not change a byte
    a = generate(5000, START, 6, 3, tmp_path / "a.csv")
    b = generate(5000, START, 6, 3, tmp_path / "b.csv", chunk_rows=1)
    assert a.rows_written == b.rows_written > 0
    assert _sha(a.path) == _sha(b.path)
    assert _sha(a.truth_path) == _sha(b.truth_path)


def test_other_seed_other_data(tmp_path: Path) -> None:
    a = generate(200, START, 6, 1, tmp_path / "a.csv")
    b = generate(200, START, 6, 2, tmp_path / "b.csv")
    assert _sha(a.path) != _sha(b.path)


# ---------------------------------------------------------------- format


def test_header_and_value_formats_follow_online_retail_ii(realistic: GenerateReport) -> None:
    with open(realistic.path, encoding="utf-8") as fh:
        assert fh.readline() == ",".join(COLUMNS) + "\n"
    raw = read_raw(realistic.path)
    assert raw.columns == COLUMNS
    assert raw.height == realistic.rows_written
    assert raw.filter(~pl.col("Invoice").str.contains(r"^[CA]?\d{6,}$")).is_empty()
    # customer ids are integers or empty, never "13085.0"
    assert raw.filter(~pl.col("Customer ID").str.contains(r"^(\d+)?$")).is_empty()
    # prices in shortest float form with at most 2 decimals
    assert raw.filter(~pl.col("Price").str.contains(r"^-?\d+\.\d{1,2}$")).is_empty()
    assert raw.filter(
        pl.col("Price").str.contains(r"\.\d*0$") & ~pl.col("Price").str.ends_with(".0")
    ).is_empty()
    parsed = raw["InvoiceDate"].str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False)
    assert parsed.null_count() == realistic.dirt["bad_date"] > 0
    assert raw.filter(parsed.is_not_null())["InvoiceDate"].str.ends_with(":00").all()
    assert parsed.min() >= dt.datetime(2009, 12, 1) and parsed.max() < dt.datetime(2011, 12, 1)
    codes = set(raw["StockCode"].unique())
    assert {"POST", "M", "DOT"} <= codes
    assert ("B" in codes) == (realistic.dirt["bad_debt"] > 0)


def test_report_counts_match_the_file(
    realistic: GenerateReport, realistic_raw: pl.DataFrame
) -> None:
    raw = realistic_raw
    d = realistic.dirt
    assert raw.filter(pl.col("Invoice").str.starts_with("C")).height == d["cancellation"]
    assert raw.filter(pl.col("Invoice").str.starts_with("A")).height == d["bad_debt"]
    assert raw.filter(pl.col("Customer ID") == "").height == d["missing_customer_id"]
    assert raw.filter(pl.col("Price").cast(pl.Float64) == 0).height == d["zero_price"]
    assert raw.filter(pl.col("Price").cast(pl.Float64) < 0).height == d["negative_price"]
    assert raw.height - raw.unique().height == d["duplicate"]
    assert clean_purchases(raw).height == realistic.clean_purchase_rows


def test_cancellations_reverse_earlier_lines_of_the_same_customer(
    realistic_raw: pl.DataFrame,
) -> None:
    raw = realistic_raw.unique()
    cancels = raw.filter(pl.col("Invoice").str.starts_with("C"))
    assert cancels.height > 0
    assert (cancels["Quantity"].cast(pl.Int64) < 0).all()
    purchases = clean_purchases(raw)
    joined = cancels.with_columns(
        pl.col("InvoiceDate").str.to_datetime("%Y-%m-%d %H:%M:%S").alias("cancel_date"),
        pl.col("Price").cast(pl.Float64),
        (-pl.col("Quantity").cast(pl.Int64)).alias("cancel_qty"),
    ).join(purchases, on=["Customer ID", "StockCode", "Price"], how="inner")
    matched = joined.filter(
        (pl.col("InvoiceDate_right") < pl.col("cancel_date"))
        & (pl.col("Quantity_right") >= pl.col("cancel_qty"))
    )
    # every cancellation line reverses an earlier purchase line of that customer
    assert matched.select(pl.col("Invoice").n_unique()).item() >= 1
    assert set(matched["Invoice"].unique()) == set(cancels["Invoice"].unique())


def test_dirt_rates_match_the_documented_rates(realistic: GenerateReport) -> None:
    rates = DirtRates()
    d, orders, clean = realistic.dirt, realistic.orders, realistic.clean_purchase_rows
    # cancellations: 3% of orders, half of their lines (a few fall after the end: <=10% fewer)
    expected_cancel = rates.cancel_order_prob * rates.cancel_line_prob * clean
    assert 0.7 * expected_cancel < d["cancellation"] < 1.2 * expected_cancel
    # duplicates: 1% of the rows written before duplication
    assert 0.8 * 0.01 < d["duplicate"] / realistic.rows_written < 1.2 * 0.01
    # guest orders ~ 0.08 per order with ~60 lines => about a fifth of the rows
    share_missing = d["missing_customer_id"] / realistic.rows_written
    assert 0.10 < share_missing < 0.30
    expected_zero = rates.zero_price_per_order * orders + rates.zero_price_per_guest_order * (
        rates.guest_orders_per_order * orders
    )
    assert 0.6 * expected_zero < d["zero_price"] < 1.5 * expected_zero
    assert d["bad_date"] <= 10 * rates.bad_date_per_line * clean + 5


def test_realistic_process_has_no_saturday_and_a_q4_peak(realistic_raw: pl.DataFrame) -> None:
    p = clean_purchases(realistic_raw)
    assert p.filter(pl.col("InvoiceDate").dt.weekday() == 6).is_empty()
    # no row of any kind (cancellations, bad debt, guests...) on a Saturday or 25 December
    when = realistic_raw["InvoiceDate"].str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False)
    when = when.drop_nulls()
    assert (when.dt.weekday() != 6).all()
    assert not ((when.dt.month() == 12) & (when.dt.day() == 25)).any()
    months = p.group_by(pl.col("InvoiceDate").dt.month().alias("m")).agg(
        pl.col("Invoice").n_unique()
    )
    per_month = dict(zip(months["m"], months["Invoice"], strict=True))
    assert per_month[11] > 1.3 * per_month[2]
    assert p.filter(pl.col("Country") == "United Kingdom").height > 0.6 * p.height
    assert p["Country"].n_unique() >= 5


def test_descriptions_carry_category_keywords(realistic_raw: pl.DataFrame) -> None:
    keywords = "LIGHT|BAG|MUG|CANDLE|CHRISTMAS|CARD|WRAP|TOY|CLOCK|SIGN|GARDEN|NECKLACE|BOX|CUSHION"
    p = clean_purchases(realistic_raw).filter(~pl.col("StockCode").is_in(["POST", "M"]))
    share = p["Description"].str.contains(keywords).mean()
    assert share is not None and share > 0.8
    # one description per stock code, some with a trailing space as in the real export
    assert (
        p.group_by("StockCode")
        .agg(pl.col("Description").n_unique())
        .filter(pl.col("Description") > 1)
        .is_empty()
    )
    assert p["Description"].str.ends_with(" ").any()


# ---------------------------------------------------------------- other formats


def test_xlsx_has_one_sheet_per_year_with_the_columns(tmp_path: Path) -> None:
    report = generate(120, START, 18, 4, tmp_path / "shop.xlsx", fmt="xlsx")
    reader = fastexcel.read_excel(tmp_path / "shop.xlsx")
    assert reader.sheet_names == ["Year 2009-2010", "Year 2010-2011"]
    frames = [reader.load_sheet(name).to_polars() for name in reader.sheet_names]
    assert all(f.columns == COLUMNS for f in frames)
    assert sum(f.height for f in frames) == report.rows_written


def test_parquet_and_csv_gz_hold_the_same_rows_as_csv(tmp_path: Path) -> None:
    csv = generate(150, START, 6, 9, tmp_path / "s.csv")
    gz = generate(150, START, 6, 9, tmp_path / "s.csv.gz", fmt="csv.gz")
    pq = generate(150, START, 6, 9, tmp_path / "s.parquet", fmt="parquet")
    a = read_raw(csv.path)
    b = read_raw(gz.path)
    c = pl.read_parquet(pq.path)
    assert a.equals(b)
    assert c.columns == COLUMNS
    assert c.schema["Customer ID"] == pl.Int64 and c.schema["Quantity"] == pl.Int64
    assert c.height == a.height
    assert c["Invoice"].to_list() == a["Invoice"].to_list()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"customers": 0}, "customers must be at least 1"),
        ({"months": 0}, "months must be at least 1"),
        ({"fmt": "json"}, "unknown format 'json'"),
        ({"process": "pareto"}, "unknown process 'pareto'"),
        ({"truth_cutoff": dt.date(2010, 5, 20)}, "at least 30 days before the end"),
        ({"truth_cutoff": dt.date(2009, 1, 1)}, "must be after 2009-12-01"),
    ],
)
def test_invalid_arguments_are_refused(tmp_path: Path, kwargs: dict, message: str) -> None:
    args = {"customers": 10, "start": START, "months": 6, "seed": 1, "out": tmp_path / "x.csv"}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        generate(**args)


def test_truth_is_written_beside_the_file(tmp_path: Path) -> None:
    report = generate(50, START, 3, 1, tmp_path / "t.csv")
    assert report.truth_path == truth_path_for(tmp_path / "t.csv")
    assert report.truth_path.name == "t.csv.truth.parquet"
    assert pl.read_parquet(report.truth_path).height == 50


def test_bad_debt_rows_look_like_the_real_adjustments(tmp_path: Path) -> None:
    report = generate(300, START, 12, 2, tmp_path / "a.csv", dirt=DirtRates(bad_debt_per_line=1e-3))
    raw = read_raw(report.path)
    bad = raw.filter(pl.col("Invoice").str.starts_with("A"))
    assert bad.height == report.dirt["bad_debt"] > 5
    assert set(bad["StockCode"]) == {"B"} and set(bad["Description"]) == {"Adjust bad debt"}
    assert (bad["Customer ID"] == "").all() and (bad["Quantity"] == "1").all()
    assert (bad["Price"].cast(pl.Float64) < 0).sum() == report.dirt["negative_price"]


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), customers=st.integers(1, 60), months=st.integers(2, 5))
def test_any_seed_gives_consistent_file_and_truth(
    tmp_path_factory: pytest.TempPathFactory, seed: int, customers: int, months: int
) -> None:
    out = tmp_path_factory.mktemp("sweep") / "s.csv"
    report = generate(customers, START, months, seed, out)
    raw = read_raw(out)
    assert raw.height == report.rows_written
    clean = clean_purchases(raw)
    assert clean.height == report.clean_purchase_rows
    assert (clean["Quantity"] > 0).all() and (clean["Price"] > 0).all()
    truth = pl.read_parquet(report.truth_path)
    assert truth.height == customers
    assert set(clean["Customer ID"].unique()) == set(truth["customer_id"])
    assert (truth["oracle_expected_spend"] >= 0).all()
    # only customers alive at the cutoff, or arriving in the window, can be expected to buy
    cutoff = dt.datetime.combine(report.truth_cutoff, dt.time())
    expected = truth.filter(~pl.col("alive_at_cutoff") & (pl.col("oracle_expected_orders") > 0))
    assert (expected["first_purchase"] >= cutoff).all()
    assert (truth.filter(pl.col("in_population"))["first_purchase"] < cutoff).all()
