"""Login before any owner data is shown.

Accounts come from Streamlit secrets (``.streamlit/secrets.toml``)::

    [auth]
    password = "felles passord"          # one shared password, or
    [auth.users]
    kari = "hennes passord"              # named accounts

or from the environment variable ``TOMTE_APP_PASSWORD``. Without either, owner pages refuse to
show owner data and say how to set it up. Passwords are compared in constant time.
"""

from __future__ import annotations

import hmac
import os

import streamlit as st


def _accounts() -> dict[str, str]:
    accounts: dict[str, str] = {}
    try:
        auth = st.secrets.get("auth", {})
    except FileNotFoundError:
        auth = {}
    except Exception:  # noqa: BLE001 - malformed secrets: treat as not configured
        auth = {}
    if auth.get("password"):
        accounts["analytiker"] = str(auth["password"])
    accounts.update({str(k): str(v) for k, v in dict(auth.get("users", {})).items()})
    if os.environ.get("TOMTE_APP_PASSWORD"):
        accounts.setdefault("analytiker", os.environ["TOMTE_APP_PASSWORD"])
    return accounts


def user() -> str | None:
    """The logged-in user, if any."""
    return st.session_state.get("tomte_user")


def require_login() -> str:
    """Stop the page unless the analyst has logged in; returns the user name."""
    if user():
        return str(user())
    accounts = _accounts()
    st.info("Eierdata er personopplysninger: logg inn for å se dem.")
    if not accounts:
        st.error("Innlogging er ikke satt opp: legg inn [auth] password i .streamlit/secrets.toml eller sett TOMTE_APP_PASSWORD.")
        st.stop()
    with st.form("login"):
        name = st.text_input("Bruker", value="analytiker" if len(accounts) == 1 else "")
        password = st.text_input("Passord", type="password")
        if st.form_submit_button("Logg inn"):
            expected = accounts.get(name)
            if expected is not None and hmac.compare_digest(expected.encode(), password.encode()):
                st.session_state["tomte_user"] = name
                st.rerun()
            st.error("Feil bruker eller passord.")
    st.stop()
    return ""
