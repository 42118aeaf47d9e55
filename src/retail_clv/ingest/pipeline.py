"""Ingestion pipeline: read -> hash -> deduplicate -> validate -> split -> (store).

:func:`clean_file` is pure (no database): it reads one file (every sheet of a workbook),
drops exact duplicates inside the file, applies the rules and returns the valid purchase
lines, the cancellations, the rejected rows with their raw values, and an
:class:`IngestReport`. :func:`ingest_files` first checks every file (:func:`check_files`:
readable, required columns found, from the first rows where the format allows), so that a bad
file stops the ingest before anything is stored; it then drops rows already stored (same row
hash) and writes each file in one database transaction.

Every row read ends in exactly one outcome: loaded, rejected (with reason codes) or
duplicate; :func:`check_invariant` enforces ``rows_read == loaded + rejected + duplicate``.
"""

from __future__ import annotations

import datetime as dt
import logging
import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
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
from retail_clv.ingest.readers import (
    RawFile,
    check_unique_header,
    read_header,
    read_raw,
    workbook_sheet_names,
)
from retail_clv.ingest.rules import (
    BAD_DATE,
    CANCELLATION,
    DATE_OUT_OF_RANGE,
    ISOLATED_DAYS,
    MISSING_CUSTOMER_ID,
    REASON_CODES,
    isolated_end_dates_notes,
    isolated_ends,
    lone_day_note,
    parse_and_validate,
)
from retail_clv.store.runs import lock_for_ingest

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
    columns : dict of str to str
        Which column of the file fed each field (``{"customer_id": "Customer Email", ...}``),
        for the first sheet read; empty for a frame cleaned without a file.
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
    columns: dict[str, str] = field(default_factory=dict)

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

    def top_reasons(self, n: int = 3) -> str:
        """Return the ``n`` most frequent reason codes with their counts, e.g. ``BAD_DATE 12``."""
        ranked = sorted(self.reason_counts.items(), key=lambda item: (-item[1], item[0]))
        return ", ".join(f"{code} {number:,}" for code, number in ranked[:n])

    def no_purchase_line_message(self) -> str | None:
        """Say that the file gave no valid purchase line, with its top rejection reasons."""
        if self.valid_lines > 0:
            return None
        reasons = self.top_reasons()
        why = f"; top rejection reasons: {reasons}" if reasons else ""
        return (
            f"no valid purchase line was loaded from {self.source_file} "
            f"({self.rows_rejected:,} rows rejected, {self.rows_duplicate:,} duplicates){why}"
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
            "columns": dict(self.columns),
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


def _sheet_where(raw: RawFile, index: int) -> str:
    """Name a sheet of ``raw`` in messages: ``file.xlsx (sheet 'Sales')``, or the file name."""
    name = raw.sheets[index].name
    return f"{raw.path.name}" + (f" (sheet {name!r})" if name else "")


def _sheet_columns(
    frame: pl.DataFrame, column_map: Mapping[str, str] | None, where: str
) -> tuple[int, dict[str, str], pl.DataFrame]:
    """Resolve a sheet's columns, from its first row or from a header found below it.

    Returns the rows above the header (0 when it is the first row), the ``field -> column``
    mapping and the rows below the header under its names (``frame`` itself when it is the first
    row); ``frame`` is not changed.

    Raises
    ------
    SchemaError
        The error of the first row when no row of the first :data:`HEADER_SEARCH_ROWS` is a
        header with every required column.
    """
    try:
        return 0, resolve_columns(frame.columns, column_map, where=where), frame
    except SchemaError:
        found = _header_below(frame, column_map, where)
        if found is None:
            raise
        return found


#: A sheet left out of a workbook: name, rows, the error of its columns, required fields named.
_SkippedSheet = tuple[str, int, SchemaError, int]


def _usable_sheets(
    raw: RawFile, column_map: Mapping[str, str] | None, sheets: Sequence[str] = ()
) -> tuple[dict[int, tuple[int, dict[str, str], pl.DataFrame]], list[_SkippedSheet]]:
    """Choose the sheets of ``raw`` read as transactions, and resolve their columns.

    ``sheets`` (``clv ingest --sheet``) names the sheets of a workbook to read; the others are
    not looked at (each is listed among the skipped ones). Empty: every sheet.

    Only a sheet that is no transaction table (it names at most two of the six required
    columns: a summary, notes) is skipped; a transaction sheet with a column problem stops the
    file, as a single sheet does. Pure: ``raw`` is not changed, so the first rows of a file
    (:func:`~retail_clv.ingest.readers.read_header`) are judged as the whole file is.

    Returns
    -------
    tuple
        ``{sheet index: (rows above the header, mapping, rows)}`` (see :func:`_sheet_columns`)
        and the sheets skipped, as ``(name, rows, error, required fields named)``.

    Raises
    ------
    SchemaError
        For the first transaction sheet whose columns do not resolve, or, when no sheet holds
        transactions, the error of the closest one.
    InputFileError
        When the header found below a title names a column twice.
    """
    usable: dict[int, tuple[int, dict[str, str], pl.DataFrame]] = {}
    skipped: list[_SkippedSheet] = []
    failed: tuple[str, SchemaError] | None = None
    chosen, empty = _chosen_sheets(raw, sheets)
    for index, sheet in enumerate(raw.sheets):
        if index not in chosen:
            continue
        try:
            usable[index] = _sheet_columns(sheet.frame, column_map, _sheet_where(raw, index))
        except SchemaError as exc:
            named = _transaction_fields(sheet.frame, column_map)
            if len(chosen) == 1:
                raise
            if named * 2 >= len(REQUIRED_FIELDS):
                failed = failed or (str(sheet.name), exc)
                continue
            skipped.append((str(sheet.name), sheet.frame.height, exc, named))
    if failed is not None:
        name, error = failed
        if not usable:
            raise error
        # another sheet reads fine: this one may be no sales table at all (returns, stock)
        readable = ", ".join(repr(str(raw.sheets[i].name)) for i in usable)
        options = " ".join(f"--sheet {shlex.quote(str(raw.sheets[i].name))}" for i in usable)
        raise SchemaError(
            f"{error}. Sheet {readable} of {raw.path.name} holds transactions; if sheet "
            f"{name!r} holds something else (returns, stock...), ingest only the sheets of "
            f"transactions (clv ingest {options} FILE), or save them alone as CSV and "
            "ingest that"
        ) from error
    if not usable:  # no sheet holds transactions: the error of the closest one
        best = max(s[3] for s in skipped)
        closest = [s for s in skipped if s[3] == best]
        if len(closest) == 1:
            raise closest[0][2]
        # several sheets come as close: name them all, not only the first one's gap
        raise SchemaError(
            f"no sheet of {raw.path.name} holds transactions: sheets "
            f"{', '.join(repr(s[0]) for s in closest)} each name {best} of the "
            f"{len(REQUIRED_FIELDS)} required columns. The first of them: {closest[0][2]}"
        )
    skipped.extend(
        (str(sheet.name), sheet.frame.height, SchemaError("not chosen with --sheet"), 0)
        for index, sheet in enumerate(raw.sheets)
        if index not in chosen
    )
    skipped.extend(
        (name, 0, SchemaError("it was not read (no data rows, or too wide for a table)"), 0)
        for name in empty
    )
    return usable, skipped


def _chosen_sheets(raw: RawFile, sheets: Sequence[str]) -> tuple[set[int], list[str]]:
    """Return the indices of the sheets to read (those named in ``sheets``, else all).

    Also returns the names in ``sheets`` of sheets the workbook has but left unread because
    they are empty (a choice made from the workbook's sheet list, as the dashboard offers it).

    Raises
    ------
    InputFileError
        When ``sheets`` names a sheet the workbook lacks, names only empty sheets, or the file
        has no sheets (CSV, Parquet).
    """
    if not sheets:
        return set(range(len(raw.sheets))), []
    names = [sheet.name for sheet in raw.sheets]
    if names == [None]:
        raise InputFileError(
            f"{raw.path.name} is a {raw.file_format} file, without sheets: --sheet applies to "
            "Excel workbooks (ingest this file without it, in a command of its own)"
        )
    unread = list(dict.fromkeys(name for name in sheets if name not in names))
    listed = set(workbook_sheet_names(raw.path)) if unread and raw.file_format == "xlsx" else set()
    empty = [name for name in unread if name in listed]
    missing = [name for name in unread if name not in listed]
    if missing or len(empty) == len(set(sheets)):
        raise InputFileError(
            f"no sheet {', '.join(repr(n) for n in missing or empty)} with data rows in "
            f"{raw.path.name}; its sheets with data rows: {', '.join(repr(str(n)) for n in names)}"
            " (sheet names are matched exactly, case included; empty sheets are not read)"
        )
    return {index for index, name in enumerate(names) if name in sheets}, empty


def _sheet_frame(
    raw: RawFile,
    index: int,
    columns: tuple[int, dict[str, str], pl.DataFrame],
) -> pl.DataFrame:
    """Build the ``raw_*`` frame of sheet ``index`` from its resolved ``columns``."""
    sheet = raw.sheets[index]
    where = _sheet_where(raw, index)
    skip, mapping, frame = columns
    if skip:
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


#: A date cell that is empty or holds only spaces.
_BLANK_DATE = pl.col("raw_invoice_date").str.strip_chars().fill_null("") == ""


def _bad_date_examples(rejected: pl.DataFrame, n: int = 2) -> list[str]:
    """Return up to ``n`` distinct raw dates of the rows rejected as ``BAD_DATE``.

    Cells that are empty or hold only spaces are no example (the report counts them apart).
    """
    values = (
        rejected.lazy()
        .filter(pl.col("reasons").str.contains(BAD_DATE, literal=True))
        .filter(~_BLANK_DATE)
        .select(pl.col("raw_invoice_date").unique(maintain_order=True).head(n))
        .collect()
    )
    return [str(v) for v in values["raw_invoice_date"].to_list()]


#: Above this share of exact repeats within a file, the report says what it may mean.
REPEATED_ROWS_SHARE = 0.1


def _blank_dates_note(rejected: pl.DataFrame) -> list[str]:
    """Say how many ``BAD_DATE`` rows have no date at all, and what that pattern often means.

    An export that writes an order's date, customer and country only on its first line leaves
    the other lines blank there: "could not be parsed" would send the user looking for a
    format problem.
    """
    bad = rejected.lazy().filter(pl.col("reasons").str.contains(BAD_DATE, literal=True))
    counts = bad.select(
        n=pl.len(),
        blank=_BLANK_DATE.sum(),
        blank_and_no_id=(
            _BLANK_DATE & pl.col("reasons").str.contains(MISSING_CUSTOMER_ID, literal=True)
        ).sum(),
    ).collect()
    n, blank, no_id = (int(counts[c][0]) for c in ("n", "blank", "blank_and_no_id"))
    if blank == 0 or 2 * blank < n:
        return []
    note = f"{count(blank, 'row')} of the {n:,} rejected as BAD_DATE have no date at all (empty)"
    if 5 * no_id >= 4 * blank:  # mostly without a customer id as well
        note += (
            " and most of them no customer id either: if the export fills the order's date, "
            "customer and country only on each order's first line, fill them down to the "
            "order's other lines (in a spreadsheet) and ingest the file again"
        )
    return [note]


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
    return _clean_frame_owned(
        [frame],
        base,
        source_file=source_file,
        sha256=sha256,
        on_step=on_step,
        day_first=day_first,
    )


def _clean_frame_owned(
    box: list[pl.DataFrame],
    base: IngestReport,
    *,
    source_file: str,
    sha256: str = "",
    on_step: Callable[[str], None] | None = None,
    day_first: bool | None = None,
) -> CleanResult:
    """:func:`clean_frame` on the frame popped from ``box`` (the caller keeps no reference)."""
    frame = box.pop()
    step = on_step or (lambda _message: None)
    step("hashing rows, finding exact duplicates")
    hash_columns = [*RAW_COLUMNS, *(["raw_store"] if "raw_store" in frame.columns else [])]
    frame = frame.with_columns(row_hash=row_hashes(frame, hash_columns))
    first = frame["row_hash"].is_first_distinct()
    rows_duplicate = int((~first).sum())
    rows_read = frame.height
    if rows_duplicate:
        frame = frame.filter(first)  # the unfiltered frame is released here
    del first
    step("parsing and validating")
    notes: list[str] = []
    checked = parse_and_validate(frame, day_first=day_first, notes=notes)
    del frame  # ``checked`` holds its columns
    if rows_duplicate >= 10 and rows_duplicate > REPEATED_ROWS_SHARE * rows_read:
        notes.append(
            f"{count(rows_duplicate, 'row')} ({rows_duplicate / rows_read:.0%} of the file) "
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
    del checked, valid_plan, cancellations_plan, rejected_plan  # the plans hold ``checked``
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
            *_blank_dates_note(rejected),
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
    raw: RawFile | None = None,
    sheets: Sequence[str] = (),
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
    raw : RawFile, optional
        ``path`` as :func:`~retail_clv.ingest.readers.read_raw` already read it (kept by
        :func:`check_files`), so that it is not read again; it is used up (its sheets change).
    sheets : sequence of str, optional
        The sheets of a workbook to read (``clv ingest --sheet``); empty: every sheet.

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
    return _clean_file_owned(
        path, column_map, [raw], on_step=on_step, day_first=day_first, sheets=sheets
    )


def _clean_file_owned(
    path: str | Path,
    column_map: Mapping[str, str] | None,
    raw_box: list[RawFile | None],
    *,
    on_step: Callable[[str], None] | None = None,
    day_first: bool | None = None,
    sheets: Sequence[str] = (),
) -> CleanResult:
    """:func:`clean_file` with the already read file popped from ``raw_box``.

    The caller keeps no reference to it, so the rows as read can be freed once cleaning has
    copied them (``ingest_files`` hands over the workbooks ``check_files`` read).
    """
    raw = raw_box.pop()
    if on_step is not None:
        on_step("reading")
    if raw is None:
        raw = read_raw(path)
    usable, skipped = _usable_sheets(raw, column_map, sheets)
    frames: list[pl.DataFrame] = []
    sheet_names: list[str] = []
    sheet_warnings: list[str] = []
    for index, columns in usable.items():
        frames.append(_sheet_frame(raw, index, columns))
        if raw.sheets[index].name is not None:
            sheet_names.append(str(raw.sheets[index].name))
        sheet_warnings.extend(raw.sheets[index].warnings)
    frame = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
    blank = int(frame["_blank"].sum())
    if blank:  # filtering copies every column (the chunks are re-aligned) even when all pass
        frame = frame.filter(~pl.col("_blank"))
    frame = frame.drop("_blank")
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
        columns=dict(next(iter(usable.values()))[1]),
    )
    source_file, sha256 = raw.path.name, raw.sha256
    box = [frame]
    # the box holds the only reference to the rows: clean_frame's copies can free the earlier ones
    del frame, frames, raw, usable
    return _clean_frame_owned(
        box,
        base,
        source_file=source_file,
        sha256=sha256,
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


class FilesRefusedError(InputFileError):
    """Files of an ingest that cannot be ingested, found before anything was stored.

    Attributes
    ----------
    problems : list of (pathlib.Path, RetailClvError)
        Each refused file with the error its ingest would have stopped on.
    """

    def __init__(self, problems: list[tuple[Path, RetailClvError]], files: int) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {_problem_line(path, error)}" for path, error in problems)
        super().__init__(
            f"nothing was stored: {len(problems)} of {count(files, 'file')} cannot be ingested "
            f"(fix or leave out each one below, then ingest again):\n{lines}"
        )


#: How the synthetic generator names the ground truth it writes beside ``FILE`` (``FILE`` + it).
_TRUTH_SUFFIX = ".truth.parquet"


def _problem_line(path: Path, error: RetailClvError) -> str:
    """Word one refused file for the list of :class:`FilesRefusedError`: path first."""
    return f"{path}: {_truth_hint(path, error) or error}"


def _truth_hint(path: Path, error: RetailClvError) -> str | None:
    """Word the refusal of a generator's ground-truth file (``clv ingest data/demo/*``)."""
    if not (isinstance(error, SchemaError) and path.name.endswith(_TRUTH_SUFFIX)):
        return None
    raw = path.name.removesuffix(_TRUTH_SUFFIX)
    short = str(error).split("; columns found")[0]
    return (
        f"looks like the ground truth that clv generate writes beside {raw} (one row per "
        f"customer), not a transaction log: ingest {raw} without it ({short})"
    )


@dataclass
class CheckedFiles:
    """Files :func:`check_files` found ingestible, and the full reads it had to make of them.

    Attributes
    ----------
    paths : list of pathlib.Path
        The files, in order.
    column_map : dict of str to str
        The mapping they were checked with.
    sheets : tuple of str
        The sheets chosen (``--sheet``) they were checked with; empty: every sheet.
    reads : list of RawFile or None
        Per file, the full read made by the check (a workbook, whose header cannot be read
        alone), for :func:`ingest_files` to use instead of reading it again; ``None`` where only
        the first rows were read.
    """

    paths: list[Path]
    column_map: dict[str, str]
    reads: list[RawFile | None]
    sheets: tuple[str, ...] = ()


def check_file(
    path: str | Path, column_map: Mapping[str, str] | None = None, sheets: Sequence[str] = ()
) -> RawFile | None:
    """Check that a file can be ingested, from its first rows when its format allows.

    Finds what stops an ingest before any row is validated: a missing or unreadable file, an
    unsupported format, a required column missing (``column_map`` applied as the ingest applies
    it), a sheet choice that leaves no transaction table. A CSV (``.csv.gz`` too) is judged
    from its first lines and a Parquet file from its footer
    (:func:`~retail_clv.ingest.readers.read_header`); an Excel workbook, whose header cannot be
    read alone, is read whole. A file the first rows find fault with is read whole too before it
    is refused, so the error is the one the ingest would give, and a file the ingest accepts is
    never refused. Problems found only among the rows (a malformed line far down a CSV, a file
    of blank rows) still stop the ingest of that file itself.

    Returns
    -------
    RawFile or None
        The full read when one was made (pass it to :func:`clean_file` as ``raw``), else None.

    Raises
    ------
    InputFileError, SchemaError
        What :func:`clean_file` would raise on the file's columns or format.
    """
    try:
        sample = read_header(path)
    except InputFileError:
        sample = None  # the full read below words the error
    if sample is not None:
        try:
            _usable_sheets(sample, column_map, sheets)
        except RetailClvError:
            pass  # the first rows of a CSV may mislead (encoding): the full read decides
        else:
            return None
    raw = read_raw(path)
    _usable_sheets(raw, column_map, sheets)
    return raw


def check_files(
    paths: Iterable[str | Path],
    column_map: Mapping[str, str] | None = None,
    *,
    on_file: Callable[[Path], None] | None = None,
    sheets: Sequence[str] = (),
) -> CheckedFiles:
    """Check every file of an ingest (:func:`check_file`) before the store is opened.

    Parameters
    ----------
    paths : iterable of str or pathlib.Path
        The files, in order.
    column_map : mapping of str to str, optional
        Explicit ``field -> column name`` choices applied to every file.
    on_file : callable, optional
        Called with each path before it is checked (progress display).
    sheets : sequence of str, optional
        The workbook sheets to read (``clv ingest --sheet``); empty: every sheet.

    Returns
    -------
    CheckedFiles
        For :func:`ingest_files`.

    Raises
    ------
    InputFileError, SchemaError
        For a single file, the error of :func:`check_file`.
    FilesRefusedError
        For several files, naming every one that cannot be ingested and why.
    """
    path_list = [Path(p) for p in paths]
    mapping = dict(column_map or {})
    reads: list[RawFile | None] = []
    problems: list[tuple[Path, RetailClvError]] = []
    for path in path_list:
        if on_file is not None:
            on_file(path)
        try:
            reads.append(check_file(path, mapping, sheets))
        except (InputFileError, SchemaError) as exc:
            problems.append((path, exc))
            reads.append(None)
    if len(path_list) == 1 and problems:
        [(path, error)] = problems
        hint = _truth_hint(path, error)
        if hint:
            raise type(error)(f"{path.name} {hint}") from error
        raise error
    if problems:
        raise FilesRefusedError(problems, len(path_list))
    return CheckedFiles(path_list, mapping, reads, tuple(sheets))


ProgressCallback = Callable[[str, float], None]


def ingest_files(
    paths: Iterable[str | Path] | CheckedFiles,
    engine: sa.Engine,
    column_map: Mapping[str, str] | None = None,
    progress: bool | ProgressCallback = True,
    *,
    day_first: bool | None = None,
    undo_command: str = "clv undo-ingest {run_id}",
    sheets: Sequence[str] = (),
) -> list[IngestReport]:
    """Check every file, then clean and store them, one database transaction per file.

    No file is stored until every one has passed :func:`check_files` (readable, a supported
    format, the required columns found): a file refused there stores nothing of any file, and
    the engine is not used. Rows already stored (same row hash in ``transactions`` or
    ``rejected_data``; every cancellation is also in ``rejected_data``) become duplicates, so
    ingesting a file twice adds nothing the second time. A failure while writing a file rolls
    its transaction back: the store stays as it was before that file.

    Parameters
    ----------
    paths : iterable of str or pathlib.Path, or CheckedFiles
        Files to ingest, in order; or what :func:`check_files` returned for them with the
        same ``column_map`` (to check them before the store is opened, as ``clv ingest`` does).
    engine : sqlalchemy.Engine
        The store (see :func:`retail_clv.store.db.get_engine`).
    column_map : mapping of str to str, optional
        Explicit ``field -> column name`` choices applied to every file.
    progress : bool or callable
        ``True`` logs each step; a callable receives ``(message, fraction_done)``.
    day_first : bool, optional
        Force the order of slash dates in every file; ``None`` (default) decides per column.
    undo_command : str, default ``"clv undo-ingest {run_id}"``
        How a failure of a later file names the command taking an earlier file's run out again
        (the caller adds its store option, e.g. ``--db``).
    sheets : sequence of str, optional
        The workbook sheets to read (``clv ingest --sheet``); empty: every sheet.

    Returns
    -------
    list of IngestReport
        One report per file, with ``run_id`` set.

    Raises
    ------
    InputFileError, SchemaError, FilesRefusedError
        When :func:`check_files` refuses a file (nothing is stored), or when a file turns out
        unreadable only once read whole (a malformed line far down a CSV): the files before
        that one stay stored.
    StoreError
        When the store cannot be written (the file's transaction is rolled back).
    """
    if isinstance(paths, CheckedFiles):
        checked = paths
        if checked.column_map != dict(column_map or {}):
            raise ValueError("the files were checked with another column mapping")
        if checked.sheets != tuple(sheets):
            raise ValueError("the files were checked with another choice of sheets")
    else:
        checked = check_files(paths, column_map, sheets=sheets)  # before the store is touched
    path_list = checked.paths
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

        box, checked.reads[i] = [checked.reads[i]], None  # held no longer than needed
        try:
            result = _clean_file_owned(
                path, column_map, box, on_step=on_step, day_first=day_first, sheets=sheets
            )
            reports.append(store_result(engine, path, result, on_step=on_step))
        except RetailClvError as exc:
            if not reports:
                raise
            message = f"{exc}. {_stored_before(reports, undo_command)}"
            try:
                wrapped = type(exc)(message)
            except TypeError:  # an error class with other arguments
                wrapped = RetailClvError(message)
            raise wrapped from exc
        step(f"stored {path.name}", (i + 1) / n)
    return reports


def _stored_before(reports: list[IngestReport], undo_command: str) -> str:
    """Name the files an interrupted multi-file ingest had already stored, and how to undo."""
    runs = ", ".join(f"{r.source_file} (ingest run {r.run_id})" for r in reports)
    newest_first = " and ".join(undo_command.format(run_id=r.run_id) for r in reversed(reports))
    return (
        f"Stored before this file, and kept: {runs}; fix this file and ingest it alone, or "
        f"take those out again with {newest_first}"
    )


def _isolated_ends_in_store(
    result: CleanResult, near_stored: Callable[[dt.date], bool], store_holds_purchases: bool
) -> CleanResult:
    """Judge the file's "mistyped date?" notes against the store.

    The cleaning judged the file alone: a first day far from the file's others (one old line
    of an export that overlaps the store, or a line already stored) is no typo when the store
    holds purchases within :data:`ISOLATED_DAYS` of it, and its note is dropped. A file whose
    purchases all fall on one day had no note: it gets :func:`lone_day_note` when the store
    holds purchases, none of them that near.
    """
    days = result.valid_rows["invoice_date"].dt.date().value_counts(name="lines")
    if days.height == 1 and store_holds_purchases:
        day, lines = days.row(0)
        if not near_stored(day):
            warnings = [*result.report.warnings, lone_day_note(day, lines)]
            return replace(result, report=replace(result.report, warnings=warnings))
    ends = isolated_ends(result.valid_rows["invoice_date"])
    if not ends:
        return result
    # two days only: no telling which is wrong, so the note stays unless the store has both
    kept = [
        end
        for end in ends
        if not (near_stored(end.day) and (end.word != "only" or near_stored(end.other)))
    ]
    if len(kept) == len(ends):
        return result
    gone = [end for end in ends if end not in kept]
    dropped = set(isolated_end_dates_notes(result.valid_rows["invoice_date"], ends=gone))
    warnings = [w for w in result.report.warnings if w not in dropped]
    return replace(result, report=replace(result.report, warnings=warnings))


def store_result(
    engine: sa.Engine,
    path: Path,
    result: CleanResult,
    *,
    on_step: Callable[[str], None] | None = None,
) -> IngestReport:
    """Store one cleaned file (a :func:`clean_file` result) in one database transaction.

    Rows already stored (same row hash) become duplicates; a failure while writing rolls the
    transaction back. :func:`ingest_files` calls it for each file; ``POST /pipeline?store=true``
    calls it with the result it has just scored, so the upload is not read and cleaned twice.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The store.
    path : pathlib.Path
        The file ``result`` was cleaned from (named in messages).
    result : CleanResult
        What :func:`clean_file` returned for it (not changed).
    on_step : callable, optional
        Called with a short description before each stage.

    Returns
    -------
    IngestReport
        The file's report, with ``run_id`` set.

    Raises
    ------
    StoreError
        When the store cannot be written (nothing of the file is stored).
    """
    from retail_clv.store.db import database_errors, describe_database_error
    from retail_clv.store.load import (
        bulk_session,
        existing_hashes,
        store_holds_purchases,
        stored_line_matches,
        stored_purchase_near,
        write_result,
    )

    def step(message: str) -> None:
        if on_step is not None:
            on_step(message)

    try:
        with bulk_session(engine) as conn, conn.begin():
            lock_for_ingest(conn)
            step("checking against the store")
            result = _isolated_ends_in_store(
                result,
                lambda day: stored_purchase_near(conn, day, ISOLATED_DAYS),
                store_holds_purchases(conn),
            )
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
    return report
