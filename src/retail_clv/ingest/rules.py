"""Named validation rules, applied to a whole frame at once (vectorized Polars).

Every rule is a boolean expression over the parsed columns; a row may fail several, and its
codes are stored ``|``-joined in ``rejected_data.reasons``. The rules, their conditions and why
they exist are documented in ``docs/ingestion.md`` (and tested one by one in
``tests/ingest/test_rules.py``). Exact duplicates are not a rule but an outcome of their own,
decided from the row hash before the rules run (see :mod:`retail_clv.ingest.pipeline`).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import NamedTuple

import polars as pl

from retail_clv.errors import count
from retail_clv.ingest.columns import FIELDS

MISSING_INVOICE = "MISSING_INVOICE"
MISSING_STOCK_CODE = "MISSING_STOCK_CODE"
MISSING_CUSTOMER_ID = "MISSING_CUSTOMER_ID"
CANCELLATION = "CANCELLATION"
BAD_DEBT_ADJUSTMENT = "BAD_DEBT_ADJUSTMENT"
BAD_QUANTITY = "BAD_QUANTITY"
NON_POSITIVE_QUANTITY = "NON_POSITIVE_QUANTITY"
BAD_PRICE = "BAD_PRICE"
NEGATIVE_PRICE = "NEGATIVE_PRICE"
ZERO_PRICE = "ZERO_PRICE"
BAD_DATE = "BAD_DATE"
DATE_OUT_OF_RANGE = "DATE_OUT_OF_RANGE"
FIELD_TOO_LONG = "FIELD_TOO_LONG"

#: Longest identifier (invoice, stock code, customer id) and name (country, store) stored.
MAX_ID_LENGTH = 64
MAX_NAME_LENGTH = 200

#: Every reason code, in the order they are listed in ``rejected_data.reasons``.
REASON_CODES: tuple[str, ...] = (
    MISSING_INVOICE,
    MISSING_STOCK_CODE,
    MISSING_CUSTOMER_ID,
    CANCELLATION,
    BAD_DEBT_ADJUSTMENT,
    BAD_QUANTITY,
    NON_POSITIVE_QUANTITY,
    BAD_PRICE,
    NEGATIVE_PRICE,
    ZERO_PRICE,
    BAD_DATE,
    DATE_OUT_OF_RANGE,
    FIELD_TOO_LONG,
)

#: Earliest invoice date accepted; later than ingestion time + :data:`MAX_DATE_LEAD` is refused.
MIN_INVOICE_DATE = dt.datetime(1970, 1, 1)
MAX_DATE_LEAD = dt.timedelta(days=1)

#: Date formats tried in order on the values still unparsed (ISO first, the data set's own).
ISO_FORMATS: tuple[str, ...] = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d",
)
#: Month-first slash dates, as in the original UCI workbook export (``12/1/2010 8:26``).
MONTH_FIRST_FORMATS: tuple[str, ...] = (
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%y %H:%M",
    "%m/%d/%y",
    "%m-%d-%Y %H:%M",
    "%m-%d-%Y %H:%M:%S",
    "%m-%d-%Y",
)
#: Day-first dates (European exports), used for a column only when the data prove it.
DAY_FIRST_FORMATS: tuple[str, ...] = (
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y",
    "%d/%m/%Y %I:%M %p",
    "%d/%m/%Y %I:%M:%S %p",
    "%d/%m/%y %H:%M",
    "%d/%m/%y",
    "%d-%m-%Y %H:%M",
    "%d-%m-%Y %H:%M:%S",
    "%d-%m-%Y",
)
#: Dotted dates and month names are always day-first (``01.12.2010 08:26``, ``01-Dec-2010``).
DOTTED_FORMATS: tuple[str, ...] = (
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y",
    "%d-%b-%Y %H:%M",
    "%d-%b-%Y %H:%M:%S",
    "%d-%b-%Y",
    "%d %b %Y %H:%M",
    "%d %b %Y %H:%M:%S",
    "%d %b %Y",
    "%d.%m.%y %H:%M",
    "%d.%m.%y",
)
#: The accepted date spellings in one sentence (reports, error hints, docs).
ACCEPTED_DATES = (
    "ISO 2009-12-01 07:45:00 (also with T, fractional seconds, without seconds or time, with "
    "a time-zone suffix Z/+01:00 that is dropped, or 2009/12/01), slash dates 12/1/2009 7:45, "
    "12/01/2009 07:45 AM or 12/01/09 and dashed 12-01-2009 07:45 (month-first unless the "
    "column proves day-first), dotted 01.12.2009 07:45 or 01.12.09, 01-Dec-2009 and "
    "01 Dec 2009 (day-first); years in full (4 digits) except in the 2-digit slash and dotted "
    "forms; and numbers: Excel day numbers (40513 or 40513.35) and Unix timestamps in seconds "
    "or milliseconds (UTC)"
)

#: Values that mean "no value" in any text field: empty, pandas/SQL spellings, a dash, and the
#: error values a spreadsheet writes into a cell whose formula failed (``#N/A``, ``#REF!``...).
_MISSING_TOKENS = (
    *("", "nan", "none", "null", "na", "n/a", "-", "--"),
    *("#n/a", "#na", "#value!", "#ref!", "#null!", "#div/0!", "#name?", "#num!"),
)
#: Placeholders that shop systems write for an order without a customer account: one such
#: "customer" collected every guest order and was then the shop's top customer.
_GUEST_TOKENS = ("guest", "guest checkout", "anonymous", "unknown", "walk-in", "walkin")


_MISSING_CUSTOMER_TOKENS = _MISSING_TOKENS + _GUEST_TOKENS
#: A customer id holding at least this share of the valid lines (among at least
#: :data:`DOMINANT_ID_MIN_CUSTOMERS` customers) is pointed out: a placeholder for guest orders?
DOMINANT_ID_SHARE = 0.10
DOMINANT_ID_MIN_CUSTOMERS = 20


_GUARD_TOKENS = {"%m": r"\d{1,2}", "%d": r"\d{1,2}", "%b": "[A-Za-z]{3}"}


def _year_guard(fmt: str) -> str | None:
    """Return a regex admitting only text whose ``%Y`` field has exactly four digits.

    chrono's ``%Y`` also reads ``09`` as the year 9, so ``12/01/09`` would become 12 AD under
    ``%Y/%m/%d``; the guard lets such text fall through to the ``%y`` formats.
    """
    head, found, _ = fmt.partition("%Y")
    if not found:
        return None
    prefix = re.sub(r"%[mdb]|.", lambda m: _GUARD_TOKENS.get(m.group(), re.escape(m.group())), head)
    return f"^{prefix}\\d{{4}}(?:\\D|$)"


def _try_formats(values: pl.Series, formats: tuple[str, ...]) -> pl.Series:
    """Parse ``values`` with each format in turn, only on the values still unparsed.

    A format with ``%Y`` is only tried on values whose year has four digits.
    """
    parsed = pl.Series(values.name, [], dtype=pl.Datetime("us")).extend_constant(None, len(values))
    for fmt in formats:
        todo = parsed.is_null() & values.is_not_null()
        if not todo.any():
            break
        guard = _year_guard(fmt)
        candidates = values
        if guard is not None:
            candidates = pl.select(
                pl.when(values.str.contains(guard)).then(values).otherwise(None)
            ).to_series()
        attempt = candidates.str.strptime(pl.Datetime("us"), fmt, strict=False, exact=True)
        parsed = parsed.fill_null(attempt)
    return parsed


#: An ISO timestamp with a time-zone suffix: ``2011-01-05T10:00:00Z``, ``... +01:00``, ``+0100``.
_ZONE_SUFFIX = r"\s*(?:Z|UTC|[+-]\d{2}(?::?\d{2})?)$"
_ISO_ZONE = r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?" + _ZONE_SUFFIX


def _parse_zoned(
    text: pl.Series, parsed: pl.Series, zoned: pl.Series, notes: list[str] | None
) -> pl.Series:
    """Parse ISO timestamps with a time-zone suffix as the wall time written, suffix dropped.

    A shop's export writes its own local time; converting to UTC could move a late purchase to
    the next day, so the time is kept as written (and the caller is told).
    """
    bare = pl.select(
        pl.when(pl.lit(zoned)).then(text.str.replace(_ZONE_SUFFIX, "")).otherwise(None)
    ).to_series()
    parsed = parsed.fill_null(_try_formats(bare, ISO_FORMATS))
    if notes is not None:
        example = text.filter(zoned)[0]
        notes.append(
            f"{int(zoned.sum()):,} dates carry a time-zone suffix (e.g. {example!r}): the time "
            "was kept as written and the suffix dropped (no conversion to UTC)"
        )
    return parsed


#: Excel day numbers accepted as dates: 1954-10-04 .. 2119-01-09 (day 0 is 1899-12-30).
_EXCEL_DAYS = (20_000, 80_000)
_EXCEL_EPOCH_OFFSET = 25_569  # days from 1899-12-30 to 1970-01-01


def _parse_numeric_dates(
    text: pl.Series, parsed: pl.Series, numeric: pl.Series, notes: list[str] | None
) -> pl.Series:
    """Read number-only dates: Excel day numbers (5 digits) and Unix seconds / milliseconds.

    A spreadsheet cell typed as text keeps the day number Excel stores (``40513`` =
    2010-12-01); systems export Unix timestamps (``1291198800``, or with milliseconds). Other
    digit counts are left unparsed (``BAD_DATE``).
    """
    digits = text.str.extract(r"^(\d+)", 1).str.len_chars()
    value = text.cast(pl.Float64, strict=False)
    excel = numeric & (digits == 5) & value.is_between(*_EXCEL_DAYS)
    whole = ~text.str.contains(r"\.\d*[1-9]")  # ``1291198800.0``, as pandas writes it
    seconds = numeric & digits.is_between(9, 10) & whole
    millis = numeric & digits.is_between(12, 13) & whole
    micros = pl.select(
        pl.when(pl.lit(excel))
        .then(((value - _EXCEL_EPOCH_OFFSET) * 86_400_000_000).round(0))
        .when(pl.lit(seconds))
        .then(value * 1_000_000)
        .when(pl.lit(millis))
        .then(value * 1_000)
        .otherwise(None)
        .cast(pl.Int64)
    ).to_series()
    parsed = parsed.fill_null(pl.from_epoch(micros, time_unit="us"))
    if notes is not None:
        for kind, mask in (
            ("Excel day numbers", excel),
            ("Unix seconds (read as UTC)", seconds),
            ("Unix milliseconds (read as UTC)", millis),
        ):
            if mask.any():
                example = text.filter(mask)[0]
                read = parsed.filter(mask)[0]
                n = int(mask.sum())
                notes.append(
                    f"{count(n, 'date')} written as {kind}, e.g. {example!r} = "
                    f"{read:%Y-%m-%d %H:%M}"
                )
    return parsed


def parse_dates(
    values: pl.Series, *, day_first: bool | None = None, notes: list[str] | None = None
) -> pl.Series:
    """Parse text dates in ISO or slash formats into ``Datetime("us")``; null where unparseable.

    Slash dates are read month-first (``12/1/2010 8:26`` is 1 December 2010, the UCI export's
    convention) unless the column holds more values that only parse day-first than values that
    only parse month-first; the choice is made for the whole column, never row by row. When no
    value settles it (no part above 12: a short export, e.g. the first twelve days of a month),
    the reading that keeps the column's dates :data:`COMPACT_FACTOR` times closer together
    wins (``01/12/2010`` … ``12/12/2010``: 11 days apart month-first, 334 day-first), else
    month-first.

    Parameters
    ----------
    values : polars.Series
        Raw date text (surrounding spaces allowed).
    day_first : bool, optional
        Force the order of slash dates (``True`` day-first, ``False`` month-first); ``None``
        decides from the column as above.
    notes : list of str, optional
        When given, a sentence is appended when the order of slash dates was a guess (no value
        has a part above 12) or the column mixes both orders.

    Returns
    -------
    polars.Series
        Parsed timestamps (naive, as written), null where no format fits.
    """
    text = values.cast(pl.Utf8).str.strip_chars()
    parsed = _try_formats(text, ISO_FORMATS)
    rest = parsed.is_null() & text.is_not_null()
    if rest.any():
        zoned = rest & text.str.contains(_ISO_ZONE).fill_null(False)
        if zoned.any():
            parsed = _parse_zoned(text, parsed, zoned, notes)
            rest = parsed.is_null() & text.is_not_null()
    if not rest.any():
        return parsed
    numeric = rest & text.str.contains(r"^\d{5,13}(?:\.\d+)?$").fill_null(False)
    if numeric.any():
        parsed = _parse_numeric_dates(text, parsed, numeric, notes)
        rest = parsed.is_null() & text.is_not_null()
        if not rest.any():
            return parsed
    if day_first is not None:
        chosen = _try_formats(text, DAY_FIRST_FORMATS if day_first else MONTH_FIRST_FORMATS)
        return parsed.fill_null(chosen).fill_null(_try_formats(text, DOTTED_FORMATS))
    month_first = _try_formats(text, MONTH_FIRST_FORMATS)
    day_first_parsed = _try_formats(text, DAY_FIRST_FORMATS)
    only_month = int((rest & month_first.is_not_null() & day_first_parsed.is_null()).sum())
    only_day = int((rest & day_first_parsed.is_not_null() & month_first.is_null()).sum())
    use_day_first = only_day > only_month
    spans = (
        _span_days(parsed.fill_null(month_first)),
        _span_days(parsed.fill_null(day_first_parsed)),
    )
    if not only_month and not only_day:
        use_day_first = _compact_day_first(spans)
    if notes is not None:
        _note_date_order(
            text, rest, month_first, day_first_parsed, (only_month, only_day), notes, spans
        )
    parsed = parsed.fill_null(day_first_parsed if use_day_first else month_first)
    return parsed.fill_null(_try_formats(text, DOTTED_FORMATS))


#: Without a value that settles the order of slash dates, a reading whose dates lie this many
#: times closer together (:func:`_span_days`) than the other's is taken.
COMPACT_FACTOR = 3


def _compact_day_first(spans: tuple[int, int]) -> bool:
    """Whether day-first keeps unproven dates :data:`COMPACT_FACTOR` times closer together.

    ``spans`` are :func:`_span_days` of the column read month-first and day-first.
    """
    span_month, span_day = spans
    return span_month > 0 and span_day * COMPACT_FACTOR <= span_month


#: The share of rows at each end a span leaves out, so one stray date cannot decide it.
_SPAN_TAIL = 0.05


def _span_days(dates: pl.Series) -> int:
    """Days between the 5th and the 95th percentile of the rows' dates (0 without dates).

    Row-weighted, so a single mistyped line among thousands of the first twelve days of a
    month does not stretch the span of the right reading (with first-to-last it did).
    """
    days = dates.drop_nulls().dt.date().cast(pl.Int32)
    if days.is_empty():
        return 0
    low = days.quantile(_SPAN_TAIL, interpolation="nearest")
    high = days.quantile(1.0 - _SPAN_TAIL, interpolation="nearest")
    return int(high - low) if low is not None and high is not None else 0


def _note_date_order(
    text: pl.Series,
    rest: pl.Series,
    month_first: pl.Series,
    day_first: pl.Series,
    only: tuple[int, int],
    notes: list[str],
    spans: tuple[int, int] = (0, 0),
) -> None:
    """Append a warning when slash dates could be read both ways or mix both orders.

    ``spans`` are :func:`_span_days` of the column read month-first and day-first.
    """
    only_month, only_day = only
    if only_month and only_day:
        readable = rest & (month_first.is_not_null() | day_first.is_not_null())
        kind = _separator_word(text.filter(readable))
        order = "day-first" if only_day > only_month else "month-first"
        notes.append(
            f"{kind} dates mix both orders ({only_month:,} only parse month-first, "
            f"{only_day:,} only day-first): read {order}, the others are rejected as BAD_DATE"
        )
        return
    if only_month or only_day:
        return
    differ = rest & month_first.is_not_null() & day_first.is_not_null() & (month_first != day_first)
    ambiguous = int(differ.sum())
    if ambiguous == 0:
        return
    ambiguous_text = text.filter(differ)
    kind = _separator_word(ambiguous_text)
    example = ambiguous_text[0]
    if _compact_day_first(spans):
        span_month, span_day = spans
        read_as = day_first.filter(differ)[0]
        notes.append(
            f"{ambiguous:,} {kind} dates could be read day-first or month-first (no part above "
            f"12, e.g. {example!r}); they were read day-first ({example!r} = {read_as:%Y-%m-%d}),"
            f" the reading that keeps the file's dates together (90% of the rows within "
            f"{span_day:,} days, against {span_month:,} month-first). If the export writes the "
            "month first, undo this ingest run (clv undo-ingest with the run id of the report) "
            "and ingest it again with --month-first"
        )
        return
    read_as = month_first.filter(differ)[0]
    notes.append(
        f"{ambiguous:,} {kind} dates could be read day-first or month-first (no part above 12, "
        f"e.g. {example!r}); they were read month-first ({example!r} = {read_as:%Y-%m-%d}). If the "
        "export writes the day first, undo this ingest run (clv undo-ingest with the run id of "
        "the report) and ingest it again with --day-first"
    )


def _separator_word(dates: pl.Series) -> str:
    """Name the dates' separator as the user sees it: slash, dashed, or both."""
    slashed = bool(dates.str.contains("/", literal=True).any())
    dashed = bool(dates.str.contains(r"^\d{1,2}-").any())
    if dashed and not slashed:
        return "dashed"
    return "slash and dashed" if dashed else "slash"


