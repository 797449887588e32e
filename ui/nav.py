"""The app's navigation, drawn by every page.

Streamlit runs a ``pages/`` directory in its old file-based mode when a session starts on a
deep link (``/kart?kommune=3212``) before ``app.py`` has run, so the automatic navigation is
hidden (``client.showSidebarNavigation = false``) and every page draws this one instead. Links
keep the chosen kommune.
"""

from __future__ import annotations

import streamlit as st

PAGES = [
    ("pages/oversikt.py", "Oversikt", "oversikt"),
    ("pages/kommuner.py", "Kommuner", "kommuner"),
    ("pages/kart.py", "Kart", "kart"),
    ("pages/vekter.py", "Vekter", "vekter"),
    ("pages/tomter.py", "Tomter", "tomter"),
    ("pages/eiere.py", "Eiere", "eiere"),
    ("pages/pipeline.py", "Pipeline", "pipeline"),
    ("pages/eksport.py", "Eksport", "eksport"),
    ("pages/endringer.py", "Endringer siden sist", "endringer"),
]


def sidebar() -> None:
    """Links to every page, carrying ``?kommune=``."""
    kommune = st.query_params.get("kommune")
    with st.sidebar:
        st.markdown("**tomte**")
        for path, title, _ in PAGES:
            st.page_link(path, label=title, query_params={"kommune": kommune} if kommune else None)
        st.divider()
