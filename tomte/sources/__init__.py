"""Clients and parsers for outside data. ``_http.py`` is the only module that talks HTTP."""
