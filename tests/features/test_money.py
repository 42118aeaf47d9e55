"""Money is summed exactly, so features and targets do not depend on the order of additions."""

import datetime as dt

import numpy as np
import polars as pl

from retail_clv.features import customer_features, targets, training_frame
from retail_clv.features.money import line_milli, to_currency

from ._frames import UK, d, purchases

CUTOFF = dt.date(2011, 2, 1)


def test_line_values_are_rounded_to_thousandths():
    frame = pl.DataFrame({"quantity": [3, 1, 2], "price": [0.3333, 0.0004, 1.25]})
    milli = frame.select(line_milli()).to_series()
    assert milli.dtype == pl.Int64 and milli.to_list() == [1000, 0, 2500]
    assert frame.select(to_currency(line_milli())).to_series().to_list() == [1.0, 0.0, 2.5]


def test_ten_lines_of_a_tenth_sum_to_exactly_one():
    # as floats, 0.1 added ten times is 0.9999999999999999; summed in thousandths it is 1
    lines = purchases([("A", f"I{i}", "X", 1, 0.1, d(2011, 1, 20), UK, "Home") for i in range(10)])
    row = customer_features(lines, None, CUTOFF).row(0, named=True)
    assert row["monetary"] == 1.0 and row["spend_30d"] == 1.0 and row["max_order_value"] == 0.1
    assert row["avg_order_value"] == 0.1
    spend = targets(lines, [dt.date(2011, 1, 20)], horizon_days=5)["spend"].to_list()
    assert spend == [1.0]


def test_features_and_targets_are_identical_whatever_the_row_order():
    rng = np.random.default_rng(0)
    n = 20_000
    start = dt.datetime(2010, 6, 1)
    lines = purchases(
        [
            (
                f"C{rng.integers(300)}",
                f"I{i // 3}",
                f"S{rng.integers(50)}",
                int(rng.integers(1, 24)),
                float(rng.choice([0.1, 0.29, 0.85, 1.65, 2.1, 4.95])),
                start + dt.timedelta(hours=int(rng.integers(0, 24 * 300))),
                UK,
                f"K{rng.integers(5)}",
            )
            for i in range(n)
        ]
    )
    cutoffs = [dt.date(2010, 11, 1), dt.date(2011, 1, 1), dt.date(2011, 3, 1)]
    first = training_frame(lines, None, cutoffs, 30)
    shuffled = lines.sample(fraction=1.0, shuffle=True, seed=1)
    assert first.equals(training_frame(shuffled, None, cutoffs, 30))
    assert first.equals(training_frame(lines, None, cutoffs, 30))
