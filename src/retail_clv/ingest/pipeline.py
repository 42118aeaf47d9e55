"""Ingestion pipeline: read -> hash -> deduplicate -> validate -> split -> (store).

:func:`clean_file` is pure (no database): it reads one file (every sheet of a workbook),
drops exact duplicates inside the file, applies the rules and returns the valid purchase
lines, the cancellations, the rejected rows with their raw values, and an
:class:`IngestReport`. :func:`ingest_files` additionally drops rows already stored (same
row hash) and writes each file in one database transaction.

Every row read ends in exactly one outcome: loaded, rejected (with reason codes) or
duplicate; :func:`check_invariant` enforces ``rows_read == loaded + rejected + duplicate``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import polars as pl
import sqlalchemy as sa

from retail_clv.errors import InputFileError, RetailClvError, SchemaError, StoreError, count
from retail_clv.ingest.categories import UNCATEGORISED, categorise
from retail_clv.ingest.columns import (
    FIELDS,
    REQUIRED_FIELDS,
    STORE_FIELD,
    normalise_name,
    required_fields_named,
    resolve_columns,
)
from retail_clv.ingest.hashing import row_hashes
from retail_clv.ingest.readers import RawFile, check_unique_header, read_raw
from retail_clv.ingest.rules import (
    BAD_DATE,
    CANCELLATION,
    DATE_OUT_OF_RANGE,
    MISSING_CUSTOMER_ID,
    REASON_CODES,
    isolated_end_dates_notes,
    parse_and_validate,
)
from retail_clv.store.runs import hold_off_undo

logger = logging.getLogger(__name__)

#: Columns of :attr:`CleanResult.purchases` (``read_purchases`` columns plus ``description``).
PURCHASE_COLUMNS: tuple[str, ...] = (
    "customer_id",
    "invoice",
    "stock_code",
    "quantity",
    "price",
    "invoice_date",
    "country",
    "category",
    "description",
)
#: Columns of :attr:`CleanResult.cancellations`.
CANCELLATION_COLUMNS: tuple[str, ...] = (
    "customer_id",
    "invoice",
    "stock_code",
    "quantity",
    "price",
    "invoice_date",
)
#: Raw text columns kept for every rejected row (``rejected_data.raw_*``).
RAW_COLUMNS: tuple[str, ...] = tuple(f"raw_{name}" for name in FIELDS)
#: Columns of :attr:`CleanResult.rejected`.
REJECTED_COLUMNS: tuple[str, ...] = (
    "source_file",
    "sheet",
    "row_number",
    "reasons",
    *RAW_COLUMNS,
    "raw_extra",
    "row_hash",
)


class AccountingError(StoreError):
    """Rows read do not add up to loaded + rejected + duplicate (a bug, never bad input)."""


@dataclass
class IngestReport:
    """What happened to the rows of one file.

    Attributes
    ----------
    source_file : str
        File name (without folder).
    sheet : str or None
        Sheet names read (comma-separated) for a workbook, else ``None``.
    file_format : str
        Detected format: ``csv``, ``csv.gz``, ``xlsx``, ``xls`` or ``parquet``.
    encoding : str or None
        Detected text encoding of a CSV.
    rows_read, rows_loaded, rows_rejected, rows_duplicate : int
        Rows by outcome; ``rows_read == rows_loaded + rows_rejected + rows_duplicate``.
    reason_counts : dict of str to int
        Rejected rows per reason code (a row with several codes counts under each).
    customers, products : int
        Distinct customers and stock codes among the loaded purchase lines.
    date_min, date_max : datetime.datetime or None
        Range of the loaded purchase lines.
    uncategorised_products : int
        Loaded stock codes whose description matched no category rule.
    cancellations : int
        Cancelled lines of known customers kept (typed) for return features.
    run_id : int or None
        ``ingest_runs.id`` when stored.
    warnings : list of str
        Guesses made for the whole file that the user should check (e.g. slash dates that
        could be read day-first or month-first).
    valid_lines : int
        Distinct valid purchase lines in the file, loaded now or already stored; 0 means the
        file holds no usable purchase at all.
    bad_date_examples : list of str
        Up to two distinct raw dates of ``BAD_DATE`` rows, as read.
    """

    source_file: str
    sheet: str | None
    file_format: str
    encoding: str | None
    rows_read: int
    rows_loaded: int
    rows_rejected: int
    rows_duplicate: int
    reason_counts: dict[str, int] = field(default_factory=dict)
    customers: int = 0
    products: int = 0
    date_min: dt.datetime | None = None
    date_max: dt.datetime | None = None
    uncategorised_products: int = 0
    cancellations: int = 0
    run_id: int | None = None
    warnings: list[str] = field(default_factory=list)
    valid_lines: int = 0
    bad_date_examples: list[str] = field(default_factory=list)

    @property
    def invariant_holds(self) -> bool:
        """Whether ``rows_read == rows_loaded + rows_rejected + rows_duplicate``."""
        return self.rows_read == self.rows_loaded + self.rows_rejected + self.rows_duplicate

    def invariant_line(self) -> str:
        """Return the accounting identity with this report's numbers, e.g. for the CLI."""
        status = "every row accounted for" if self.invariant_holds else "ROWS UNACCOUNTED FOR"
        return (
            f"rows read {self.rows_read:,} = loaded {self.rows_loaded:,} + rejected "
            f"{self.rows_rejected:,} + duplicates {self.rows_duplicate:,} ({status})"
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-safe values (dates as ISO strings)."""
        return {
            "source_file": self.source_file,
            "sheet": self.sheet,
            "file_format": self.file_format,
            "encoding": self.encoding,
            "rows_read": self.rows_read,
            "rows_loaded": self.rows_loaded,
            "rows_rejected": self.rows_rejected,
            "rows_duplicate": self.rows_duplicate,
            "reason_counts": dict(self.reason_counts),
            "customers": self.customers,
            "products": self.products,
            "date_min": self.date_min.isoformat() if self.date_min else None,
            "date_max": self.date_max.isoformat() if self.date_max else None,
            "uncategorised_products": self.uncategorised_products,
            "cancellations": self.cancellations,
            "run_id": self.run_id,
            "warnings": list(self.warnings),
            "valid_lines": self.valid_lines,
            "bad_date_examples": list(self.bad_date_examples),
        }


@dataclass
class CleanResult:
    """Outcome of :func:`clean_file`: the rows split by outcome, and the report.

    The public frames follow the cross-module contract; the ``*_rows`` frames carry the
    extra columns the store needs (``row_hash``, ``store``).
    """

    valid_rows: pl.DataFrame = field(repr=False)
    cancellation_rows: pl.DataFrame = field(repr=False)
    rejected: pl.DataFrame = field(repr=False)
    products_table: pl.DataFrame = field(repr=False)
    report: IngestReport
    sha256: str = ""

    @property
    def purchases(self) -> pl.DataFrame:
        """Valid purchase lines: ``read_purchases`` columns plus ``description``."""
        return self.valid_rows.select(PURCHASE_COLUMNS)

    @property
    def cancellations(self) -> pl.DataFrame:
        """Cancelled lines of known customers (negative quantity), typed."""
        return self.cancellation_rows.select(CANCELLATION_COLUMNS)


def check_invariant(report: IngestReport) -> None:
    """Raise :class:`AccountingError` unless every row read has exactly one outcome.

    Parameters
    ----------
    report : IngestReport
        The report to check.

    Raises
    ------
    AccountingError
        When ``rows_read != rows_loaded + rows_rejected + rows_duplicate``.
    """
    if not report.invariant_holds:
        raise AccountingError(
            f"accounting invariant violated for {report.source_file}: {report.invariant_line()}"
        )


def _sheet_frame(
    raw: RawFile,
    index: int,
    column_map: Mapping[str, str] | None,
) -> pl.DataFrame:
    sheet = raw.sheets[index]
    where = f"{raw.path.name}" + (f" (sheet {sheet.name!r})" if sheet.name else "")
    try:
        mapping = resolve_columns(sheet.frame.columns, column_map, where=where)
    except SchemaError:
        found = _header_below(sheet.frame, column_map, where)
        if found is None:
            raise
        skip, mapping, frame = found
        sheet.frame = frame
        sheet.warnings.append(
            f"the header of {where} is on its row {skip + 1}: the {count(skip, 'row')} above it "
            f"(a title?) {'was' if skip == 1 else 'were'} "
            "skipped, and row numbers count from the header found"
        )
    used = set(mapping.values())
    extras = [name for name in sheet.frame.columns if name not in used]
    sheet.warnings.extend(_cancelled_orders_note(sheet.frame, extras, where))
    exprs: list[pl.Expr] = [
        (pl.col(mapping[name]) if name in mapping else pl.lit(None, dtype=pl.Utf8)).alias(
            f"raw_{name}"
        )
        for name in FIELDS
    ]
    if STORE_FIELD in mapping:
        exprs.append(pl.col(mapping[STORE_FIELD]).alias("raw_store"))
    if extras:
        exprs.append(pl.struct(extras).struct.json_encode().alias("raw_extra"))
    else:
        exprs.append(pl.lit(None, dtype=pl.Utf8).alias("raw_extra"))
    # a row with every cell empty (blank lines, ",,,," lines) carries nothing to keep or reject
    blank = pl.all_horizontal(
        pl.col(name).is_null() | (pl.col(name).str.strip_chars() == "")
        for name in sheet.frame.columns
    )
    exprs.append(blank.alias("_blank"))
    return sheet.frame.select(exprs).with_columns(
        sheet=pl.lit(sheet.name, dtype=pl.Utf8),
        row_number=pl.int_range(1, sheet.frame.height + 1, dtype=pl.Int64),
    )


#: Order-status columns of shop-platform exports (normalised names) and the statuses that mean
#: the order was not, or no longer, paid.
_CANCELLED_AT = {"cancelledat", "canceledat", "cancelleddate", "canceleddate", "cancellationdate"}
_STATUS = {"financialstatus", "orderstatus", "paymentstatus", "status"}
_UNPAID = ["voided", "void", "refunded", "cancelled", "canceled", "refund"]


def _cancelled_orders_note(frame: pl.DataFrame, extras: list[str], where: str) -> list[str]:
    """Say how many rows an order-status column marks as cancelled, voided or refunded.

    Such rows carry no reason code (their quantity and price look like a sale) and are loaded
    as purchases; the export's own status is the only sign, so the report points at it.
    """
    marked = pl.lit(False)
    named = []
    for name in extras:
        key = normalise_name(name)
        cell = pl.col(name).str.strip_chars()
        if key in _CANCELLED_AT:
            marked = marked | (cell.is_not_null() & (cell != ""))
        elif key in _STATUS:
            marked = marked | cell.str.to_lowercase().is_in(_UNPAID)
        else:
            continue
        named.append(repr(name))
    if not named:
        return []
    n = int(frame.select(marked.fill_null(False).sum()).item())
    if n == 0:
        return []
    return [
        f"{count(n, 'row')} of {where} belong to orders its {' / '.join(named)} column marks "
        "as cancelled, voided or refunded; they were loaded as purchases like the others: if "
        "those orders were not paid, remove their rows before ingesting"
    ]


#: How many rows below the first one may hold the real header (title lines above a table).
HEADER_SEARCH_ROWS = 10


def _header_below(
    frame: pl.DataFrame, column_map: Mapping[str, str] | None, where: str
) -> tuple[int, dict[str, str], pl.DataFrame] | None:
    """Find the header among the first rows when the first one is not it (a title above it).

    Returns the number of rows above the header (counting the one read as the header), the
    column mapping and the rows below it under the header's names; ``None`` when no row of the
    first :data:`HEADER_SEARCH_ROWS` has every required column.
    """
    for i, row in enumerate(frame.head(HEADER_SEARCH_ROWS).iter_rows()):
        names = [str(v).strip() if v is not None else "" for v in row]
        if sum(bool(n) for n in names) < len(REQUIRED_FIELDS):
            continue
        unique = [
            n if n and n not in names[:j] else f"{n or 'column'}_{j + 1}"
            for j, n in enumerate(names)
        ]
        if len(required_fields_named(unique, column_map)) < len(REQUIRED_FIELDS):
            continue  # cannot resolve: spare the error message's fuzzy suggestions
        try:
            mapping = resolve_columns(unique, column_map)
        except SchemaError:
            continue
        check_unique_header(f"{where} (header on row {i + 2})", [n for n in names if n])
        below = frame.slice(i + 1)
        below.columns = unique
        return i + 1, mapping, below
    return None


def _transaction_fields(frame: pl.DataFrame, column_map: Mapping[str, str] | None) -> int:
    """Count the required fields a sheet's header names (by alias or by the user's mapping).

    The header row and the first :data:`HEADER_SEARCH_ROWS` rows below it (a title above the
    header) are each tried; the best count is returned. A sheet naming few of them (a summary,
    notes) is no transaction table.
    """
    candidates = [frame.columns]
    candidates += [
        [str(v) for v in row if v is not None] for row in frame.head(HEADER_SEARCH_ROWS).iter_rows()
    ]
    return max(len(required_fields_named(names, column_map)) for names in candidates)


def _products(valid: pl.DataFrame) -> pl.DataFrame:
    """One row per stock code: its most frequent description and the derived category."""
    if valid.height == 0:
        return pl.DataFrame(
            schema={"stock_code": pl.Utf8, "description": pl.Utf8, "category": pl.Utf8}
        )
    counts = (
        valid.group_by("stock_code", "description")
        .len()
        .sort(
            ["stock_code", "len", "description"],
            descending=[False, True, False],
            nulls_last=True,
        )
    )
    table = counts.group_by("stock_code", maintain_order=True).first().drop("len")
    return table.with_columns(
        category=categorise(pl.col("stock_code"), pl.col("description"))
    ).sort("stock_code")


def _bad_date_examples(rejected: pl.DataFrame, n: int = 2) -> list[str]:
    """Return up to ``n`` distinct raw dates of the rows rejected as ``BAD_DATE``."""
    values = (
        rejected.lazy()
        .filter(pl.col("reasons").str.contains(BAD_DATE, literal=True))
        .select(pl.col("raw_invoice_date").drop_nulls().unique(maintain_order=True).head(n))
        .collect()
    )
    return [str(v) for v in values["raw_invoice_date"].to_list()]


#: Above this share of exact repeats within a file, the report says what it may mean.
REPEATED_ROWS_SHARE = 0.1


def _no_customer_ids_note(rejected: pl.DataFrame) -> list[str]:
    """Say so when the only thing keeping a file's purchase lines out is the customer id."""
    only_id = int((rejected["reasons"] == MISSING_CUSTOMER_ID).sum())
    if only_id == 0:
        return []
    return [
        f"no purchase line could be loaded, and {count(only_id, 'line')} "
        f"{'was' if only_id == 1 else 'were'} rejected only for lacking a customer id: "
        "predictions are per customer, so lines without one cannot be used (a customer column "
        "under another name can be mapped to customer_id; sales to anonymous or guest shoppers "
        "cannot be scored)"
    ]