#: A customer id that is an e-mail address (lower-cased: ``Kunde@Shop.de`` is ``kunde@shop.de``).
EMAIL_ID = r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$"


#: A whole-number id written as a decimal: ``13085.0`` (pandas), ``12346.00`` (a spreadsheet's
#: two-decimal number format). Not three zeros: ``12.000`` may be 12,000 with a thousands dot.
_FLOAT_ID = re.compile(r"^(\d+)\.00?$")
_EMAIL_ID = re.compile(EMAIL_ID)


def normalise_customer_id(value: str) -> str:
    """Normalise one customer id as :func:`parse_and_validate` does a column of them.

    Trimmed, ``"13085.0"`` and ``"13085.00"`` -> ``"13085"``, and an e-mail address
    (:data:`EMAIL_ID`) lower-cased. For ids that arrive one by one (API requests, the store's
    migrations).
    """
    value = value.strip()
    match = _FLOAT_ID.match(value)
    if match:
        return match.group(1)
    return value.lower() if _EMAIL_ID.match(value) else value


#: A first or last purchase day this many days or more away from every other is worth a word.
ISOLATED_DAYS = 60


class IsolatedEnd(NamedTuple):
    """A first or last purchase day far from every other (:func:`isolated_ends`)."""

    #: "first", "last", or "only" when there are only two purchase days (no telling which)
    word: str
    day: dt.date
    #: the nearest other purchase day
    other: dt.date
    lines: int


