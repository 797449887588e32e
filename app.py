"""tomte — the Streamlit app's router: page config, shared sidebar and navigation."""

import streamlit as st

st.set_page_config(page_title="tomte", page_icon="🏘️", layout="wide")

pages = [
    st.Page("pages/oversikt.py", title="Oversikt", url_path="oversikt", default=True),
    st.Page("pages/kommuner.py", title="Kommuner", url_path="kommuner"),
    st.Page("pages/kart.py", title="Kart", url_path="kart"),
    st.Page("pages/vekter.py", title="Vekter", url_path="vekter"),
    st.Page("pages/tomter.py", title="Tomter", url_path="tomter"),
    st.Page("pages/eksport.py", title="Eksport", url_path="eksport"),
]
st.navigation(pages).run()
