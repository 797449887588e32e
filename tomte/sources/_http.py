"""The one place tomte talks HTTP.

Timeouts; retries with exponential back-off on connection errors, 429 and 5xx (honouring
``Retry-After``, capped by ``HttpSettings.max_retry_after``); a per-host rate limit; a disk
cache with a max age (requests-cache, SQLite backend): a second fetch within the max age makes
no request, ``refresh=True`` asks the service again; a User-Agent naming tomte. Responses that
fail validation are removed from the cache so a bad answer is never served twice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
import requests_cache

from tomte.config import HttpSettings
from tomte.errors import BadResponse, SourceUnavailable

RETRY_STATUS = {429, 500, 502, 503, 504}
Sleep = Callable[[float], None]


class _HostLimiter:
    """At most ``rate`` requests per second per host (shared by threads of one client)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next_slot: dict[str, float] = {}
        self.lock = threading.Lock()

    def wait(self, host: str, sleep: Sleep) -> None:
        with self.lock:
            now = time.monotonic()
            slot = max(now, self.next_slot.get(host, 0.0))
            self.next_slot[host] = slot + self.interval
        if slot > now:
            sleep(slot - now)


def _retry_after(resp: requests.Response) -> float | None:
    value = resp.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


class Http:
    """An HTTP client with tomte's policies. One per fetch run; thread-safe for GETs."""

    def __init__(self, settings: HttpSettings, refresh: bool = False, sleep: Sleep = time.sleep) -> None:
        self.settings = settings
        self.refresh = refresh
        self.sleep = sleep
        settings.cache_dir.mkdir(parents=True, exist_ok=True)
        self.session = requests_cache.CachedSession(
            str(settings.cache_dir / "http_cache"),
            backend="sqlite",
            expire_after=timedelta(hours=settings.cache_hours),
            allowable_codes=(200,),
            allowable_methods=("GET", "POST"),
            stale_if_error=False,
        )
        self.session.headers["User-Agent"] = settings.user_agent
        self.limiter = _HostLimiter(settings.rate_per_host)
        self.requests_made = 0

    def request(self, method: str, url: str, label: str, **kwargs: Any) -> requests.Response:
        """Send a request with retries; returns a 2xx response or raises a :class:`TomteError`.

        ``label`` names the kommune and source in error messages ("3207 kommuneplan (WFS)").
        """
        host = urlsplit(url).netloc
        attempts = self.settings.retries + 1
        last_problem = ""
        for attempt in range(attempts):
            self.limiter.wait(host, self.sleep)
            try:
                resp = self.session.request(
                    method, url, timeout=self.settings.timeout, force_refresh=self.refresh, **kwargs
                )
            except requests.Timeout as exc:
                last_problem = f"tidsavbrudd etter {self.settings.timeout:g} s"
                delay = self.settings.backoff * 2**attempt
                exc_detail = repr(exc)
            except requests.ConnectionError as exc:
                last_problem = "får ikke kontakt"
                delay = self.settings.backoff * 2**attempt
                exc_detail = repr(exc)
            except requests.RequestException as exc:  # e.g. a body cut off mid-transfer
                last_problem = "svaret ble avbrutt underveis"
                delay = self.settings.backoff * 2**attempt
                exc_detail = repr(exc)
            else:
                if not getattr(resp, "from_cache", False):
                    self.requests_made += 1
                if resp.status_code < 400:
                    return resp
                if resp.status_code not in RETRY_STATUS:
                    raise BadResponse(
                        f"{label}: tjenesten svarte HTTP {resp.status_code}; sjekk adressen og typenavnet i kildelisten.",
                        detail=resp.text[:500],
                    )
                last_problem = f"HTTP {resp.status_code}"
                exc_detail = resp.text[:200]
                wait = _retry_after(resp)
                delay = min(wait, self.settings.max_retry_after) if wait is not None else self.settings.backoff * 2**attempt
            if attempt + 1 < attempts:
                self.sleep(delay)
        raise SourceUnavailable(
            f"{label}: tjenesten svarer ikke ({last_problem}) etter {attempts} forsøk; prøv igjen senere eller sjekk nettverket.",
            detail=exc_detail,
        )

    def get(self, url: str, label: str, **kwargs: Any) -> requests.Response:
        """GET with retries and cache."""
        return self.request("GET", url, label, **kwargs)

    def forget(self, resp: requests.Response) -> None:
        """Drop a response from the cache (it failed validation)."""
        key = getattr(resp, "cache_key", None)
        if key:
            self.session.cache.delete(key)

    def close(self) -> None:
        """Close the session and its cache connection."""
        self.session.close()


def body(resp: requests.Response, label: str) -> bytes:
    """The full body; a truncated transfer becomes :class:`BadResponse`."""
    try:
        data = resp.content
    except requests.exceptions.ChunkedEncodingError as exc:
        raise BadResponse(f"{label}: svaret ble avbrutt underveis; prøv igjen.", detail=repr(exc)) from exc
    expected = resp.headers.get("Content-Length")
    if expected and expected.isdigit() and int(expected) > len(data) and "gzip" not in resp.headers.get("Content-Encoding", ""):
        raise BadResponse(f"{label}: svaret ble avkuttet ({len(data)} av {expected} byte); prøv igjen.")
    return data