def isolated_ends(dates: pl.Series) -> list[IsolatedEnd]:
    """Return the ends (last, first) lying :data:`ISOLATED_DAYS` or more from any other day.

    With only two purchase days, one ``"only"`` end (the earlier day) when they are that far
    apart. Nulls are ignored.
    """
    day = dates.drop_nulls().dt.date()
    counts = day.value_counts(name="lines").sort(day.name)
    if counts.height < 2:
        return []
    days, lines = counts[day.name].to_list(), counts["lines"].to_list()
    if counts.height == 2:  # one gap, and no telling which end is wrong
        far = (days[1] - days[0]).days >= ISOLATED_DAYS
        return [IsolatedEnd("only", days[0], days[1], lines[0])] if far else []
    ends = [
        IsolatedEnd("last", days[-1], days[-2], lines[-1]),
        IsolatedEnd("first", days[0], days[1], lines[0]),
    ]
    return [end for end in ends if abs((end.day - end.other).days) >= ISOLATED_DAYS]


def isolated_last_day(dates: pl.Series) -> tuple[dt.date, dt.date] | None:
    """Return (last purchase day, the day before it with purchases) when they are far apart.

    Far: :data:`ISOLATED_DAYS` or more (:func:`isolated_ends`). ``None`` otherwise, or with
    fewer than two days.
    """
    for end in isolated_ends(dates):
        if end.word == "last":
            return end.day, end.other
        if end.word == "only":  # two days: the later one is the last
            return end.other, end.day
    return None


