"""Streamlit-only helpers: cached wrappers around :mod:`tomte`, widgets and error display."""
