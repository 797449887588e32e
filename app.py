"""tomte — the Streamlit app's router: page config and the page list (navigation is drawn by ui.nav)."""

import streamlit as st

from ui.nav import PAGES

st.set_page_config(page_title="tomte", page_icon="🏘️", layout="wide")
pages = [st.Page(path, title=title, url_path=url, default=(i == 0)) for i, (path, title, url) in enumerate(PAGES)]
st.navigation(pages, position="hidden").run()
