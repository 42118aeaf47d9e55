"""Entry point of the retail-clv Streamlit dashboard.

Run it with ``clv dashboard`` or
``python -m streamlit run src/retail_clv/dashboard/app.py``; it talks to the API at
``CLV_API_URL`` (default http://localhost:8000). The three pages live in ``views/``; every
number they show comes from the API (see ``client.py``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import streamlit as st

from retail_clv.dashboard.common import get_client, sidebar

logger = logging.getLogger(__name__)

VIEWS = Path(__file__).resolve().parent / "views"


def main() -> None:
    """Configure the page, draw the shared sidebar and run the selected page.

    API failures are handled by each page; anything else (a bug) is logged and shown as one
    friendly message instead of a traceback.
    """
    st.set_page_config(
        page_title="retail-clv",
        page_icon=":material/shopping_cart:",
        layout="wide",
        initial_sidebar_state="expanded",
    )
    page = st.navigation(
        [
            st.Page(
                VIEWS / "pipeline.py",
                title="Full Pipeline",
                icon=":material/upload_file:",
                default=True,
            ),
            st.Page(VIEWS / "customers.py", title="Customers", icon=":material/person:"),
            st.Page(VIEWS / "models.py", title="Models", icon=":material/monitoring:"),
        ]
    )
    try:
        sidebar(get_client())
        page.run()
    except Exception as exc:  # last resort: Streamlit's rerun/stop signals are BaseException
        logger.exception("dashboard page %s failed", page.title)
        st.error(
            f"Something went wrong while drawing this page ({type(exc).__name__}: {exc}).\n\n"
            "**What to do:** reload the page; if it happens again, check that the dashboard "
            "and the API are the same retail-clv version and look at the dashboard's log.",
            icon=":material/error:",
        )


if __name__ == "__main__":
    st.set_option("client.toolbarMode", "viewer")
    main()