def isolated_end_dates_notes(
    dates: pl.Series, *, whole_store: bool = False, ends: list[IsolatedEnd] | None = None
) -> list[str]:
    """Say when the first or the last purchase day stands far apart from all the others.

    A single mistyped year (``2012-05-03`` in data that ends in 2011-05) silently moves the
    default as-of date of training and scoring, so it is pointed out; a real gap (a shop closed
    for a season) reads the same and is for the user to judge.

    Parameters
    ----------
    dates : polars.Series
        Purchase timestamps (nulls ignored).
    whole_store : bool, default False
        The dates are the whole store's (``clv train`` / ``clv predict`` picking their default
        date) rather than one file's (an ingest report): the advice differs.
    ends : list of IsolatedEnd, optional
        The ends to word, when the caller has already chosen them from :func:`isolated_ends`
        of ``dates`` (an ingest leaves out those the store fills).

    Returns
    -------
    list of str
        One sentence per end (last, first) that lies :data:`ISOLATED_DAYS` or more days away
        from the nearest other purchase day; with only two purchase days, one sentence.
    """
    if ends is None:
        ends = isolated_ends(dates)
    if whole_store:
        fix = (
            "fix it with clv undo-ingest on the run that holds it (clv ingest-runs) and ingest "
            "the corrected file"
        )
        effects = {
            "last": "clv train and clv predict refuse their default as-of date after it (pass "
            "--as-of)",
            "first": "training history is counted from it",
        }
    else:
        fix = (
            "fix it in the file and send it again (if its rows were stored, undo that ingest "
            "run first: clv undo-ingest)"
        )
        effects = {
            "last": "if the store holds nothing later, clv train and clv predict refuse their "
            "default as-of date after it",
            "first": "if the store holds nothing earlier, training history is counted from it",
        }
    notes = []
    for end in ends:
        gap = abs((end.day - end.other).days)
        if end.word == "only":
            notes.append(
                f"the only two purchase days, {end.day} and {end.other}, are {gap} days apart: "
                f"a mistyped date? If so, {fix}; {effects['last']}, and {effects['first']}"
            )
        else:
            notes.append(
                f"the {end.word} purchase day, {end.day} ({count(end.lines, 'line')}), is "
                f"{gap} days away from any other ({end.other}): a mistyped date? If so, {fix}; "
                f"{effects[end.word]}"
            )
    return notes


def lone_day_note(day: dt.date, lines: int) -> str:
    """Say that a file whose purchases all fall on one day is far from the store's purchases.

    :func:`isolated_end_dates_notes` judges a file by its own days, so a one-line file with a
    mistyped year gets no word from it; the ingest adds this one when the store holds
    purchases but none within :data:`ISOLATED_DAYS` of that day.
    """
    return (
        f"every purchase line of the file falls on {day} ({count(lines, 'line')}), and the "
        f"store holds no purchase within {ISOLATED_DAYS} days of it: a mistyped date? If so, "
        "fix it in the file and send it again (if its rows were stored, undo that ingest run "
        "first: clv undo-ingest); if the store holds nothing later, clv train and clv predict "
        "refuse their default as-of date after it"
    )


def _missing(stripped: pl.Expr, tokens: tuple[str, ...] = _MISSING_TOKENS) -> pl.Expr:
    """Flag values that are missing, empty or a missing-value token (``nan``, ``NaN``...).

    Tokens match in any letter case (about 35 ms a column per million rows).
    """
    return stripped.is_null() | stripped.str.to_lowercase().is_in(tokens)


