"""Row hashes are stored and compared with later files: their definition must never change."""

from __future__ import annotations

import hashlib

import polars as pl

from retail_clv.ingest.hashing import row_hashes


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def test_row_hashes_are_md5_of_values_joined_by_the_unit_separator() -> None:
    frame = pl.DataFrame(
        {"a": ["x", "a", "a", "a\x1f"], "b": ["y", None, "", "b"]},
        schema={"a": pl.Utf8, "b": pl.Utf8},
    )
    hashes = row_hashes(frame, ["a", "b"]).to_list()
    # pinned: the same text as every earlier version hashed ("\x1e" stands for a missing value)
    assert hashes == [_md5("x\x1fy"), _md5("a\x1f\x1e"), _md5("a\x1f"), _md5("a\x1f\x1fb")]
    assert len(set(hashes)) == 4  # a missing value, an empty one and a separator all differ
    assert row_hashes(frame, ["b", "a"]).to_list()[0] == _md5("y\x1fx")  # column order counts


def test_row_hashes_of_an_empty_frame() -> None:
    empty = pl.DataFrame(schema={"a": pl.Utf8})
    assert row_hashes(empty, ["a"]).dtype == pl.Utf8
    assert row_hashes(empty, ["a"]).len() == 0