def _report(
    base: IngestReport,
    valid: pl.DataFrame,
    rejected: pl.DataFrame,
    cancellations: pl.DataFrame,
    products: pl.DataFrame,
    rows_duplicate: int,
) -> IngestReport:
    reasons = (
        rejected.select(pl.col("reasons").str.split("|").explode().alias("code"))
        .group_by("code")
        .len()
    )
    found = dict(zip(reasons["code"].to_list(), reasons["len"].to_list(), strict=True))
    reason_counts = {code: int(found[code]) for code in REASON_CODES if code in found}
    dates = valid["invoice_date"]
    return replace(
        base,
        rows_loaded=valid.height,
        rows_rejected=rejected.height,
        rows_duplicate=rows_duplicate,
        reason_counts=reason_counts,
        customers=valid["customer_id"].n_unique(),
        products=valid["stock_code"].n_unique(),
        date_min=dates.min() if valid.height else None,  # type: ignore[arg-type]
        date_max=dates.max() if valid.height else None,  # type: ignore[arg-type]
        uncategorised_products=int((products["category"] == UNCATEGORISED).sum()),
        cancellations=cancellations.height,
    )


def clean_frame(
    frame: pl.DataFrame,
    base: IngestReport,
    *,
    source_file: str,
    sha256: str = "",
    on_step: Callable[[str], None] | None = None,
    day_first: bool | None = None,
) -> CleanResult:
    """Deduplicate, validate and split a frame of ``raw_*`` text columns (pure).

    Parameters
    ----------
    frame : polars.DataFrame
        ``raw_<field>`` Utf8 columns for every canonical field, ``raw_extra``, ``sheet`` and
        ``row_number`` (optionally ``raw_store``), in file order.
    base : IngestReport
        Report carrying file name, sheet, format and encoding; counts are filled in.
    source_file : str
        Name recorded with every rejected row.
    sha256 : str
        Digest of the file, kept for the ingest run.
    on_step : callable, optional
        Called with a short description before each stage (progress display).
    day_first : bool, optional
        Force the order of slash dates (``True`` day-first, ``False`` month-first); ``None``
        decides from the column.

    Returns
    -------
    CleanResult
        The split rows and the report, whose invariant has been checked.
    """
    step = on_step or (lambda _message: None)
    step("hashing rows, finding exact duplicates")
    hash_columns = [*RAW_COLUMNS, *(["raw_store"] if "raw_store" in frame.columns else [])]
    frame = frame.with_columns(row_hash=row_hashes(frame, hash_columns))
    first = frame["row_hash"].is_first_distinct()
    rows_duplicate = int((~first).sum())
    step("parsing and validating")
    notes: list[str] = []
    checked = parse_and_validate(frame.filter(first), day_first=day_first, notes=notes)
    if rows_duplicate >= 10 and rows_duplicate > REPEATED_ROWS_SHARE * frame.height:
        notes.append(
            f"{count(rows_duplicate, 'row')} ({rows_duplicate / frame.height:.0%} of the file) "
            "repeat another row in every column read (columns that no field uses, such as a "
            "line number, are not compared) and were counted once, as duplicates. Right when the "
            "export holds the same rows twice; wrong when it writes one row per item scanned "
            "(the same product, price and time on several rows of one invoice): then add such "
            "rows up into one with their total quantity before ingesting"
        )

    # Split with column pruning: each outcome keeps only the columns it needs, so the wide
    # parsed frame is not copied whole (peak memory on 1M rows).
    is_rejected = pl.col("reasons").is_not_null()
    valid_plan = (
        checked.lazy()
        .filter(~is_rejected)
        .select(*(c for c in PURCHASE_COLUMNS if c != "category"), "store", "row_hash")
    )
    cancellations_plan = (
        checked.lazy()
        .filter(
            is_rejected
            & pl.col("reasons").str.contains(CANCELLATION, literal=True)
            & pl.col("customer_id").is_not_null()
            & pl.col("invoice_date").is_not_null()
            & ~pl.col("reasons").str.contains(DATE_OUT_OF_RANGE, literal=True)
            & (pl.col("quantity") < 0).fill_null(False)
        )
        .select(*CANCELLATION_COLUMNS, "row_hash")
    )
    rejected_plan = (
        checked.lazy()
        .filter(is_rejected)
        .with_columns(source_file=pl.lit(source_file))
        .select(REJECTED_COLUMNS)
    )
    valid_frame, cancellation_frame, rejected_frame = pl.collect_all(
        [valid_plan, cancellations_plan, rejected_plan]
    )
    del checked
    products = _products(valid_frame)
    valid_frame = valid_frame.join(  # file order: the store keeps it (first purchases' ties)
        products.select("stock_code", "category"),
        on="stock_code",
        how="left",
        maintain_order="left",
    ).select(*PURCHASE_COLUMNS, "store", "row_hash")
    valid, cancellations, rejected = valid_frame, cancellation_frame, rejected_frame

    report = _report(base, valid, rejected, cancellations, products, rows_duplicate)
    report = replace(
        report,
        warnings=[
            *base.warnings,
            *notes,
            *isolated_end_dates_notes(valid["invoice_date"]),
            *(_no_customer_ids_note(rejected) if valid.height == 0 else []),
        ],
        valid_lines=valid.height,
        bad_date_examples=_bad_date_examples(rejected),
    )
    check_invariant(report)
    return CleanResult(valid, cancellations, rejected, products, report, sha256)


