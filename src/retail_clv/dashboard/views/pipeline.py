"""Full Pipeline page: upload a raw file, see how it was cleaned, get its predictions.

The file goes to ``POST /pipeline``; the answer (cleaning report, rejected sample and
predictions) is kept in ``st.session_state[RESULT_KEY]`` so reruns (search, chart options,
download) do not upload it again. An upload saved to the store can be taken out again with
*Undo this upload* (``POST /ingest-runs/{run_id}/undo``).
"""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Any, NamedTuple

import streamlit as st

from retail_clv.dashboard import charts, frames
from retail_clv.dashboard.client import ApiClient, DashboardError
from retail_clv.dashboard.common import currency, get_client, show_error
from retail_clv.dashboard.formatting import (
    currency_column_format,
    format_number,
    format_percent,
)
from retail_clv.errors import count

#: The API's messages name its query parameters; this page has switches instead.
_PAGE_WORDING: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"Map each explicitly with the query parameters (?:column=\w+=<column name>(?:, )?)+"
        ),
        "Type the names of the columns that hold them under *Column names in your file*, or "
        "rename them in the file to the names above",
    ),
    (
        re.compile(r"Map it explicitly with the query parameter column=(\w+)=<column name>"),
        r"Type the name of the column that holds it under *Column names in your file* (the "
        r"closest match above, if right), or rename it to '\1' in the file",
    ),
    (re.compile(r"the query parameter column=(\w+)=<column name>"), r"a column named '\1'"),
    (
        re.compile(
            r"send it again with the query parameter sheet=<sheet name> for each sheet to read"
        ),
        "under *Sheets to read* (shown for .xlsx files), keep only",
    ),
    (re.compile(r"with the query parameter sheet="), "under *Sheets to read*"),
    (re.compile(r"the query parameter day_first=true"), "the *Day-first dates* switch"),
    (
        re.compile(r"the query parameter month_first=true"),
        "its dates written as YYYY-MM-DD (this page has no month-first switch)",
    ),
    (
        re.compile(r"undo that ingest run first: POST /ingest-runs/RUN_ID/undo\)"),
        "undo that upload first with its *Undo this upload* button)",
    ),
    (re.compile(r" \(see GET /ingest-runs\)"), ""),
    (
        re.compile(r"\(clv train, or POST /train once it is ingested\)"),
        "(turn on *Save rows to the store*, then *Retrain* on the Models page)",
    ),
    (
        re.compile(r"take this file out again with POST /ingest-runs/RUN_ID/undo \([^)]*\)"),
        "take this upload out again with *Undo this upload* below (uploads saved after it that "
        "skipped rows as duplicates must be undone first)",
    ),
)


def page_wording(message: str) -> str:
    """Reword an API message for this page (switches instead of query parameters)."""
    for pattern, replacement in _PAGE_WORDING:
        message = pattern.sub(replacement, message)
    return message


#: Most bytes the workbook part of an upload may unpack to when its sheets are listed.
_WORKBOOK_PART_LIMIT = 1 << 20
_SHEET_TAG = re.compile(rb"<(?:\w+:)?sheet\b[^>]*>")
_NAME_ATTRIBUTE = re.compile(rb"""\sname\s*=\s*(["'])(.*?)\1""", re.DOTALL)


def workbook_sheets(content: bytes) -> list[str]:
    """Return the sheet names of an ``.xlsx`` upload, in workbook order; empty for other files.

    Only the small workbook part (``xl/workbook.xml``) is read, and at most 1 MiB of it: the
    page offers a choice of sheets without parsing the workbook itself, which the API does with
    its size checks (an ``.xls`` workbook, read by the API in a sandbox, gets no choice here).

    Parameters
    ----------
    content : bytes
        The uploaded file.

    Returns
    -------
    list of str
        Sheet names as the API's ``sheet`` query parameter takes them.
    """
    import html
    import io
    import zipfile

    try:
        with (
            zipfile.ZipFile(io.BytesIO(content)) as archive,
            archive.open("xl/workbook.xml") as part,
        ):
            workbook = part.read(_WORKBOOK_PART_LIMIT + 1)
    except Exception:  # noqa: BLE001  (damaged or hostile: no choice; the API says what is wrong)
        return []
    if len(workbook) > _WORKBOOK_PART_LIMIT:
        return []
    names = [_NAME_ATTRIBUTE.search(tag) for tag in _SHEET_TAG.findall(workbook)]
    return [html.unescape(found[2].decode("utf-8", "replace")) for found in names if found]