#: A price with a decimal comma: ``1,65``, ``2,5``, ``1.234,50``, and ``0,820`` or ``1,2345``
#: (a thousands group never follows a lone 0 and always has exactly three digits).
_COMMA_DECIMAL = r"^-?(?:\d+,\d{1,2}|\d+,\d{4,}|0,\d+|\d{1,3}(?:\.\d{3})+,\d+)$"
#: A price with a decimal dot that no comma file writes: ``1.50``, ``0.5``, ``2.3456``.
_DOT_DECIMAL = r"^-?\d+\.(?:\d{1,2}|\d{4,})$"
#: A price whose only commas could be thousands groups or a three-decimal comma: ``7,640``.
_AMBIGUOUS_COMMA = r"^-?\d{1,3}(?:,\d{3})+$"
#: A price with thousands commas and a decimal dot: ``1,234.50``.
_COMMA_THOUSANDS_DOT_DECIMAL = r"^-?\d{1,3}(?:,\d{3})+\.\d+$"
#: A well-formed number in the decimal-comma convention (dots only as thousands groups).
_COMMA_NUMBER = r"^-?(?:\d{1,3}(?:\.\d{3})+|\d+)(?:,\d+)?$"
#: An integer written with thousands dots: ``1.000``, ``12.500``.
_THOUSANDS_DOTS = r"^-?\d{1,3}(?:\.\d{3})+$"
#: A currency sign or code before or after the number: ``£0.82``, ``0,82 €``, ``EUR 0.82``.
#: A currency sign, or a three-letter code (``EUR``, ``CHF``…; ``eur`` too for the three most
#: common), before or after a price.
#: ISO 4217 codes of the currencies a shop's export is likely to carry (any three capitals
#: would turn ``ABC123`` or ``12 PCS`` into prices).
_ISO_CODES = (
    "EUR|GBP|USD|CHF|SEK|NOK|DKK|ISK|PLN|CZK|HUF|RON|BGN|HRK|RSD|TRY|UAH|RUB|JPY|CNY|HKD|TWD|"
    "KRW|SGD|INR|IDR|MYR|THB|PHP|VND|AUD|NZD|CAD|MXN|BRL|ARS|CLP|COP|PEN|ZAR|NGN|KES|EGP|MAD|"
    "AED|SAR|QAR|KWD|ILS"
)
_CURRENCY_MARK = r"(?:[£$€¥₹]|" + _ISO_CODES + r"|(?i:eur|gbp|usd))"
_CURRENCY = rf"^{_CURRENCY_MARK}\s*|\s*{_CURRENCY_MARK}$"
#: The same marks, captured, to tell which currencies a price column holds.
_CURRENCY_FOUND = rf"^({_CURRENCY_MARK})\s*[-+(]?\d|\d\s*({_CURRENCY_MARK})$"
#: One name per currency for the several ways of writing it.
_SAME_CURRENCY = {"£": "GBP", "€": "EUR", "$": "USD ($)", "USD": "USD ($)", "₹": "INR", "¥": "JPY"}
#: A space (also no-break or narrow no-break) or a Swiss apostrophe grouping thousands:
#: ``1 234,50``, ``1'234.50``.
_SPACE_GROUP = r"(\d)[ \u00a0\u202f'’](\d{3})\b"
#: Quantities and prices must stay below this in absolute value: a line's value in
#: thousandths (``features.money``) then stays far inside ``Int64`` (Online Retail II's
#: largest are 80,995 units and 38,970.00).
MAX_ABS_AMOUNT = 10**7

DOT = "dot"
COMMA = "comma"
MIXED = "mixed"


def _cleaned_if_commas(raw: pl.Series) -> pl.Series | None:
    """:func:`_price_text` of a price column holding a comma, else None (nothing to decide)."""
    return _price_text(raw) if raw.str.contains(",", literal=True).any() else None


def _join_space_groups(text: pl.Series) -> pl.Series:
    """Join thousands grouped by spaces or apostrophes: ``1 234 567`` is ``1234567``."""
    for _ in range(2):  # each pass joins every other group
        text = text.str.replace_all(_SPACE_GROUP, "${1}${2}")
    return text


def _price_text(raw: pl.Series) -> pl.Series:
    """Strip a price's spaces, currency sign or code and space thousands groups.

    A sign before the currency mark stays with the number: ``-$3.00`` is ``-3.00``.
    """
    text = (
        raw.str.strip_chars()
        .str.replace(rf"^([-+])\s*{_CURRENCY_MARK}\s*", "${1}")
        .str.replace_all(_CURRENCY, "")
    )
    text = _join_space_groups(text)
    return text


class _Scan(NamedTuple):
    """What :func:`_scan_convention` found in a price column."""

    convention: str
    comma: str | None  # a decimal-comma price, as written
    dot: str | None  # a decimal-dot price (``1.50``, ``1,234.50``), as written
    ambiguous: str | None  # a price whose comma could be either (``7,640``), read as thousands
    outvoted: int  # prices written in the other convention, rejected (the majority decided)


#: When prices show both decimal marks, the one written at least this many times as often
#: decides the column and the other's prices are rejected; closer than that, "mixed".
MAJORITY_FACTOR = 3


def _scan_convention(raw: pl.Series, cleaned: pl.Series | None) -> _Scan:
    """Decide the price column's decimal mark and return the values that decided it (one scan).

    ``cleaned`` is :func:`_cleaned_if_commas` of ``raw`` (None: no comma, the dot reading).
    Decimal-comma prices (``1,65``) count for the comma; thousands commas before a decimal dot
    (``1,234.50``) and decimal dots no comma file writes (``1.50``, not ``1.500``) count for
    the dot. When both occur, a mark with :data:`MAJORITY_FACTOR` times the other's count
    decides (one stray ``2,5`` among thousands of ``1.60`` rejects only itself); otherwise the
    column is ``mixed``.
    """
    if cleaned is None:
        return _Scan(DOT, None, None, None, 0)
    is_comma = cleaned.str.contains(_COMMA_DECIMAL)
    is_dot = cleaned.str.contains(_COMMA_THOUSANDS_DOT_DECIMAL) | cleaned.str.contains(_DOT_DECIMAL)
    n_comma, n_dot = int(is_comma.sum()), int(is_dot.sum())
    comma = raw.filter(is_comma).head(1).to_list()
    dot = raw.filter(is_dot).head(1).to_list()
    if n_comma and n_dot:
        if n_comma >= MAJORITY_FACTOR * n_dot:
            convention, outvoted = COMMA, n_dot
        elif n_dot >= MAJORITY_FACTOR * n_comma:
            convention, outvoted = DOT, n_comma
        else:
            convention, outvoted = MIXED, 0
    else:
        convention, outvoted = (COMMA if n_comma else DOT), 0
    ambiguous: list[str] = []
    if convention == DOT and not n_dot:
        ambiguous = raw.filter(cleaned.str.contains(_AMBIGUOUS_COMMA)).head(1).to_list()
    return _Scan(
        convention,
        comma[0] if comma else None,
        dot[0] if dot else None,
        ambiguous[0] if ambiguous else None,
        outvoted,
    )