def clean_file(
    path: str | Path,
    column_map: Mapping[str, str] | None = None,
    *,
    on_step: Callable[[str], None] | None = None,
    day_first: bool | None = None,
) -> CleanResult:
    """Read and validate one file, every sheet of a workbook, without touching any database.

    Parameters
    ----------
    path : str or pathlib.Path
        CSV, ``.csv.gz``, ``.xlsx`` or Parquet file (type detected from content).
    column_map : mapping of str to str, optional
        Explicit ``field -> column name`` choices, e.g. ``{"customer_id": "Cust No"}``.
    on_step : callable, optional
        Called with a short description before each stage (progress display).
    day_first : bool, optional
        Force the order of slash dates; ``None`` (default) decides per column.

    Returns
    -------
    CleanResult
        ``purchases``, ``cancellations``, ``rejected`` and ``report``; exact duplicates inside
        the file (across sheets too) are counted once and kept nowhere.

    Raises
    ------
    InputFileError
        When the file cannot be read (empty, binary, wrong type...).
    SchemaError
        When a required column is missing or the mapping names an unknown column.
    """
    if on_step is not None:
        on_step("reading")
    raw = read_raw(path)
    frames: list[pl.DataFrame] = []
    sheet_names: list[str] = []
    skipped: list[tuple[str, int, SchemaError, int]] = []
    sheet_warnings: list[str] = []
    for index, sheet in enumerate(raw.sheets):
        try:
            frames.append(_sheet_frame(raw, index, column_map))
        except SchemaError as exc:
            # only a sheet that is no transaction table (it names at most two of the six
            # required columns: a summary, notes) is skipped; a transaction sheet with a column
            # problem stops the file, as a single sheet does
            named = _transaction_fields(sheet.frame, column_map)
            if len(raw.sheets) == 1 or named * 2 >= len(REQUIRED_FIELDS):
                raise
            skipped.append((str(sheet.name), sheet.frame.height, exc, named))
            continue
        if sheet.name is not None:
            sheet_names.append(sheet.name)
        sheet_warnings.extend(sheet.warnings)
    if not frames:  # no sheet holds transactions: the error of the closest one
        raise max(skipped, key=lambda s: s[3])[2]
    frame = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
    blank = int(frame["_blank"].sum())
    frame = frame.filter(~pl.col("_blank")).drop("_blank")
    if frame.height == 0:
        raise InputFileError(
            f"{raw.path.name} has a header but no data rows ({count(blank, 'blank row')} only)"
        )
    frame, nul_note = _without_nul_characters(frame)
    notes = [*sheet_warnings, *([nul_note] if nul_note else [])]
    if frame["raw_description"].null_count() == frame.height:
        notes.append(
            "no product descriptions were found (no description column, or it is empty): "
            "categories then come from stock codes alone and most products stay "
            "'uncategorised', so the category features carry little. If the file has one, "
            'map it with --column description="<column name>"'
        )
    if blank:
        notes.append(
            f"{count(blank, 'blank row')} {'was' if blank == 1 else 'were'} left out (every cell "
            "empty: nothing to load or reject); row numbers still count them"
        )
    for name, rows, error, _ in skipped:  # other sheets held transactions: say what was left out
        logger.debug("%s (sheet %r): sheet skipped: %s", raw.path.name, name, error)
        notes.append(
            f"sheet {name!r} ({count(rows, 'row')}) was skipped, not read as "
            "transactions: "
            f"{str(error).split('; columns found')[0]}; the rows of "
            f"{', '.join(repr(n) for n in sheet_names)} were read"
        )
    base = IngestReport(
        source_file=raw.path.name,
        sheet=", ".join(sheet_names) if sheet_names else None,
        file_format=raw.file_format,
        encoding=raw.encoding,
        rows_read=frame.height,
        rows_loaded=0,
        rows_rejected=0,
        rows_duplicate=0,
        warnings=notes,
    )
    return clean_frame(
        frame,
        base,
        source_file=raw.path.name,
        sha256=raw.sha256,
        on_step=on_step,
        day_first=day_first,
    )