def sheet_choice(uploaded: Any) -> list[str] | None:
    """Let the user choose the sheets of a workbook upload with more than one sheet.

    Parameters
    ----------
    uploaded : streamlit UploadedFile or None
        The dropped file.

    Returns
    -------
    list of str or None
        The sheets chosen, or None when every sheet is read (the API's default: the sheets
        that hold transactions), the file has fewer than two sheets, or is no ``.xlsx``.
    """
    if uploaded is None:
        return None
    listed: dict[str, list[str]] = st.session_state.setdefault(SHEET_NAMES_KEY, {})
    if uploaded.file_id not in listed:  # once per file, not on every rerun of the page
        listed[uploaded.file_id] = workbook_sheets(uploaded.getvalue())
    names = listed[uploaded.file_id]
    if len(names) < 2:
        return None
    chosen = st.multiselect(
        "Sheets to read",
        names,
        default=names,
        key=f"pipeline_sheets_{uploaded.file_id}",
        help="All: every sheet that holds transactions is read (summary or notes sheets are "
        "skipped by themselves). Leave out a sheet that holds something else, such as returns "
        "or stock.",
    )
    return None if len(chosen) == len(names) else list(chosen)


RESULT_KEY = "pipeline_result"
ERROR_KEY = "pipeline_error"
UPLOAD_KEY = "pipeline_upload"
SOURCE_KEY = "pipeline_source"
#: The sheets of each workbook dropped in this session: file id -> names (:func:`sheet_choice`).
SHEET_NAMES_KEY = "pipeline_sheet_names"
#: Files whose rows this session saved to the store: file id -> :class:`Saved`.
SAVED_KEY = "pipeline_saved"
#: Whether the result on the page was scored without saving because its file was saved before.
NOT_SAVED_AGAIN_KEY = "pipeline_not_saved_again"
#: The ingest runs each file saved in this session: file id -> run ids.
SAVED_RUNS_KEY = "pipeline_saved_runs"
#: What *Undo this upload* did: ingest run id -> the API's answer, or the error it raised.
UNDO_KEY = "pipeline_undo"


#: The fields an export must or may provide, as the API names them, with what they hold.
MAPPED_FIELDS: tuple[tuple[str, str], ...] = (
    ("invoice", "order or invoice number"),
    ("stock_code", "product code (SKU)"),
    ("description", "product name"),
    ("quantity", "quantity"),
    ("invoice_date", "date and time"),
    ("price", "unit price"),
    ("customer_id", "customer id or e-mail"),
    ("country", "country"),
    ("store", "shop or store"),
)


def column_mapping() -> dict[str, str]:
    """Let the user name the columns of an export the API does not recognise by itself.

    Returns
    -------
    dict of str to str
        Field -> column name, for the fields whose box is filled in.
    """
    with st.expander("Column names in your file (only if the API asks for them)"):
        st.caption(
            "Leave a box empty to let the API find the column (it knows the Online Retail II "
            "names and common variants). Type a name to say which column holds that field."
        )
        boxes = st.columns(3)
        typed = {
            field: boxes[i % 3]
            .text_input(f"{field}: {label}", key=f"pipeline_column_{field}")
            .strip()
            for i, (field, label) in enumerate(MAPPED_FIELDS)
        }
    return {field: name for field, name in typed.items() if name}