def _bounded(values: pl.Series) -> pl.Series:
    """Null out non-finite values and magnitudes of :data:`MAX_ABS_AMOUNT` or more.

    ``inf``, ``Infinity``, ``NaN`` and ``"1e400"`` (which reads as ``inf``) all become null.
    """
    keep = values.is_finite() & (values.abs() < MAX_ABS_AMOUNT)
    return pl.select(pl.when(keep).then(values).otherwise(None)).to_series()


def _parse_price(
    raw: pl.Series, convention: str = DOT, cleaned: pl.Series | None = None
) -> pl.Series:
    """Parse prices in the column's ``convention`` (see :func:`_scan_convention`).

    ``cleaned`` is :func:`_price_text` of ``raw`` when the caller has it already; otherwise
    it is computed only if some value needs it.

    ``dot``: plain numbers, then values with a currency sign or thousands commas. ``comma``:
    the comma is the decimal mark and dots group thousands (a value with any other dot is
    null). ``mixed``: as ``dot``, but every value holding a comma is null (either reading is
    possible). Non-finite results and magnitudes of :data:`MAX_ABS_AMOUNT` or more are null.
    """
    text = raw.str.strip_chars()
    if convention == COMMA:
        cleaned = _price_text(raw) if cleaned is None else cleaned
        number = cleaned.str.replace_all(".", "", literal=True).str.replace(",", ".", literal=True)
        price = pl.select(
            pl.when(cleaned.str.contains(_COMMA_NUMBER)).then(number).otherwise(None)
        ).to_series()
        return _bounded(price.cast(pl.Float64, strict=False))
    price = text.cast(pl.Float64, strict=False)
    retry = price.is_null() & text.is_not_null()
    if retry.any():
        cleaned = _price_text(raw) if cleaned is None else cleaned
        # mixed: any comma could be either mark; dot: a decimal comma (``2,5``) is no
        # thousands separator (outvoted by the column's decimal dots), never read as 25
        refused = "," if convention == MIXED else _COMMA_DECIMAL
        cleaned = pl.select(
            pl.when(cleaned.str.contains(refused, literal=convention == MIXED))
            .then(None)
            .otherwise(cleaned)
        ).to_series()
        price = price.fill_null(cleaned.str.replace_all(",", "").cast(pl.Float64, strict=False))
    return _bounded(price)


def _parse_quantity(raw: pl.Series, convention: str = DOT, dot_proven: bool = False) -> pl.Series:
    """Parse integer quantities; ``"12.0"`` is 12, ``"1.5"`` and text are null.

    Spaces (also no-break) and apostrophes grouping thousands are read in every file: ``"1 200"``
    is 1200. In a file whose prices show a decimal dot (``dot_proven``: ``1.50`` or ``1,234.50``
    among them), ``"1,200"`` is 1200 too; without that proof it stays null (a decimal-comma
    export writes ``1,000`` for one piece). In a file
    whose prices use a decimal comma (``convention="comma"``), ``"1.000"`` is one thousand and
    ``"12,0"`` is 12; any other dot makes the value null. With ``"mixed"`` prices, ``"1.000"``
    and ``"1,000"`` are null (1 or 1000). Values that are not finite, or whose magnitude is
    :data:`MAX_ABS_AMOUNT` or more, are null: a quantity never overflows silently.
    """
    text = raw.str.strip_chars()
    text = _join_space_groups(text)
    if convention == DOT and dot_proven:
        text = pl.select(
            pl.when(text.str.contains(_AMBIGUOUS_COMMA))
            .then(text.str.replace_all(",", "", literal=True))
            .otherwise(text)
        ).to_series()
    elif convention == COMMA:
        text = pl.select(
            pl.when(text.str.contains(_THOUSANDS_DOTS))
            .then(text.str.replace_all(".", "", literal=True))
            .when(text.str.contains(".", literal=True))
            .then(None)
            .otherwise(text.str.replace(",", ".", literal=True))
        ).to_series()
    elif convention == MIXED:
        text = pl.select(
            pl.when(text.str.contains(_THOUSANDS_DOTS)).then(None).otherwise(text)
        ).to_series()
    quantity = text.cast(pl.Int64, strict=False)
    retry = quantity.is_null() & text.is_not_null()
    if retry.any():
        as_float = text.cast(pl.Float64, strict=False)
        whole = pl.select(
            pl.when(as_float == as_float.round(0)).then(as_float).otherwise(None)
        ).to_series()
        quantity = quantity.fill_null(whole.cast(pl.Int64, strict=False))
    return pl.select(
        pl.when(quantity.is_between(-MAX_ABS_AMOUNT, MAX_ABS_AMOUNT, closed="none"))
        .then(quantity)
        .otherwise(None)
    ).to_series()


