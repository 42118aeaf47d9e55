"""Customers page: one stored customer's history, both models' predictions and features."""

from __future__ import annotations

from typing import Any

import streamlit as st

from retail_clv.dashboard import charts, frames
from retail_clv.dashboard.client import ApiClient, DashboardError
from retail_clv.dashboard.common import currency, get_client, show_error
from retail_clv.dashboard.formatting import format_currency, format_number

QUERY_KEY = "customer_query"


def show_summary(customer: dict[str, Any], symbol: str) -> None:
    """Show a customer's headline numbers.

    Parameters
    ----------
    customer : dict
        ``GET /customers/{id}`` answer.
    symbol : str
        Currency symbol.
    """
    st.subheader(f"Customer {customer.get('customer_id')} · {customer.get('country') or '?'}")
    cols = st.columns(4)
    cols[0].metric("Total spend", format_currency(customer.get("total_spend"), symbol))
    cols[1].metric("Orders", format_number(customer.get("orders")))
    cols[2].metric("First purchase", str(customer.get("first_seen") or "—")[:10])
    cols[3].metric("Last purchase", str(customer.get("last_purchase") or "—")[:10])


def show_history(customer: dict[str, Any], symbol: str) -> None:
    """Show the customer's monthly spend chart.

    Parameters
    ----------
    customer : dict
        ``GET /customers/{id}`` answer.
    symbol : str
        Currency symbol.
    """
    st.subheader("History")
    history = frames.history_frame(customer.get("history") or [])
    if history.empty:
        st.info("No purchase history stored for this customer.", icon=":material/info:")
    else:
        st.altair_chart(charts.history_chart(history, symbol), width="stretch")


def show_prediction(client: ApiClient, customer_id: str, symbol: str) -> None:
    """Show both models' predictions of the customer's next 30 days, and the API's warnings.

    The score is the stored one: when it was written by another run than the active model, the
    API's note saying so is shown under it.

    Parameters
    ----------
    client : ApiClient
        The API client.
    customer_id : str
        The customer id.
    symbol : str
        Currency symbol.
    """
    try:
        prediction = client.customer_prediction(customer_id)
    except DashboardError as exc:
        st.subheader("Predictions")
        show_error(exc)
        return
    st.subheader(f"Predictions for the next {prediction.get('horizon_days', 30)} days")
    cols = st.columns(3)
    cols[0].metric(
        "Model 1 · predicted spend",
        format_currency(prediction.get("predicted_spend_30d_model1"), symbol),
    )
    cols[1].metric(
        "Model 2 · predicted spend",
        format_currency(prediction.get("predicted_spend_30d_model2"), symbol),
    )
    cols[2].metric(
        "Predicted distinct products",
        format_number(prediction.get("predicted_products_30d"), 1),
    )
    st.caption(
        f"As of {prediction.get('as_of', '?')} · model run `{prediction.get('model_run_id', '?')}`"
    )
    for warning in prediction.get("warnings") or []:  # e.g. scored by an earlier run
        st.warning(str(warning), icon=":material/warning:")


def show_features(client: ApiClient, customer_id: str) -> None:
    """Show the model inputs computed for the customer.

    Parameters
    ----------
    client : ApiClient
        The API client.
    customer_id : str
        The customer id.
    """
    st.subheader("Features behind the predictions")
    try:
        answer = client.customer_features(customer_id)
    except DashboardError as exc:
        show_error(exc)
        return
    table = frames.features_frame(answer.get("features") or {})
    st.caption(f"Computed as of {answer.get('as_of', '?')}")
    st.dataframe(table, hide_index=True, width="stretch", height=360)


def render() -> None:
    """Draw the Customers page."""
    client = get_client()
    symbol = currency()
    st.title("Customers")
    st.markdown(
        "Look up a customer stored in the database (loaded with `clv ingest`, "
        "`clv demo` or the Full Pipeline page with *Save rows to the store* on)."
    )
    customer_id = st.text_input(
        "Customer id", key=QUERY_KEY, placeholder="e.g. 13085", max_chars=64
    ).strip()
    if not customer_id:
        st.info("Type a customer id and press Enter.", icon=":material/search:")
        return
    try:
        customer = client.customer(customer_id)
    except DashboardError as exc:
        show_error(exc)
        return
    show_summary(customer, symbol)
    show_prediction(client, customer_id, symbol)
    left, right = st.columns([3, 2])
    with left:
        show_history(customer, symbol)
    with right:
        show_features(client, customer_id)


if __name__ == "__main__":
    render()