def run_upload(
    client: ApiClient,
    filename: str,
    content: bytes,
    store: bool,
    day_first: bool = False,
    columns: dict[str, str] | None = None,
    sheets: list[str] | None = None,
) -> None:
    """Send one file to ``POST /pipeline`` and keep the answer (or the error) in the session.

    Parameters
    ----------
    client : ApiClient
        The API client.
    filename : str
        Name of the uploaded file.
    content : bytes
        The file's bytes.
    store : bool
        Also load the cleaned rows into the store.
    day_first : bool, default False
        Read slash dates day-first.
    columns : dict of str to str, optional
        Field -> column name of the file, typed by the user.
    sheets : list of str, optional
        The workbook sheets to read; None: every sheet that holds transactions.
    """
    st.session_state.pop(RESULT_KEY, None)
    st.session_state.pop(ERROR_KEY, None)
    size = format_number(len(content) / 1024, 1)
    with st.status(f"Cleaning and scoring **{filename}** ({size} KB)…", expanded=True) as status:
        st.write(
            "Uploading to the API, which validates every row, removes duplicates and "
            "scores each customer with the active models…"
        )
        try:
            result = client.run_pipeline(
                filename,
                content,
                store=store,
                day_first=day_first,
                columns=columns,
                sheets=sheets or (),
            )
        except DashboardError as exc:
            exc.message = page_wording(exc.message)
            st.session_state[ERROR_KEY] = exc
            status.update(label=f"Could not process {filename}", state="error", expanded=False)
            return
        st.session_state[RESULT_KEY] = result
        st.session_state[SOURCE_KEY] = filename
        n = len(result.get("predictions") or [])
        status.update(
            label=f"Done: {filename} cleaned, {count(n, 'customer')} scored",
            state="complete",
            expanded=False,
        )


def undo_upload(client: ApiClient, run_id: int) -> None:
    """Take the rows of one saved upload out of the store again and keep the outcome.

    The API's answer (or its error) goes to ``st.session_state[UNDO_KEY]``. Once every run a
    file saved is undone, the file counts as not saved any more: saving it again (a switch
    changed, or dropped again) stores its rows anew instead of scoring them only.

    Parameters
    ----------
    client : ApiClient
        The API client.
    run_id : int
        The upload's ingest run id (``run_id`` of its ingest report).
    """
    outcomes: dict[int, Any] = st.session_state.setdefault(UNDO_KEY, {})
    try:
        outcomes[run_id] = client.undo_ingest_run(run_id)
    except DashboardError as exc:
        exc.message = page_wording(exc.message)
        outcomes[run_id] = exc
        return
    saved: dict[str, Saved] = st.session_state.setdefault(SAVED_KEY, {})
    saved_runs: dict[str, list[int]] = st.session_state.setdefault(SAVED_RUNS_KEY, {})
    for file_id, runs in saved_runs.items():
        if run_id in runs and all(isinstance(outcomes.get(r), dict) for r in runs):
            saved.pop(file_id, None)


def show_undo(client: ApiClient, run_id: int, place: str = "pipeline") -> None:
    """Offer *Undo this upload* for one saved ingest run, or say what the undo did.

    Parameters
    ----------
    client : ApiClient
        The API client.
    run_id : int
        The upload's ingest run id.
    place : str, default "pipeline"
        Prefix of the button's key, so the same run can be offered in two places of the page
        (under the upload that saved it, and in the list of the store's ingest runs).
    """
    outcome = st.session_state.get(UNDO_KEY, {}).get(run_id)
    if isinstance(outcome, dict):
        deleted: dict[str, int] = outcome.get("deleted") or {}
        removed = ", ".join(
            [
                count(int(deleted.get("transactions") or 0), "purchase line"),
                count(int(deleted.get("cancellations") or 0), "cancellation"),
                count(int(deleted.get("rejected_data") or 0), "rejected row"),
            ]
        )
        customers = count(int(deleted.get("customers") or 0), "customer")
        again = (
            " With *Save rows to the store* on, changing a switch or dropping the file again "
            "saves its rows again."
            if place == "pipeline"  # under the upload on this page, not a run of the list
            else ""
        )
        st.success(
            f"Upload undone: ingest run {run_id} was taken out of the store ({removed} removed, "
            f"and {customers} left without any purchase or cancellation). The stored "
            "predictions and the models still reflect these rows: *Retrain* on the Models page "
            f"to update them.{again}",
            icon=":material/undo:",
        )
        return
    if isinstance(outcome, DashboardError):
        show_error(outcome)
    if st.button(
        "Undo this upload",
        icon=":material/undo:",
        key=f"{place}_undo_{run_id}",
        help=f"Take the rows this upload saved (ingest run {run_id}) out of the store again.",
    ):
        undo_upload(client, run_id)
        st.rerun()


