"""Models page: the active run's metrics next to the baselines, its charts, and retraining."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any, Literal, cast

import streamlit as st

from retail_clv.dashboard import charts, frames
from retail_clv.dashboard.client import ApiClient, DashboardError
from retail_clv.dashboard.common import currency, get_client, show_error
from retail_clv.dashboard.formatting import currency_column_format, format_number

JOB_KEY = "train_job_id"
FLASH_KEY = "train_flash"
#: Seconds between two ``GET /jobs/{id}`` polls.
POLL_SECONDS = 1.0
#: Give up watching (not the job itself) after this many seconds.
POLL_LIMIT_SECONDS = 3600.0


def show_run(model: dict[str, Any], symbol: str) -> None:
    """Show the active run: metrics table, calibration, gain curve and feature importance.

    Parameters
    ----------
    model : dict
        ``GET /models/active`` answer (the run's metadata).
    symbol : str
        Currency symbol.
    """
    metrics: dict[str, Any] = model.get("metrics") or {}
    st.subheader(f"Active run `{model.get('run_id', '?')}`")
    st.caption(
        f"Trained {str(model.get('trained_at', '?'))[:19]} · as of {model.get('as_of', '?')} · "
        f"horizon {model.get('horizon_days', '?')} days · evaluated on "
        f"{format_number(metrics.get('n_customers'))} "
        f"customer{'' if metrics.get('n_customers') == 1 else 's'} from cutoff "
        f"{metrics.get('cutoff', '?')}"
    )
    for warning in metrics.get("warnings") or []:
        st.warning(str(warning), icon=":material/warning:")
    horizon = model.get("horizon_days", 30)
    table = frames.metrics_frame(metrics)
    if table.empty:
        st.info(
            f"This run has no holdout metrics (the data did not cover the {horizon} days after "
            "its as-of date).",
            icon=":material/info:",
        )
    else:
        money_format = currency_column_format(symbol)
        st.dataframe(
            table,
            hide_index=True,
            width="stretch",
            column_config={
                "R²": st.column_config.NumberColumn(format="%.3f"),
                "MAE": st.column_config.NumberColumn(format=money_format),
                "RMSE": st.column_config.NumberColumn(format=money_format),
                "Gini": st.column_config.NumberColumn(format="%.3f"),
                "Top-10% capture": st.column_config.NumberColumn(format="percent"),
                "Spearman": st.column_config.NumberColumn(format="%.3f"),
            },
        )
        st.caption(
            f"Holdout: the {horizon} days after the cutoff. Gini and top-10% capture measure "
            f"ranking (share of the next {horizon} days' spend from the 10% of customers ranked "
            "highest). None: the metric is undefined for that model (e.g. a constant "
            "prediction)."
        )
        gaps = frames.gaps_frame(metrics)
        if not gaps.empty:
            st.dataframe(
                gaps,
                hide_index=True,
                width="stretch",
                column_config={
                    "R² difference": st.column_config.NumberColumn(format="%+.3f"),
                    "Gini difference": st.column_config.NumberColumn(format="%+.3f"),
                },
            )
            st.caption(
                "How sure is each comparison? Model minus baseline, with the 90% interval "
                "when the holdout's customers are resampled (paired bootstrap). An interval "
                "that contains 0 means the data cannot tell the two apart; a few large buyers "
                "usually dominate R², so its intervals are wide."
            )
    products = (metrics.get("models") or {}).get("products")
    if isinstance(products, dict):

        def scores(values: dict[str, Any]) -> str:
            return (
                f"MAE {format_number(values.get('mae'), 3)} · Spearman "
                f"{format_number(values.get('spearman'), 3)} · R² "
                f"{format_number(values.get('r2'), 3)}"
            )

        baselines = metrics.get("products_baselines") or {}
        beside = "".join(
            f"; {name.replace('_', ' ')}: {scores(values)}"
            for name, values in baselines.items()
            if isinstance(values, dict)
        )
        st.caption(
            f"Products model: {scores(products)}" + (f" (baselines{beside})" if beside else "")
        )

    calibration = frames.calibration_frame(metrics)
    if not calibration.empty:
        st.altair_chart(charts.calibration_chart(calibration, symbol), width="stretch")
    left, right = st.columns(2)
    gain = frames.gain_frame(metrics)
    if not gain.empty:
        left.altair_chart(charts.gain_curve_chart(gain), width="stretch")
    importance = frames.importance_frame(model.get("feature_importance") or [])
    if not importance.empty:
        right.altair_chart(charts.feature_importance_chart(importance), width="stretch")


def watch_job(client: ApiClient, job_id: str) -> None:
    """Poll ``GET /jobs/{job_id}`` with a progress bar until the job ends.

    On success the page reruns to show the new run; the outcome is kept as a flash
    message in the session.

    Parameters
    ----------
    client : ApiClient
        The API client.
    job_id : str
        The training job's id.
    """
    bar = st.progress(0.0, text="Training queued…")
    started = time.monotonic()
    while True:
        try:
            job = client.job(job_id)
        except DashboardError as exc:
            st.session_state.pop(JOB_KEY, None)
            show_error(exc)
            return
        progress = min(max(float(job.get("progress") or 0.0), 0.0), 1.0)
        state = job.get("state", "queued")
        bar.progress(progress, text=f"Training {state}: {job.get('message') or ''}".strip())
        if state == "succeeded":
            st.session_state.pop(JOB_KEY, None)
            result = job.get("result")
            run_id = result.get("run_id") if isinstance(result, dict) else None
            changed = isinstance(result, dict) and result.get("store_changed") is True
            st.session_state[FLASH_KEY] = (
                "success",
                (
                    f"Training finished: run `{run_id}` is now active."
                    if run_id
                    else "Training finished: the new run is now active."
                )
                + (
                    " The store changed while it trained: every customer now in the store was "
                    "scored, by a model trained on the store as it was when training started. "
                    "Retrain to learn from the new rows too."
                    if changed
                    else ""
                )
                + "".join(
                    f" Note: {note}."
                    for note in (result.get("warnings") if isinstance(result, dict) else None) or []
                ),
            )
            st.rerun()
        if state == "failed":
            st.session_state.pop(JOB_KEY, None)
            st.session_state[FLASH_KEY] = (
                "error",
                f"Training failed: {job.get('error') or job.get('message') or 'unknown error'}. "
                "See the terminal running `clv serve` for details.",
            )
            st.rerun()
        if time.monotonic() - started > POLL_LIMIT_SECONDS:
            st.warning("Training is still running; reload this page to keep watching.")
            return
        time.sleep(POLL_SECONDS)


def show_retrain(client: ApiClient) -> None:
    """Show the Retrain controls and watch a running training job.

    Parameters
    ----------
    client : ApiClient
        The API client.
    """
    st.subheader("Retrain")
    flash = st.session_state.pop(FLASH_KEY, None)
    if flash is not None:
        kind, text = flash
        (st.success if kind == "success" else st.error)(text)
    left, right = st.columns([1, 3])
    budget = left.selectbox(
        "Search budget",
        ["quick", "default"],
        key="train_budget",
        help="quick: the default hyper-parameters, no search (about a minute on Online Retail "
        "II); default: a random search over time-aware folds (up to 10 minutes there). Both "
        "take longer on bigger shops: time grows with customers × months of history.",
    )
    cap = left.number_input(
        "Training cutoffs (newest)",
        min_value=1,
        value=None,
        step=1,
        key="train_max_cutoffs",
        placeholder="all history",
        help="Train on the newest N cutoffs (28 days apart) only, to bound time and memory on "
        "a big shop; empty: the server's CLV_MAX_TRAIN_CUTOFFS, unset there: all history, "
        "which validated best. Keep 13 or more (a year of windows at 30 days).",
    )
    as_of = left.date_input(
        "As of",
        value=None,
        # any date ingestion accepts (Streamlit's default range is the last ten years only)
        min_value=dt.date(1970, 1, 1),
        max_value=dt.date.today() + dt.timedelta(days=2),
        key="train_as_of",
        help="Train on the windows that end by this date and hold out the one after it; empty: "
        "the last purchase date minus the horizon, so the newest window is held out. Set it "
        "when training refuses the default date (a mistyped last purchase date).",
    )
    right.markdown(
        "Retrain both spend models and the products model on the data in the store. "
        "The API trains in the background; the new run becomes active when it succeeds."
    )
    if left.button(
        "Retrain", icon=":material/refresh:", type="primary", disabled=JOB_KEY in st.session_state
    ):
        try:
            st.session_state[JOB_KEY] = client.start_training(
                budget=cast(Literal["quick", "default"], budget),
                max_train_cutoffs=None if cap is None else int(cap),
                as_of=as_of if isinstance(as_of, dt.date) else None,
            )
        except DashboardError as exc:
            show_error(exc)
            return
    job_id = st.session_state.get(JOB_KEY)
    if job_id:
        watch_job(client, str(job_id))


def render() -> None:
    """Draw the Models page."""
    client = get_client()
    symbol = currency()
    st.title("Models")
    try:
        model = client.active_model()
    except DashboardError as exc:
        show_error(exc)
    else:
        show_run(model, symbol)
        with st.expander("All stored runs"):
            try:
                runs = client.list_models()
            except DashboardError as exc:
                show_error(exc)
            else:
                st.dataframe(runs, hide_index=True, width="stretch")
    st.divider()
    show_retrain(client)


if __name__ == "__main__":
    render()