def _note_convention(scan: _Scan, notes: list[str]) -> None:
    """Append a sentence saying how the price column's numbers were read.

    ``scan`` holds the deciding values from :func:`_scan_convention`.
    """
    if scan.ambiguous is not None:
        value = _parse_price(pl.Series([scan.ambiguous]), DOT)[0]
        notes.append(
            f"prices such as {scan.ambiguous!r} were read with the comma as a thousands "
            f"separator ({value:g}): no price in the file settles it (a decimal comma shows in "
            "'0,82' or '1,5', a thousands comma in '1,234.50'). If the export writes a decimal "
            "comma, these prices are 1000 times too high: convert them before ingesting"
        )
    if scan.convention == COMMA:
        value = _parse_price(pl.Series([scan.comma]), COMMA)[0]
        notes.append(
            f"prices use a decimal comma ({scan.comma!r} read as {value:g}); dots in prices and "
            "quantities are read as thousands separators"
            + _outvoted(scan.outvoted, "a decimal dot", scan.dot)
        )
    elif scan.convention == DOT and scan.outvoted:
        notes.append(
            f"prices use a decimal dot ({scan.dot!r})"
            + _outvoted(scan.outvoted, "a decimal comma", scan.comma)
        )
    elif scan.convention == MIXED:
        notes.append(
            f"prices mix a decimal comma ({scan.comma!r}) and a decimal dot ({scan.dot!r}) in "
            "similar numbers: every price holding a comma is rejected as BAD_PRICE rather than "
            "guessed"
        )


def _outvoted(outvoted: int, mark: str, example: str | None) -> str:
    """Say how many prices written the other way were rejected (empty when none)."""
    if not outvoted:
        return ""
    return (
        f"; {count(outvoted, 'price')} written with {mark} (e.g. {example!r}) rejected as "
        "BAD_PRICE rather than guessed"
    )


def _note_currencies(raw: pl.Series, price: pl.Series, notes: list[str]) -> None:
    """Append a warning when the prices read carry more than one currency.

    retail-clv does not convert currencies: such prices are added together as they stand.
    """
    marked = price.is_not_null() & raw.str.contains(r"[^\d\s.,+\-()]").fill_null(False)
    if not marked.any():
        return
    marks = raw.filter(marked).str.strip_chars().str.extract_groups(_CURRENCY_FOUND).struct.unnest()
    found = marks.select(pl.coalesce(marks.columns).alias("mark"))["mark"].drop_nulls()
    if found.is_empty():
        return
    named = found.str.to_uppercase().replace(_SAME_CURRENCY).value_counts(sort=True)
    if named.height < 2:
        return
    listed = ", ".join(f"{name} {n:,}" for name, n in named.iter_rows())
    notes.append(
        f"prices carry several currencies (lines per currency: {listed}); they are added "
        "together as one currency, since retail-clv does not convert them: convert the prices "
        "to one currency before ingesting"
    )


def _note_unread_prices(raw: pl.Series, price: pl.Series, notes: list[str]) -> None:
    """Append a sentence with examples when most written prices could not be read as numbers."""
    written = pl.select(~_missing(pl.lit(raw).str.strip_chars())).to_series()
    unread = written & price.is_null()
    n_written, n_unread = int(written.sum()), int(unread.sum())
    if n_written == 0 or n_unread * 2 <= n_written:
        return
    examples = raw.filter(unread).unique(maintain_order=True).head(2).to_list()
    notes.append(
        f"{n_unread:,} of {n_written:,} prices could not be read as numbers (BAD_PRICE), e.g. "
        f"{', '.join(repr(e) for e in examples)}; accepted: plain numbers with a decimal dot or "
        "a decimal comma (decided per file), thousands separators (comma, dot or space), a "
        "currency sign (£ $ € ¥ ₹) or three-letter code (EUR, CHF…) before or after the number"
    )