def show_ingest_runs(client: ApiClient) -> None:
    """List the store's ingest runs on demand and offer to undo any of them.

    Uploads saved in an earlier session, and files stored with ``clv ingest``, get their
    *Undo* here; the API refuses (409) a run that later runs skipped rows of as duplicates,
    with what to undo first. The list is fetched only while its switch is on.

    Parameters
    ----------
    client : ApiClient
        The API client.
    """
    if not st.toggle(
        "Show the store's ingest runs",
        value=False,
        key="pipeline_show_runs",
        help="Every file stored so far (from this page, POST /ingest or clv ingest), newest "
        "first, with *Undo* to take one out of the store again.",
    ):
        return
    try:
        runs = client.list_ingest_runs()
    except DashboardError as exc:
        show_error(exc)
        return
    if not runs:
        st.info("The store holds no ingest run yet.", icon=":material/database:")
        return
    st.dataframe(
        frames.ingest_runs_frame(runs),
        hide_index=True,
        width="stretch",
        column_config={
            label: st.column_config.NumberColumn(format="localized")
            for label in ("Rows read", "Loaded", "Rejected", "Duplicates")
        },
    )
    outcomes: dict[int, Any] = st.session_state.get(UNDO_KEY, {})
    undoable = [int(run["run_id"]) for run in runs if run.get("status") == "succeeded"]
    # runs this session undid stay selectable, so their outcome stays on the page
    choices = sorted(
        {*undoable, *(r for r, o in outcomes.items() if isinstance(o, dict))}, reverse=True
    )
    if not choices:
        st.caption("Every ingest run of the store is undone or still running.")
        return
    files = {int(run["run_id"]): str(run.get("source_file")) for run in runs}
    choice = st.selectbox(
        "Ingest run to take out of the store",
        choices,
        key="pipeline_runs_choice",
        format_func=lambda run_id: f"Run {run_id} · {files.get(run_id, '?')}",
    )
    show_undo(client, int(choice), place="runs")


def show_stored(
    stored: list[dict[str, Any]] | None, shown: list[str], client: ApiClient | None = None
) -> None:
    """Say what *Save rows to the store* saved: rows, ingest run id and the store's warnings.

    Parameters
    ----------
    stored : list of dict or None
        ``stored`` of the ``POST /pipeline`` answer (ingest reports), None when not saved.
    shown : list of str
        Warnings the cleaning report already showed (not repeated).
    client : ApiClient, optional
        The API client; with it, each saved upload gets *Undo this upload*.
    """
    for item in stored or []:
        run = item.get("run_id")
        st.success(
            f"Saved to the store: {format_number(item.get('rows_loaded'))} purchase lines "
            f"loaded, {format_number(item.get('rows_duplicate'))} duplicates skipped (rows "
            "repeated within the file or already in the store)"
            + (f"; ingest run {run}." if run is not None else "."),
            icon=":material/database:",
        )
        for warning in item.get("warnings") or []:
            if warning not in shown:  # e.g. sales the store already holds in another format
                st.warning(f"Store: {page_wording(warning)}", icon=":material/warning:")
        if client is not None and run is not None:
            show_undo(client, int(run))