def _without_nul_characters(frame: pl.DataFrame) -> tuple[pl.DataFrame, str | None]:
    """Remove NUL characters (code point 0) from the text cells; say how many cells held one.

    No database text column accepts NUL (PostgreSQL refuses the whole file), and it never
    carries meaning in a sales export; removing it keeps the row (valid or rejected) storable.
    """
    text = [name for name, dtype in frame.schema.items() if dtype == pl.Utf8]
    if not text:
        return frame, None
    counts = frame.select(
        pl.sum_horizontal(pl.col(text).str.contains("\x00", literal=True).fill_null(False))
    ).to_series()
    cells = int(counts.sum())
    if cells == 0:
        return frame, None
    cleaned = frame.with_columns(pl.col(text).str.replace_all("\x00", "", literal=True))
    return cleaned, (
        f"{cells:,} cells held a NUL character (\\x00), which no database text column accepts; "
        "it was removed from them"
    )


def drop_known(result: CleanResult, known: pl.Series) -> CleanResult:
    """Move rows whose hash is in ``known`` (already stored) to the duplicate outcome.

    Parameters
    ----------
    result : CleanResult
        A result of :func:`clean_file`.
    known : polars.Series
        Row hashes already in the store (only those matching this file's rows matter).

    Returns
    -------
    CleanResult
        The result without those rows, with the report recomputed and checked.
    """
    if known.len() == 0:
        return result
    keep = ~pl.col("row_hash").is_in(known.implode())
    valid = result.valid_rows.filter(keep)
    rejected = result.rejected.filter(keep)
    cancellations = result.cancellation_rows.filter(keep)
    removed = (result.valid_rows.height - valid.height) + (result.rejected.height - rejected.height)
    if removed == 0:
        return result
    products = result.products_table.filter(
        pl.col("stock_code").is_in(valid["stock_code"].implode())
    )
    report = _report(
        result.report,
        valid,
        rejected,
        cancellations,
        products,
        result.report.rows_duplicate + removed,
    )
    check_invariant(report)
    return CleanResult(valid, cancellations, rejected, products, report, result.sha256)


