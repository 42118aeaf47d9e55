from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from retail_clv.errors import NotEnoughDataError
from retail_clv.features.bgnbd import BGNBD_COLUMNS
from retail_clv.models.scoring import (
    CSV_COLUMNS,
    default_as_of,
    default_training_as_of,
    feature_notes,
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
    sixty = to_csv_frame(scored, horizon_days=60)
    assert sixty.columns == [
        "customer_id",
        "predicted_spend_60d_model1",
        "predicted_spend_60d_model2",
        "predicted_products_60d",
        "r2_model1",
        "r2_model2",
    ]
    assert sixty.rename(dict(zip(sixty.columns, CSV_COLUMNS, strict=True))).equals(
        to_csv_frame(scored)
    )


def test_default_dates_follow_the_last_purchase() -> None:
    purchases = pl.DataFrame(
        {"invoice_date": [dt.datetime(2010, 12, 1, 8, 26), dt.datetime(2011, 12, 9, 12, 50)]}
    )
    assert default_as_of(purchases) == dt.date(2011, 12, 10)
    # Online Retail II: the default training cutoff is the public evaluation cutoff
    assert default_training_as_of(purchases, 30) == dt.date(2011, 11, 9)
    with pytest.raises(NotEnoughDataError, match="ingest data first: clv ingest FILE"):
        default_as_of(purchases.clear())


# ------------------------------------------------------------------------------- score


def _store_frames() -> tuple[pl.DataFrame, pl.DataFrame]:
    """Three customers: A buys in 2011-01 and 2011-03, B in 2011-02, C only on 2011-04-02."""
    rows = [
        ("A", "1", "X", 2, 5.0, dt.datetime(2011, 1, 5, 10), "United Kingdom"),
        ("A", "2", "Y", 1, 20.0, dt.datetime(2011, 3, 7, 11), "United Kingdom"),
        ("B", "3", "X", 4, 5.0, dt.datetime(2011, 2, 1, 9), "France"),
        ("C", "4", "Z", 1, 3.0, dt.datetime(2011, 4, 2, 15), "Germany"),
    ]
    purchases = pl.DataFrame(
        rows,
        schema={
            "customer_id": pl.String,
            "invoice": pl.String,
            "stock_code": pl.String,
            "quantity": pl.Int64,
            "price": pl.Float64,
            "invoice_date": pl.Datetime("us"),
            "country": pl.String,
        },
        orient="row",
    ).with_columns(category=pl.lit("Gifts"))
    cancellations = purchases.head(0).drop("country", "category")
    return purchases, cancellations


@pytest.fixture
def bundle(tmp_path):
    from retail_clv.models.registry import load_run, save_run
    from tests.models._toy import toy_result

    save_run(toy_result(), tmp_path / "models", {"n_purchases": 4})
    return load_run(tmp_path / "models")


def test_score_defaults_to_day_after_last_purchase_and_keeps_everyone(bundle) -> None:
    from retail_clv.models.scoring import SCORE_COLUMNS, score

    purchases, cancellations = _store_frames()
    scored = score(bundle, purchases, cancellations)
    assert scored.columns == SCORE_COLUMNS
    assert scored["customer_id"].to_list() == ["A", "B", "C"]
    assert scored["country"].to_list() == ["United Kingdom", "France", "Germany"]
    assert scored["r2_model1"].to_list() == [0.61] * 3
    assert scored["r2_model2"].to_list() == [0.67] * 3
    spend = scored.select(pl.selectors.starts_with("predicted_")).to_numpy()
    assert (spend >= 0).all()


def test_score_as_of_uses_only_earlier_customers(bundle) -> None:
    from retail_clv.models.scoring import score

    purchases, cancellations = _store_frames()
    scored = score(bundle, purchases, cancellations, as_of=dt.date(2011, 2, 2))
    assert scored["customer_id"].to_list() == ["A", "B"]
    with pytest.raises(NotEnoughDataError, match="no customer has a purchase before 2011-01-05"):
        score(bundle, purchases, cancellations, as_of=dt.date(2011, 1, 5))


def test_feature_notes_flag_a_failed_bgnbd_fit_only() -> None:
    names = ["recency_days", *BGNBD_COLUMNS]
    failed = pl.DataFrame(
        {"recency_days": [1.0, 2.0], **{c: [None, None] for c in BGNBD_COLUMNS}},
        schema={"recency_days": pl.Float64, **dict.fromkeys(BGNBD_COLUMNS, pl.Float64)},
    )
    [note] = feature_notes(failed, names)
    assert "could not be fitted on these 2 customers" in note
    assert all(c in note for c in BGNBD_COLUMNS)
    # some customers have values: the fit worked, their nulls are per-customer
    partial = failed.with_columns(pl.Series(c, [0.5, None]) for c in BGNBD_COLUMNS)
    assert feature_notes(partial, names) == []
    # BG/NBD fitted, Gamma-Gamma not: only its column is named
    gg_only = failed.with_columns(
        pl.Series(c, [0.5, 0.2]) for c in BGNBD_COLUMNS if c != "bgnbd_gg_spend_30d"
    )
    [note] = feature_notes(gg_only, names)
    assert note.startswith("The Gamma-Gamma model could not be fitted on these 2 customers")
    assert "(bgnbd_gg_spend_30d)" in note
    # a run that does not use the BG/NBD features has nothing to say about them
    assert feature_notes(failed, ["recency_days"]) == []
    assert feature_notes(failed.head(0), names) == []


def test_scoring_a_time_of_year_the_run_never_saw_is_noted(tmp_path) -> None:
    from dataclasses import replace

    from retail_clv.models.registry import load_run, save_run
    from retail_clv.models.scoring import score
    from tests.models._toy import toy_result

    # training windows 2010-02-01 .. 2010-11-30 only: January was never seen
    cutoffs = [dt.date(2010, m, 1).isoformat() for m in range(2, 12)]
    result = toy_result()
    result = replace(result, config={**result.config, "train_cutoffs": cutoffs})
    save_run(result, tmp_path / "models", {"n_purchases": 4})
    bundle = load_run(tmp_path / "models")
    purchases, cancellations = _store_frames()
    notes: list[str] = []
    score(bundle, purchases, cancellations, as_of=dt.date(2011, 1, 6), notes=notes)
    [note] = notes
    # 6 January .. 4 February: only 1-4 February were inside a training window
    assert note.startswith("26 of the 30 days of [2011-01-06, 2011-02-05) fall at a time of year")
    notes.clear()
    score(bundle, purchases, cancellations, as_of=dt.date(2011, 3, 8), notes=notes)
    assert notes == []  # March was inside the 2010-03-01 window


def test_scores_of_a_run_behind_the_baselines_carry_its_warning(tmp_path) -> None:
    from dataclasses import replace

    from retail_clv.models.registry import load_run, save_run
    from retail_clv.models.scoring import score
    from tests.models._toy import toy_result

    result = toy_result()
    metrics = result.metrics
    metrics["models"]["model1"]["r2"] = -0.2  # below the train mean's -0.01
    save_run(replace(result, metrics=metrics), tmp_path / "models", {"n_purchases": 4})
    purchases, cancellations = _store_frames()
    notes: list[str] = []
    score(load_run(tmp_path / "models"), purchases, cancellations, notes=notes)
    [note] = notes
    assert note.startswith("Model 1 is clearly behind simple baselines on the held-out window")
    assert "the train mean's -0.010" in note


def test_scores_of_a_run_whose_two_models_agree_say_so(tmp_path) -> None:
    """clv train warned; clv predict then wrote two identical spend columns without a word."""
    from dataclasses import replace

    from retail_clv.models.registry import load_run, save_run
    from retail_clv.models.scoring import score
    from tests.models._toy import toy_result

    result = toy_result()
    save_run(replace(result, model2=result.model1), tmp_path / "models", {"n_purchases": 4})
    purchases, cancellations = _store_frames()
    notes: list[str] = []
    score(load_run(tmp_path / "models"), purchases, cancellations, notes=notes)
    assert [n for n in notes if n.startswith("Model 1 and Model 2 give the same predictions")]


def test_scores_of_a_run_ahead_of_the_baselines_carry_no_warning(bundle) -> None:
    from retail_clv.models.scoring import score

    purchases, cancellations = _store_frames()
    notes: list[str] = []
    score(bundle, purchases, cancellations, notes=notes)
    assert notes == []


def test_a_training_date_with_too_little_history_says_what_would_do() -> None:
    from retail_clv.models.scoring import check_training_as_of

    first, last = dt.date(2010, 1, 1), dt.date(2010, 1, 21)  # three weeks of data
    with pytest.raises(NotEnoughDataError) as caught:
        check_training_as_of(first, last, dt.date(2009, 12, 22), 30, "--as-of", "ingest more")
    # the dates come before the check of the span: an as-of before the data, not "-10 days"
    assert "needs 174 days of purchases before the as-of date" in str(caught.value)
    assert "and 2009-12-22 comes before the first purchase;" in str(caught.value)
    assert str(caught.value).endswith("; ingest more")  # no later date inside the data would do
    year = dt.date(2011, 1, 1)
    with pytest.raises(NotEnoughDataError) as caught:
        check_training_as_of(first, year, dt.date(2010, 3, 1), 30, "--as-of", "ingest more")
    assert str(caught.value).endswith("ingest more or pass an --as-of from 2010-06-24 on")
    with pytest.raises(NotEnoughDataError) as caught:
        check_training_as_of(first, year, dt.date(2010, 7, 1), 30, "as_of", "more", "default")
    assert "(the quick budget needs only 174 days)" in str(caught.value)  # the API's words
    with pytest.raises(NotEnoughDataError, match=r"\(--budget quick needs only 174 days\)"):
        check_training_as_of(first, year, dt.date(2010, 7, 1), 30, "--as-of", "more", "default")
    check_training_as_of(first, year, dt.date(2010, 7, 1), 30, "--as-of", "ingest more")


def test_a_history_too_short_for_the_horizon_names_the_horizon_that_fits() -> None:
    from retail_clv.models.scoring import check_training_as_of
    from retail_clv.models.training import history_needed

    first, last = dt.date(2024, 1, 1), dt.date(2024, 6, 1)  # five months
    with pytest.raises(NotEnoughDataError) as caught:
        check_training_as_of(first, last, dt.date(2024, 5, 2), 30, "--as-of", "add history")
    message = str(caught.value)
    assert "(about 6.7 months of data in all, with the held-out window)" in message
    assert message.endswith("; or a --horizon of 4 days or less, as of the default date")
    # a later as-of that trains, but whose held-out window the data does not cover, says so
    with pytest.raises(NotEnoughDataError) as caught:
        check_training_as_of(first, dt.date(2024, 7, 1), dt.date(2024, 6, 1), 30, "--as-of", "x")
    assert "x or pass an --as-of from 2024-06-23 on (such a run is not evaluated: its " in (
        str(caught.value)
    )
    span = (last - first).days
    assert history_needed("quick", 4)[1] <= span - 4 < history_needed("quick", 5)[1] + 1
    # the API names its body field; a store too short for any horizon gets no such hint
    with pytest.raises(NotEnoughDataError, match="a horizon_days of 4 days or less"):
        check_training_as_of(first, last, dt.date(2024, 5, 2), 30, "as_of", "more")
    with pytest.raises(NotEnoughDataError) as caught:
        check_training_as_of(first, dt.date(2024, 2, 1), dt.date(2024, 1, 2), 30, "--as-of", "x")
    assert "horizon of" not in str(caught.value)


def test_what_is_offered_after_an_isolated_last_day_trains_and_holds_out_real_purchases() -> None:
    import re

    from retail_clv.models.scoring import training_as_of

    days = [dt.datetime(2010, 1, 1) + dt.timedelta(days=i) for i in range(365)]

    def store(n_days: int) -> pl.DataFrame:  # daily purchases, then a stray day in 2013
        return pl.DataFrame({"invoice_date": [*days[:n_days], dt.datetime(2013, 3, 1, 10)]})

    def offered(purchases: pl.DataFrame, budget: str) -> tuple[str, list[tuple[str, int, str]]]:
        with pytest.raises(NotEnoughDataError) as caught:
            training_as_of(purchases, None, 30, "--as-of", "add history", budget)
        message = str(caught.value)
        assert "a mistyped date?" in message
        plain = re.findall(
            r"pass an --as-of to train on the purchases before it anyway: ([\d-]+)", message
        )
        ways = [(budget, 30, d) for d in plain]
        ways += [("quick", 30, d) for d in re.findall(r"--budget quick --as-of ([\d-]+)", message)]
        ways += [
            (budget, int(h), d) for h, d in re.findall(r"--horizon (\d+) --as-of ([\d-]+)", message)
        ]
        return message, ways

    for n_days, budget, expected in ((365, "quick", 1), (365, "default", 2), (200, "quick", 1)):
        message, ways = offered(store(n_days), budget)
        assert len(ways) == expected, message
        before = days[n_days - 1].date()
        for way_budget, horizon, date in ways:
            as_of = dt.date.fromisoformat(date)
            assert (
                training_as_of(store(n_days), as_of, horizon, "--as-of", "x", way_budget) == as_of
            )
            assert as_of + dt.timedelta(days=horizon - 1) <= before  # a window of real purchases
    message, _ = offered(store(365), "default")
    assert (
        "the purchases from 2010-01-01 to 2010-12-31 leave 334 days before 2010-12-01, and "
        "the default budget with a 30-day horizon needs 342: to train on them anyway, pass "
        "--budget quick --as-of 2010-12-01, or --horizon 28 --as-of 2010-12-03" in message
    )
    # two months before it: nothing fits
    message, ways = offered(store(57), "quick")
    assert ways == [] and message.endswith("needs 174; add history")


def test_a_training_date_the_day_after_the_data_is_accepted_and_a_later_one_refused() -> None:
    from retail_clv.models.scoring import check_training_as_of

    first, last = dt.date(2010, 1, 1), dt.date(2011, 1, 1)
    check_training_as_of(first, last, dt.date(2011, 1, 2), 30, "--as-of", "ingest more")
    with pytest.raises(NotEnoughDataError) as caught:
        check_training_as_of(first, last, dt.date(2011, 1, 3), 30, "--as-of", "ingest more")
    assert "use an --as-of on or before 2011-01-02 (the day after" in str(caught.value)


def test_trained_on_this_store_compares_stores_not_spellings(tmp_path) -> None:
    from types import SimpleNamespace

    from retail_clv.models.scoring import trained_on_this_store

    def run(url: str | None) -> Any:
        return SimpleNamespace(metadata={"data_fingerprint": {"database_url": url}})

    pg = "postgresql+psycopg://clv:***@db:5432/retail"
    assert trained_on_this_store(run(pg), "postgresql+psycopg://clv:s3cret@db:5432/retail")
    assert not trained_on_this_store(run(pg), "postgresql+psycopg://clv:s3cret@db:5432/other")
    db = tmp_path / "s.db"
    assert trained_on_this_store(run(f"sqlite:///{db}"), f"sqlite:///{tmp_path}/./s.db")
    assert not trained_on_this_store(run(f"sqlite:///{db}"), f"sqlite:///{tmp_path}/t.db")
    assert trained_on_this_store(run(None), "sqlite:///anything.db")  # nothing recorded


# ------------------------------------------------------------------------ scale check


def test_spend_levels_describe_the_customers_active_in_the_last_year() -> None:
    from retail_clv.models.training import spend_levels

    # 0 (lapsed) and null are left out of the quantiles, not counted as zero spenders
    frame = pl.DataFrame({"spend_365d": [0.0, None, 10.0, 20.0, 30.0, 40.0, 1000.0]})
    levels = spend_levels(frame)
    assert levels["customers"] == 7
    assert levels["active_customers"] == 5
    assert levels["spend_365d_median"] == 30.0
    assert levels["spend_365d_p90"] == pytest.approx(40.0 + 0.6 * 960.0)  # linear interpolation
    nobody = spend_levels(pl.DataFrame({"spend_365d": [0.0, 0.0]}))
    assert nobody == {
        "customers": 2,
        "active_customers": 0,
        "spend_365d_median": 0.0,
        "spend_365d_p90": 0.0,
    }


def _levels(median: float, p90: float) -> dict[str, float | int]:
    return {
        "customers": 10,
        "active_customers": 8,
        "spend_365d_median": median,
        "spend_365d_p90": p90,
    }


@pytest.mark.parametrize(
    ("factor", "warned"),
    [(1.0, False), (3.9, False), (1 / 3.9, False), (4.1, True), (1 / 4.1, True), (25.0, True)],
)
def test_scale_note_fires_beyond_the_factor_in_either_direction(factor, warned) -> None:
    from retail_clv.models.scoring import scale_note

    spend = [100.0 * factor * k for k in (1, 2, 3, 4, 5)]  # median 300·f, p90 460·f
    note = scale_note(_levels(300.0, 460.0), pl.DataFrame({"spend_365d": spend}))
    assert (note is not None) is warned
    if warned:
        assert note.startswith("These customers spend on another scale")
        assert f"a median of {300 * factor:,.0f} a year" in note
        assert "against 300 (460)" in note
        assert ("times as much" in note) is (factor > 1)
        assert "train models on this data" in note


def test_scale_note_needs_levels_on_both_sides() -> None:
    from retail_clv.models.scoring import scale_note

    far = pl.DataFrame({"spend_365d": [1e6, 2e6]})
    assert scale_note(None, far) is None  # a run saved before the levels were recorded
    assert scale_note({}, far) is None
    assert scale_note(_levels(0.0, 0.0), far) is None  # training population inactive
    assert scale_note(_levels(300.0, 460.0), far.head(0)) is None
    assert scale_note(_levels(300.0, 460.0), pl.DataFrame({"spend_365d": [0.0]})) is None
    # one of the two quantiles far off is enough
    skewed = pl.DataFrame({"spend_365d": [300.0] * 8 + [1e5] * 2})
    assert scale_note(_levels(300.0, 460.0), skewed) is not None


def test_scores_of_customers_on_another_scale_carry_the_scale_note(tmp_path) -> None:
    from dataclasses import replace

    from retail_clv.models.registry import load_run, save_run
    from retail_clv.models.scoring import score
    from tests.models._toy import toy_result

    result = toy_result()
    # the toy store's active customers spend 10-40 a year: a run trained on 100x that warns
    result = replace(result, config={**result.config, "spend_levels": _levels(2_000.0, 4_000.0)})
    save_run(result, tmp_path / "models", {"n_purchases": 4})
    purchases, cancellations = _store_frames()
    notes: list[str] = []
    score(load_run(tmp_path / "models"), purchases, cancellations, notes=notes)
    [note] = notes
    assert note.startswith("These customers spend on another scale")
    # the same run on its own scale says nothing
    same = replace(result, config={**result.config, "spend_levels": _levels(20.0, 38.0)})
    save_run(same, tmp_path / "same", {"n_purchases": 4})
    notes.clear()
    score(load_run(tmp_path / "same"), purchases, cancellations, notes=notes)
    assert notes == []
