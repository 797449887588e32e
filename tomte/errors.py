"""Error types whose message is safe to show a user.

Modelled on pygeoapi's ``error.py``: the user message (``str(err)``) says what failed and
what to do, in one sentence; ``detail`` keeps technical detail for logs and is never
shown in the app.
"""

from __future__ import annotations


class TomteError(Exception):
    """Base class: an expected failure with a message a person can act on."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


class SourceUnavailable(TomteError):
    """A service could not be reached (network, timeout, 5xx after retries)."""


class BadResponse(TomteError):
    """A service answered, but with an error document or malformed content."""


class InvalidData(TomteError):
    """Input data (a file, a setting, a command-line value) is not usable."""


class StoreError(TomteError):
    """The SpatiaLite store cannot be opened or written."""


class NotFound(TomteError):
    """A kommune, lot or other object that was asked for does not exist."""
