r"""Stable row hashes: md5 of the raw values, computed by DuckDB over the whole frame.

The hash must not change between library versions (it is stored and compared with later
files), so Polars' ``hash`` (documented as unstable across versions) is not used. The raw
values are joined with the ASCII unit separator (``0x1f``) and a missing value is written as
the record separator (``0x1e``), so ``("a", None)``, ``("a", "")`` and ``("a\x1f", ...)`` all
differ. Both characters never occur in real CSV text.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import polars as pl

SEPARATOR = 0x1F  # ASCII unit separator, between values
NULL_MARKER = 0x1E  # ASCII record separator, for a missing value


def row_hashes(frame: pl.DataFrame, columns: Sequence[str]) -> pl.Series:
    """Return the md5 hex digest of each row's ``columns`` (text), named ``row_hash``.

    Parameters
    ----------
    frame : polars.DataFrame
        Frame holding ``columns`` as Utf8.
    columns : sequence of str
        Columns hashed, in this order.

    Returns
    -------
    polars.Series
        32-character lower-case hex digests, one per row, in row order.
    """
    if frame.height == 0:
        return pl.Series("row_hash", [], dtype=pl.Utf8)
    parts = ", ".join(f'coalesce("{name}", chr({NULL_MARKER}))' for name in columns)
    con = duckdb.connect()
    try:
        con.register("frame", frame.select(columns))
        digests = con.sql(
            f"SELECT md5(concat_ws(chr({SEPARATOR}), {parts})) AS row_hash FROM frame"
        ).pl()
    finally:
        con.close()
    return digests["row_hash"].cast(pl.Utf8)
