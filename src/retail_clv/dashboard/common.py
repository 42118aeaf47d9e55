"""Pieces shared by the dashboard pages: the API client, the sidebar and error display."""

from __future__ import annotations

import streamlit as st

from retail_clv.config import get_settings
from retail_clv.dashboard.client import (
    ApiClient,
    BackendTimeoutError,
    BackendUnavailableError,
    DashboardError,
    NoModelError,
    NotFoundError,
)
from retail_clv.dashboard.formatting import CURRENCY_CHOICES, DEFAULT_CURRENCY

CURRENCY_KEY = "currency"


def get_client() -> ApiClient:
    """Return a client of the API named by ``CLV_API_URL`` (settings ``api_url``).

    Returns
    -------
    ApiClient
        Sends ``CLV_API_KEY`` as ``X-API-Key`` when that setting is set.
    """
    settings = get_settings()
    return ApiClient(settings.api_url, api_key=settings.api_key)


def default_currency() -> str:
    """Return the configured currency symbol (``currency_symbol`` setting when present, else £).

    Returns
    -------
    str
        The symbol shown until the user picks another one in the sidebar.
    """
    return get_settings().currency_symbol or DEFAULT_CURRENCY


def currency_choices() -> list[str]:
    """Return the sidebar's currency choices, the configured default first.

    Returns
    -------
    list of str
        The configured symbol followed by :data:`CURRENCY_CHOICES` without duplicates.
    """
    first = default_currency()
    return [first, *(c for c in CURRENCY_CHOICES if c != first)]


def currency() -> str:
    """Return the currency symbol chosen in the sidebar (default :func:`default_currency`).

    Returns
    -------
    str
        The symbol, possibly empty.
    """
    value = st.session_state.get(CURRENCY_KEY, default_currency())
    return str(value)


def show_error(error: DashboardError) -> None:
    """Show an API failure as a friendly message plus what to do next (never a traceback).

    Parameters
    ----------
    error : DashboardError
        The translated failure; "not found" and "no model yet" are warnings, the rest errors.
    """
    text = error.message
    if error.hint:
        text = f"{text}\n\n**What to do:** {error.hint}"
    if isinstance(error, BackendUnavailableError | BackendTimeoutError):
        st.error(text, icon=":material/cloud_off:")
    elif isinstance(error, NoModelError | NotFoundError):
        st.warning(text, icon=":material/warning:")
    else:
        st.error(text, icon=":material/error:")


def sidebar(client: ApiClient) -> None:
    """Draw the shared sidebar: API status, active model run and the currency setting.

    Parameters
    ----------
    client : ApiClient
        Client whose ``/ready`` endpoint is probed.
    """
    with st.sidebar:
        st.caption(f"API: `{client.base_url}`")
        try:
            ready = client.ready()
        except BackendTimeoutError:
            # the server took the connection but did not answer in time: busy, not down
            st.warning(
                "API slow: it did not answer in time (busy with a training or a large upload?).",
                icon=":material/hourglass_top:",
            )
        except BackendUnavailableError:
            st.error("API unreachable — start it with `clv serve`.", icon=":material/cloud_off:")
        except DashboardError as exc:
            st.warning(f"API not ready: {exc.message}", icon=":material/warning:")
        else:
            run_id = ready.get("model_run_id") or "none yet"
            st.success(f"API connected · model `{run_id}`", icon=":material/check_circle:")
        st.selectbox(
            "Currency symbol",
            currency_choices(),
            key=CURRENCY_KEY,
            format_func=lambda s: s or "(none)",
            help="Only changes how amounts are shown; predictions are in the data's currency.",
        )