def show_report(result: dict[str, Any], client: ApiClient | None = None) -> None:
    """Show the cleaning report: counts, rejection reasons and a sample of rejected rows.

    Parameters
    ----------
    result : dict
        The ``POST /pipeline`` answer.
    client : ApiClient, optional
        The API client, for *Undo this upload* of saved rows.
    """
    report: dict[str, Any] = result.get("report") or {}
    st.subheader("Cleaning report")
    read = int(report.get("rows_read") or 0)

    def share(key: str) -> str:
        return f"{format_percent(report.get(key, 0) / read)} of rows read" if read else ""

    cols = st.columns(5)
    cols[0].metric("Rows read", format_number(read))
    cols[1].metric(
        "Rows loaded", format_number(report.get("rows_loaded")), help=share("rows_loaded")
    )
    cols[2].metric(
        "Rows rejected", format_number(report.get("rows_rejected")), help=share("rows_rejected")
    )
    cols[3].metric(
        "Duplicates", format_number(report.get("rows_duplicate")), help=share("rows_duplicate")
    )
    cols[4].metric("Customers", format_number(report.get("customers")))
    details = [f"format **{report.get('file_format', '?')}**"]
    if report.get("encoding"):  # CSV only: Excel and Parquet text is always Unicode
        details.append(f"encoding **{report['encoding']}**")
    if report.get("date_min") and report.get("date_max"):
        first, last = str(report["date_min"])[:10], str(report["date_max"])[:10]
        details.append(f"invoices from **{first}** to **{last}**")
    if report.get("products") is not None:
        details.append(f"**{format_number(report['products'])}** products")
    st.caption(" · ".join(details))
    for warning in report.get("warnings") or []:
        st.warning(f"Check: {page_wording(warning)}", icon=":material/warning:")
    show_stored(result.get("stored"), list(report.get("warnings") or []), client)
    if read and report.get("valid_lines") == 0:
        examples = ", ".join(f"`{v}`" for v in report.get("bad_date_examples") or [])
        st.error(
            "No valid purchase line in this file: nothing can be scored."
            + (f" Dates that could not be read: {examples}." if examples else ""),
            icon=":material/error:",
        )

    reasons = frames.reason_frame(report.get("reason_counts") or {})
    left, right = st.columns([2, 3])
    with left:
        if reasons.empty:
            st.success("No row was rejected.", icon=":material/check_circle:")
        else:
            st.altair_chart(charts.rejection_reasons_chart(reasons), width="stretch")
            st.caption("A row can be rejected for several reasons at once.")
    with right:
        sample = frames.rejected_sample_frame(result.get("rejected_sample") or [])
        if not sample.empty:
            st.markdown("**Sample of rejected rows** (raw values as uploaded)")
            st.dataframe(sample, hide_index=True, width="stretch", height=260)


