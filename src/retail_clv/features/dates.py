"""Purchase dates as the shop wrote them (naive local time), whatever the caller's frame holds."""

from __future__ import annotations

import polars as pl

__all__ = ["wall_clock"]


def wall_clock(frame: pl.DataFrame) -> pl.DataFrame:
    """Return ``frame`` with a time-zone-aware ``invoice_date`` made naive, local time kept.

    The store keeps dates as written (naive local time); a caller's frame whose dates carry a
    time zone is read the same way: 2011-07-01 00:30 BST stays 00:30 on 1 July (a cast alone
    would move it to UTC, 23:30 on 30 June), so days and cutoffs are the shop's own. Other
    frames are returned unchanged.
    """
    dtype = frame.schema.get("invoice_date")
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        return frame.with_columns(pl.col("invoice_date").dt.replace_time_zone(None))
    return frame
