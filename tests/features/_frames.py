"""Tiny hand-made transaction frames shared by the feature tests."""

from __future__ import annotations

import datetime as dt

import polars as pl

from retail_clv.store.queries import CANCELLATIONS_SCHEMA, PURCHASES_SCHEMA


def purchases(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=PURCHASES_SCHEMA, orient="row")


def cancellations(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=CANCELLATIONS_SCHEMA, orient="row")


def d(y: int, m: int, day: int, h: int = 10) -> dt.datetime:
    return dt.datetime(y, m, day, h, 0)


UK, FR = "United Kingdom", "France"
HAND_PURCHASES = purchases(
    [
        ("A", "I1", "X", 2, 5.0, d(2011, 1, 1), UK, "Home"),
        ("A", "I1", "Y", 1, 20.0, d(2011, 1, 1), UK, "Toys"),
        ("A", "I2", "X", 1, 5.0, d(2011, 1, 11), UK, "Home"),
        ("A", "I3", "Z", 10, 1.0, d(2011, 1, 31, 23), UK, "Home"),
        ("B", "I4", "W", 1, 100.0, d(2011, 1, 20), FR, "Toys"),
    ]
)
HAND_CANCELLATIONS = cancellations([("A", "C1", "X", -1, 5.0, d(2011, 1, 15))])