def show_predictions(result: dict[str, Any], symbol: str, source: str) -> None:
    """Show the searchable predictions table, the download button and the charts.

    Parameters
    ----------
    result : dict
        The ``POST /pipeline`` answer.
    symbol : str
        Currency symbol.
    source : str
        Name of the uploaded file (used for the download's name).
    """
    table = frames.predictions_frame(result.get("predictions") or [])
    horizon = int(result.get("horizon_days") or 30)
    st.subheader(f"Predictions for the next {horizon} days")
    st.caption(
        f"Features as of **{result.get('as_of') or '?'}** · model run "
        f"`{result.get('model_run_id', '?')}` · R² on the run's held-out window of its own "
        "training data (not measured on this file): Model 1 "
        f"**{format_number(result.get('r2_model1'), 3)}**, Model 2 "
        f"**{format_number(result.get('r2_model2'), 3)}**"
    )
    if table.empty:
        st.info(
            "No customer could be scored: no valid purchase with a customer id was left "
            "after cleaning.",
            icon=":material/info:",
        )
        return

    search_col, download_col = st.columns([3, 1])
    query = search_col.text_input(
        "Search customer id", key="pipeline_search", placeholder="e.g. 13085"
    )
    download_col.download_button(
        "Download predictions CSV",
        icon=":material/download:",
        data=frames.predictions_csv(table, horizon),
        file_name=f"predictions_{PurePath(source).name.split('.')[0] or 'upload'}.csv",
        mime="text/csv",
        width="stretch",
        help="One row per customer: " + ", ".join(frames.csv_columns(horizon)),
    )
    shown = frames.filter_predictions(table, query)
    money_format = currency_column_format(symbol)
    st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        height=320,
        column_config={
            "customer_id": st.column_config.TextColumn("Customer"),
            "country": st.column_config.TextColumn("Country"),
            "predicted_spend_30d_model1": st.column_config.NumberColumn(
                "Spend, Model 1", format=money_format
            ),
            "predicted_spend_30d_model2": st.column_config.NumberColumn(
                "Spend, Model 2", format=money_format
            ),
            "predicted_products_30d": st.column_config.NumberColumn("Products", format="%.1f"),
            "r2_model1": st.column_config.NumberColumn("R² Model 1", format="%.3f"),
            "r2_model2": st.column_config.NumberColumn("R² Model 2", format="%.3f"),
        },
    )
    st.caption(
        f"Showing {format_number(len(shown))} of {count(len(table), 'customer')}; "
        "click a column header to sort."
    )

    st.subheader("Charts")
    label = st.radio(
        "Model used in the charts", list(charts.MODEL_COLUMNS), horizontal=True, key="chart_model"
    )
    column = charts.MODEL_COLUMNS[str(label)]
    top_left, top_right = st.columns(2)
    top_left.altair_chart(charts.spend_distribution_chart(table, column, symbol), width="stretch")
    top_right.altair_chart(
        charts.top_customers_chart(table, column, currency=symbol), width="stretch"
    )
    bottom_left, bottom_right = st.columns(2)
    bottom_left.altair_chart(charts.model_scatter_chart(table, symbol), width="stretch")
    bottom_right.altair_chart(
        charts.country_spend_chart(table, column, currency=symbol), width="stretch"
    )


def render() -> None:
    """Draw the Full Pipeline page."""
    client = get_client()
    symbol = currency()
    st.title("Full Pipeline")
    st.markdown(
        "Upload a raw transaction export (CSV or Excel, UCI Online Retail II layout). The API "
        "cleans it, explains every rejected row and predicts each customer's spend and number "
        "of products over the model's horizon (30 days by default) with the active models."
    )
    upload_col, option_col = st.columns([3, 1])
    uploaded = upload_col.file_uploader(
        "Raw transactions file", type=["csv", "gz", "xlsx", "xls", "parquet"], key="pipeline_file"
    )
    store = option_col.toggle(
        "Save rows to the store",
        value=False,
        help="Off: the file is only scored. On: its clean rows are added to the database "
        "used for training and the Customers page.",
    )
    day_first = option_col.toggle(
        "Day-first dates",
        value=False,
        help="On: slash and dashed dates are read day-first (01/03/2010 or 01-03-2010 = "
        "1 March). Off: decided per file (month-first unless a date such as 25/12/2010 proves "
        "day-first).",
    )
    with upload_col:
        sheets = sheet_choice(uploaded)
    columns = column_mapping()
    runs_slot = st.container()  # filled last, so that a file this run saves is listed
    show_upload(client, symbol, uploaded, store, day_first, columns, sheets)
    with runs_slot:
        show_ingest_runs(client)


class Saved(NamedTuple):
    """What this session saved of one file: its day-first switch, and its sheets (None: all)."""

    day_first: bool
    sheets: frozenset[str] | None

    def covers(self, chosen: tuple[str, ...] | None) -> bool:
        """Whether every sheet ``chosen`` (None: every sheet) was saved before.

        Adding a sheet saves the file again: the added sheet's rows are new to the store, the
        others are skipped as duplicates. The same sheets in another order, or fewer of them,
        are scored without saving.
        """
        if self.sheets is None:
            return True
        return chosen is not None and set(chosen) <= self.sheets

    def adding(self, chosen: tuple[str, ...] | None, day_first: bool) -> Saved:
        """Return the record once ``chosen`` has been saved too, with this day-first switch."""
        if chosen is None or self.sheets is None:
            return Saved(day_first, None)
        return Saved(day_first, self.sheets | set(chosen))