def parse_and_validate(
    raw: pl.DataFrame,
    *,
    now: dt.datetime | None = None,
    day_first: bool | None = None,
    notes: list[str] | None = None,
) -> pl.DataFrame:
    """Parse the ``raw_*`` text columns and attach the reason codes of every row.

    Parameters
    ----------
    raw : polars.DataFrame
        One ``raw_<field>`` Utf8 column per canonical field (null when the file lacks it),
        optionally ``raw_store``.
    now : datetime.datetime, optional
        Time of ingestion (default: now, local); dates later than ``now`` + 1 day are
        ``DATE_OUT_OF_RANGE``.
    day_first : bool, optional
        Force the order of slash dates (see :func:`parse_dates`); ``None`` decides per column.
    notes : list of str, optional
        Receives warnings about guesses made for the whole file (date order, number format).

    Returns
    -------
    polars.DataFrame
        ``raw`` plus the parsed columns ``invoice, stock_code, description, quantity (Int64),
        price (Float64), invoice_date (Datetime us), customer_id, country, store`` and
        ``reasons`` (``|``-joined codes, null for a valid purchase line).
    """
    for name in FIELDS:
        if f"raw_{name}" not in raw.columns:
            raw = raw.with_columns(pl.lit(None, dtype=pl.Utf8).alias(f"raw_{name}"))
    dates = parse_dates(raw["raw_invoice_date"], day_first=day_first, notes=notes)
    latest = (now or dt.datetime.now()) + MAX_DATE_LEAD
    cleaned = _cleaned_if_commas(raw["raw_price"])  # once for the scan and the parse
    scan = _scan_convention(raw["raw_price"], cleaned)
    convention = scan.convention
    if notes is not None:
        _note_convention(scan, notes)
    dot_proven = scan.dot is not None or (
        # a price column without commas was not scanned: look for a decimal dot only when a
        # quantity holds a comma to read
        cleaned is None
        and bool(raw["raw_quantity"].str.contains(",", literal=True).any())
        and bool(_price_text(raw["raw_price"]).str.contains(_DOT_DECIMAL).any())
    )
    quantity = _parse_quantity(raw["raw_quantity"], convention, dot_proven=dot_proven)
    price = _parse_price(raw["raw_price"], convention, cleaned)
    if notes is not None and convention != MIXED:  # the mixed-convention note says why
        _note_unread_prices(raw["raw_price"], price, notes)
    if notes is not None:
        _note_currencies(raw["raw_price"], price, notes)
    stripped = {
        name: pl.col(f"raw_{name}").str.strip_chars()
        for name in ("invoice", "stock_code", "customer_id", "country")
    }
    customer = stripped["customer_id"]
    store = pl.col("raw_store").str.strip_chars() if "raw_store" in raw.columns else None
    description = pl.col("raw_description").str.strip_chars()
    parsed = raw.with_columns(
        invoice=pl.when(_missing(stripped["invoice"])).then(None).otherwise(stripped["invoice"]),
        stock_code=pl.when(_missing(stripped["stock_code"]))
        .then(None)
        .otherwise(stripped["stock_code"]),
        description=pl.when(description == "").then(None).otherwise(description),
        quantity=quantity,
        price=price,
        invoice_date=dates,
        customer_id=pl.when(_missing(customer, _MISSING_CUSTOMER_TOKENS))
        .then(None)
        .when(customer.str.contains(_FLOAT_ID.pattern))
        .then(customer.str.replace(_FLOAT_ID.pattern, "$1"))
        # an e-mail address as id (shop-platform exports): one customer whatever the case
        .when(customer.str.contains(EMAIL_ID))
        .then(customer.str.to_lowercase())
        .otherwise(customer),
        country=pl.when(_missing(stripped["country"])).then(None).otherwise(stripped["country"]),
    )
    parsed = parsed.with_columns(
        store=(
            pl.coalesce(pl.when(store != "").then(store), pl.col("country"))
            if store is not None
            else pl.col("country")
        ).fill_null("Unknown")
    )
    invoice_upper = pl.col("invoice").str.to_uppercase()
    checks: dict[str, pl.Expr] = {
        MISSING_INVOICE: pl.col("invoice").is_null(),
        MISSING_STOCK_CODE: pl.col("stock_code").is_null(),
        MISSING_CUSTOMER_ID: pl.col("customer_id").is_null(),
        # Online Retail II's conventions, narrowed to what they mark there so that a shop whose
        # invoice numbers merely start with C or A (a branch code) keeps its sales: a C invoice
        # is a cancellation when it takes goods back, an A invoice with stock code B adjusts
        # bad debt. A customer's line taking goods back without the C (a till's refund) is a
        # cancellation too; Online Retail II has none (its negative lines without C are stock
        # adjustments without a customer).
        CANCELLATION: (
            (pl.col("quantity") < 0)
            & (invoice_upper.str.starts_with("C") | pl.col("customer_id").is_not_null())
        ).fill_null(False),
        BAD_DEBT_ADJUSTMENT: (
            invoice_upper.str.starts_with("A") & (pl.col("stock_code").str.to_uppercase() == "B")
        ).fill_null(False),
        BAD_QUANTITY: pl.col("quantity").is_null(),
        NON_POSITIVE_QUANTITY: (pl.col("quantity") <= 0).fill_null(False),
        BAD_PRICE: pl.col("price").is_null() | pl.col("price").is_nan(),
        NEGATIVE_PRICE: (pl.col("price") < 0).fill_null(False),
        ZERO_PRICE: (pl.col("price") == 0).fill_null(False),
        BAD_DATE: pl.col("invoice_date").is_null(),
        DATE_OUT_OF_RANGE: (
            (pl.col("invoice_date") < MIN_INVOICE_DATE) | (pl.col("invoice_date") > latest)
        ).fill_null(False),
        FIELD_TOO_LONG: (
            pl.any_horizontal(
                *(
                    pl.col(name).str.len_chars() > MAX_ID_LENGTH
                    for name in ("invoice", "stock_code", "customer_id")
                ),
                *(pl.col(name).str.len_chars() > MAX_NAME_LENGTH for name in ("country", "store")),
            ).fill_null(False)
        ),
    }
    # One bit per rule, summed into a mask; the few distinct masks are then mapped to their
    # "|"-joined codes (much faster than concatenating strings on every row).
    mask = pl.sum_horizontal(
        [cond.cast(pl.Int32) * (1 << bit) for bit, cond in enumerate(checks.values())]
    ).alias("_mask")
    with_mask = parsed.with_columns(mask)
    masks = with_mask["_mask"].unique().sort().to_list()
    codes = list(checks)
    labels = [
        "|".join(code for bit, code in enumerate(codes) if m & (1 << bit)) or None for m in masks
    ]
    if not masks:
        out = with_mask.with_columns(reasons=pl.lit(None, dtype=pl.Utf8)).drop("_mask")
    else:
        out = with_mask.with_columns(
            reasons=pl.col("_mask").replace_strict(masks, labels, return_dtype=pl.Utf8)
        ).drop("_mask")
    if notes is not None:
        _note_dominant_customer(out, notes)
    return out


def _note_dominant_customer(parsed: pl.DataFrame, notes: list[str]) -> None:
    """Append a warning when one customer id holds an outsized share of the valid lines.

    A shop system that writes one placeholder for every guest order (``0``, ``GUEST-0001``,
    ``99999``...) makes a "customer" that then tops every prediction; the common placeholder
    words are read as missing ids already (``_GUEST_TOKENS``). A real customer can hold that
    share too (a shop's wholesale buyer: 11–76% of the lines of six of Online Retail II's
    countries), so the id must also look unlike the others: another shape (digits or not,
    length) than most ids, or one character repeated.
    """
    ids = parsed.filter(pl.col("reasons").is_null()).get_column("customer_id")
    if ids.n_unique() < DOMINANT_ID_MIN_CUSTOMERS:
        return
    counts = ids.value_counts(sort=True, name="n")
    top = counts.row(0, named=True)
    share = top["n"] / ids.len()
    if share < DOMINANT_ID_SHARE:
        return
    candidate = str(top["customer_id"])
    others = counts.get_column("customer_id").slice(1)
    shapes = pl.DataFrame(
        {"digits": others.str.contains(r"^\d+$"), "length": others.str.len_chars()}
    )
    usual = (
        shapes.group_by("digits", "length")
        .len()
        .sort(["len", "length", "digits"], descending=True)
        .row(0)
    )
    shape = (candidate.isdigit(), len(candidate))
    if shape == (usual[0], usual[1]) and len(set(candidate)) > 1:
        return
    notes.append(
        f"customer id {top['customer_id']!r} holds {share:.0%} of the valid purchase lines "
        f"({top['n']:,} of {ids.len():,}): if it stands for guest orders rather than one "
        "customer, blank those ids in the file (lines without a customer id are rejected "
        "as MISSING_CUSTOMER_ID), undo this ingest and ingest the file again"
    )
