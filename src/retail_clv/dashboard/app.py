"""Entry point of the retail-clv Streamlit dashboard.

Run it with ``clv dashboard`` or
``python -m streamlit run src/retail_clv/dashboard/app.py``; it talks to the API at
``CLV_API_URL`` (default http://localhost:8000). The three pages live in ``views/``.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from retail_clv.dashboard.common import get_client, sidebar

VIEWS = Path(__file__).resolve().parent / "views"


def main() -> None:
    """Configure the page, draw the shared sidebar and run the selected page."""
    st.set_page_config(
        page_title="retail-clv", page_icon="🛒", layout="wide", initial_sidebar_state="expanded"
    )
    page = st.navigation(
        [
            st.Page(VIEWS / "pipeline.py", title="Full Pipeline", icon="📤", default=True),
            st.Page(VIEWS / "customers.py", title="Customers", icon="👤"),
            st.Page(VIEWS / "models.py", title="Models", icon="📈"),
        ]
    )
    sidebar(get_client())
    page.run()


if __name__ == "__main__":
    main()