def show_upload(
    client: ApiClient,
    symbol: str,
    uploaded: Any,
    store: bool,
    day_first: bool,
    columns: dict[str, str],
    sheets: list[str] | None = None,
) -> None:
    """Send the dropped file (once per file and switches) and show what came back.

    Parameters
    ----------
    client : ApiClient
        The API client.
    symbol : str
        Currency symbol.
    uploaded : streamlit UploadedFile or None
        The dropped file.
    store : bool
        *Save rows to the store*.
    day_first : bool
        *Day-first dates*.
    columns : dict of str to str
        Column names typed under *Column names in your file*.
    sheets : list of str, optional
        The sheets chosen under *Sheets to read*; None: every sheet.
    """
    if uploaded is None:
        for key in (RESULT_KEY, ERROR_KEY, UPLOAD_KEY):
            st.session_state.pop(key, None)
        st.info(
            "Drop a file above to start. Nothing is stored unless *Save rows to the store* is on.",
            icon=":material/upload_file:",
        )
        return
    # A file whose rows were saved once is not saved again when a switch changes: the store
    # would count every row as a duplicate (duplicates are decided on the raw text).
    saved: dict[str, Saved] = st.session_state.setdefault(SAVED_KEY, {})
    saved_runs: dict[str, list[int]] = st.session_state.setdefault(SAVED_RUNS_KEY, {})
    if sheets == []:
        st.info("Choose at least one sheet to read.", icon=":material/table:")
        return
    chosen = None if sheets is None else tuple(sheets)
    upload_id = (uploaded.file_id, store, day_first, tuple(sorted(columns.items())), chosen)
    key = uploaded.file_id
    if st.session_state.get(UPLOAD_KEY) != upload_id:
        st.session_state[UPLOAD_KEY] = upload_id
        already_saved = store and key in saved and saved[key].covers(chosen)
        st.session_state[NOT_SAVED_AGAIN_KEY] = already_saved
        save = store and not already_saved
        run_upload(client, uploaded.name, uploaded.getvalue(), save, day_first, columns, sheets)
        if save and RESULT_KEY in st.session_state:
            saved[key] = saved.get(key, Saved(day_first, frozenset())).adding(chosen, day_first)
            runs = [
                int(item["run_id"])
                for item in st.session_state[RESULT_KEY].get("stored") or []
                if item.get("run_id") is not None
            ]
            saved_runs.setdefault(key, []).extend(runs)
    if st.session_state.get(NOT_SAVED_AGAIN_KEY):  # the result shown was scored, not saved
        if key in saved:  # else undone since: show_undo says so
            read = "day-first" if saved[key].day_first else "in the order decided for the file"
            st.info(
                f"The rows of {uploaded.name} were already saved to the store in this session "
                f"(slash dates read {read}), so this result was scored without saving them "
                "again. To store them read another way, undo that upload with *Undo this "
                "upload* below, then change a switch or drop the file here again.",
                icon=":material/database:",
            )
        for run in saved_runs.get(key, []):
            show_undo(client, run)

    error = st.session_state.get(ERROR_KEY)
    if isinstance(error, DashboardError):
        show_error(error)
        if st.button("Try again", icon=":material/replay:", key="pipeline_retry"):
            st.session_state.pop(UPLOAD_KEY, None)
            st.rerun()
        return
    result = st.session_state.get(RESULT_KEY)
    if result is None:
        return
    show_report(result, client)
    st.divider()
    show_predictions(result, symbol, str(st.session_state.get(SOURCE_KEY, uploaded.name)))


if __name__ == "__main__":
    render()
