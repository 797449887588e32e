"""tomte — finds developable land for social housing in Norwegian municipalities.

The library never imports streamlit; the app (``app.py``, ``pages/``, ``ui/``) and the
CLI (``python -m tomte``) both call the same functions in :mod:`tomte.pipeline`.
"""

__version__ = "0.1.0"