def _repeat_note(repeats: int, result: CleanResult) -> str:
    """Word the warning for new lines that repeat stored sales (``stored_line_matches``)."""
    return (
        f"{repeats:,} of the {result.valid_rows.height:,} new purchase lines repeat sales "
        "already in the store (same invoice, product, customer, date, quantity and price) "
        "with different raw text, e.g. the same sales exported again in another format. They "
        "were loaded, because duplicates are recognised by their raw text; if they are "
        "repeats, take this file out again with clv undo-ingest and its ingest run id (in the "
        "report; later runs that skipped duplicates must be undone first) so those sales are "
        "not counted "
        "twice."
    )


ProgressCallback = Callable[[str, float], None]


def ingest_files(
    paths: Iterable[str | Path],
    engine: sa.Engine,
    column_map: Mapping[str, str] | None = None,
    progress: bool | ProgressCallback = True,
    *,
    day_first: bool | None = None,
) -> list[IngestReport]:
    """Clean and store files, one database transaction per file.

    Rows already stored (same row hash in ``transactions`` or ``rejected_data``; every
    cancellation is also in ``rejected_data``) become duplicates, so ingesting a file twice
    adds nothing the second time. A failure while writing a file rolls its transaction back:
    the store stays as it was before that file.

    Parameters
    ----------
    paths : iterable of str or pathlib.Path
        Files to ingest, in order.
    engine : sqlalchemy.Engine
        The store (see :func:`retail_clv.store.db.get_engine`).
    column_map : mapping of str to str, optional
        Explicit ``field -> column name`` choices applied to every file.
    progress : bool or callable
        ``True`` logs each step; a callable receives ``(message, fraction_done)``.
    day_first : bool, optional
        Force the order of slash dates in every file; ``None`` (default) decides per column.

    Returns
    -------
    list of IngestReport
        One report per file, with ``run_id`` set.

    Raises
    ------
    InputFileError, SchemaError
        For a file that cannot be read; files before it stay stored.
    StoreError
        When the store cannot be written (the file's transaction is rolled back).
    """
    from retail_clv.store.db import database_errors, describe_database_error
    from retail_clv.store.load import (
        bulk_session,
        existing_hashes,
        stored_line_matches,
        write_result,
    )

    path_list = [Path(p) for p in paths]
    reports: list[IngestReport] = []

    def step(message: str, fraction: float) -> None:
        if callable(progress):
            progress(message, fraction)
        elif progress:
            logger.info("%s", message)

    n = max(len(path_list), 1)
    # Rough share of the time each stage takes on a large file (for the progress bar only).
    stage_at = {
        "reading": 0.0,
        "hashing rows, finding exact duplicates": 0.09,
        "parsing and validating": 0.2,
        "checking against the store": 0.32,
        "writing stores, products, customers": 0.33,
        "writing transactions": 0.35,
        "writing cancellations": 0.78,
        "writing rejected rows": 0.79,
        "checking the accounting invariant": 0.96,
    }
    for i, path in enumerate(path_list):

        def on_step(message: str, i: int = i, name: str = path.name) -> None:
            step(f"{name}: {message}", (i + stage_at.get(message, 0.0)) / n)

        result = clean_file(path, column_map, on_step=on_step, day_first=day_first)
        try:
            with bulk_session(engine) as conn, conn.begin():
                hold_off_undo(conn)
                on_step("checking against the store")
                known = existing_hashes(
                    conn, result.valid_rows["row_hash"], result.rejected["row_hash"]
                )
                result = drop_known(result, known)
                repeats = stored_line_matches(conn, result.valid_rows)
                if repeats:
                    result = replace(
                        result,
                        report=replace(
                            result.report,
                            warnings=[*result.report.warnings, _repeat_note(repeats, result)],
                        ),
                    )
                run_id = write_result(conn, result, on_step=on_step)
        except RetailClvError:
            raise
        except database_errors() as exc:
            detail = describe_database_error(exc)
            hint = ""
            if "unique" in detail.lower() or "IntegrityError" in detail:
                hint = (
                    "; another ingest was probably writing the same rows into this store at the "
                    "same time: run this one again once it has finished"
                )
            raise StoreError(
                f"writing {path.name} failed, nothing of it was stored: {detail}{hint}"
            ) from exc
        report = replace(result.report, run_id=run_id)
        logger.debug("%s: %s", path.name, report.invariant_line())  # the CLI prints it
        reports.append(report)
        step(f"stored {path.name}", (i + 1) / n)
    return reports
