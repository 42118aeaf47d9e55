import datetime as dt

import polars as pl
import pytest

from retail_clv.errors import NotEnoughDataError
from retail_clv.features import targets, training_frame

from ._frames import HAND_CANCELLATIONS, HAND_PURCHASES

JAN11 = dt.date(2011, 1, 11)
FEB1 = dt.date(2011, 2, 1)


def test_targets_hand_computed_window():
    t = targets(HAND_PURCHASES, [JAN11], horizon_days=10)
    # window [01-11, 01-21): A buys I2 (5.0, product X); B's first purchase I4 (100.0, W)
    assert t.to_dicts() == [
        {"customer_id": "A", "cutoff": JAN11, "spend": 5.0, "n_products": 1},
        {"customer_id": "B", "cutoff": JAN11, "spend": 100.0, "n_products": 1},
    ]


def test_window_end_is_exclusive_and_start_inclusive():
    # [01-11, 01-31): the 2011-01-31 23:00 line is outside
    t = targets(HAND_PURCHASES, [JAN11], horizon_days=20)
    a = t.filter(pl.col("customer_id") == "A").row(0, named=True)
    assert a["spend"] == 5.0
    t = targets(HAND_PURCHASES, [JAN11], horizon_days=21)
    a = t.filter(pl.col("customer_id") == "A").row(0, named=True)
    assert a["spend"] == 15.0 and a["n_products"] == 2


def test_distinct_products_counts_stock_codes_once():
    t = targets(HAND_PURCHASES, [dt.date(2011, 1, 1)], horizon_days=40)
    a = t.filter(pl.col("customer_id") == "A").row(0, named=True)
    assert a["spend"] == 45.0 and a["n_products"] == 3  # X twice, Y, Z


def test_training_frame_keeps_zero_spenders_and_drops_new_customers():
    f = training_frame(HAND_PURCHASES, HAND_CANCELLATIONS, [JAN11, FEB1], horizon_days=10)
    jan = f.filter(pl.col("cutoff") == JAN11)
    assert jan["customer_id"].to_list() == ["A"]  # B is new in the window: not a row
    assert jan["spend"].to_list() == [5.0]
    feb = f.filter(pl.col("cutoff") == FEB1)
    assert feb["customer_id"].to_list() == ["A", "B"]
    assert feb["spend"].to_list() == [0.0, 0.0] and feb["n_products"].to_list() == [0, 0]


def test_bad_horizon():
    with pytest.raises(NotEnoughDataError, match="horizon_days"):
        targets(HAND_PURCHASES, [JAN11], horizon_days=0)
