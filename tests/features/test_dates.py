"""Time-zone-aware purchase dates are read at the shop's local time, as the store keeps them."""

from __future__ import annotations

import datetime as dt

import polars as pl
from polars.testing import assert_frame_equal

from retail_clv.features import customer_features, targets
from retail_clv.features.bgnbd import rfm_summary
from retail_clv.features.dates import wall_clock
from tests.features._frames import HAND_CANCELLATIONS, HAND_PURCHASES, purchases

LONDON = "Europe/London"


def _aware(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.col("invoice_date").dt.replace_time_zone(LONDON))


def test_wall_clock_keeps_the_local_time_and_leaves_naive_frames_alone() -> None:
    # 00:30 on 1 July in London is 23:30 on 30 June in UTC: the local day is the shop's day
    frame = _aware(purchases([("A", "I1", "X", 1, 5.0, dt.datetime(2011, 7, 1, 0, 30), "UK", "")]))
    assert wall_clock(frame)["invoice_date"].to_list() == [dt.datetime(2011, 7, 1, 0, 30)]
    assert frame["invoice_date"].dt.convert_time_zone("UTC").dt.day().to_list() == [30]
    assert wall_clock(HAND_PURCHASES) is HAND_PURCHASES


def test_features_targets_and_bgnbd_summary_of_aware_dates_equal_the_local_ones() -> None:
    # A's line at 23:00 on 31 January (local) stays in January whatever the zone says
    cutoffs = [dt.date(2011, 1, 21), dt.date(2011, 2, 1)]
    aware_p, aware_c = _aware(HAND_PURCHASES), _aware(HAND_CANCELLATIONS)
    assert_frame_equal(
        customer_features(aware_p, aware_c, cutoffs),
        customer_features(HAND_PURCHASES, HAND_CANCELLATIONS, cutoffs),
    )
    assert_frame_equal(
        targets(aware_p, cutoffs, horizon_days=11), targets(HAND_PURCHASES, cutoffs, 11)
    )
    assert_frame_equal(
        rfm_summary(aware_p, dt.date(2011, 2, 1)), rfm_summary(HAND_PURCHASES, dt.date(2011, 2, 1))
    )
