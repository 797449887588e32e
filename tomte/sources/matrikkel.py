"""Kartverket's Matrikkel API (SOAP, by agreement): parcel → owners, with zeep from the WSDL/XSD contract.

The flow (domain.md §7.4): kommunenummer/gnr/bnr/fnr/snr → ``MatrikkelenhetService.findMatrikkelenhetIdForIdent``
→ ``StoreService.getObject`` (the ``Matrikkelenhet`` with its ``eierforhold`` list) → the registered owners
(``*TinglystEierforhold``: owner id and share) → ``StoreService.getObjects`` for the persons (``FysiskPerson`` /
``JuridiskPerson``: name, postal address). Every call carries a ``MatrikkelContext``.

Settings (environment, or Streamlit secrets mapped to the same names): ``TOMTE_MATRIKKEL_URL`` — the base under
which the ``<Service>WS`` endpoints live (production ``https://matrikkel.no/matrikkelapi/wsapi/v1``, test
``https://prodtest.matrikkel.no/matrikkelapi/wsapi/v1``); ``TOMTE_MATRIKKEL_USER`` / ``TOMTE_MATRIKKEL_PASSWORD``
(HTTP Basic, never stored or logged); ``TOMTE_MATRIKKEL_WSDL`` — where the WSDL files are (default:
``<URL>/<Service>WS?WSDL`` on the server itself). The national identity number (``FysiskPerson.nummer``) is never kept.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests
import zeep
import zeep.exceptions
from zeep.transports import Transport

from tomte.errors import BadResponse, InvalidData, NotFound, SourceUnavailable

PROD = "https://matrikkel.no/matrikkelapi/wsapi/v1"
PRODTEST = "https://prodtest.matrikkel.no/matrikkelapi/wsapi/v1"
NS_DOMAIN = "http://matrikkel.statkart.no/matrikkelapi/wsapi/v1/domain"
NS_ME = NS_DOMAIN + "/matrikkelenhet"
NS_PERSON = NS_DOMAIN + "/person"


@dataclass(frozen=True)
class MatrikkelConfig:
    """Where and as whom to call the Matrikkel API."""

    url: str
    user: str
    password: str
    wsdl: str | None = None
    timeout: float = 30.0
    concurrency: int = 4
    client_id: str = "tomte"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> MatrikkelConfig:
        """Settings from the environment; a clear message when the agreement's credentials are missing."""
        e = os.environ if env is None else env
        url, user, password = e.get("TOMTE_MATRIKKEL_URL"), e.get("TOMTE_MATRIKKEL_USER"), e.get("TOMTE_MATRIKKEL_PASSWORD")
        if not (url and user and password):
            raise InvalidData("Matrikkel-API-et er ikke satt opp: sett TOMTE_MATRIKKEL_URL, TOMTE_MATRIKKEL_USER og "
                              "TOMTE_MATRIKKEL_PASSWORD (krever avtale med Kartverket), eller legg inn eiere manuelt.")
        return cls(url.rstrip("/"), user, password, e.get("TOMTE_MATRIKKEL_WSDL"))

    def __repr__(self) -> str:  # never show the password
        return f"MatrikkelConfig(url={self.url!r}, user={self.user!r}, password='***')"


@dataclass(frozen=True)
class OwnerRecord:
    """A registered owner of a matrikkelenhet as the API gives it (no identity number)."""

    name: str
    kind: str
    address: str
    share: str


class MatrikkelClient:
    """Owner look-ups through zeep; one client can be shared by threads."""

    def __init__(self, config: MatrikkelConfig) -> None:
        self.config = config
        session = requests.Session()
        session.auth = (config.user, config.password)
        session.headers["User-Agent"] = "tomte (Matrikkel-oppslag)"
        self.transport = Transport(session=session, timeout=config.timeout, operation_timeout=config.timeout)
        self._services: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._cache: dict[tuple, list[OwnerRecord]] = {}

    def _service(self, name: str) -> tuple[Any, Any]:
        with self._lock:
            if name not in self._services:
                base = self.config.wsdl or self.config.url
                wsdl = f"{base.rstrip('/')}/{name}WS.wsdl" if self.config.wsdl else f"{base}/{name}WS?WSDL"
                try:
                    client = zeep.Client(wsdl, transport=self.transport)
                except (requests.RequestException, OSError) as exc:
                    raise SourceUnavailable(f"Fant ikke WSDL for {name} ({wsdl}); sjekk TOMTE_MATRIKKEL_WSDL/URL.", detail=repr(exc)) from exc
                binding = next(iter(client.wsdl.bindings))
                self._services[name] = (client, client.create_service(binding, f"{self.config.url}/{name}WS"))
            return self._services[name]

    def context(self, client: Any) -> Any:
        """A MatrikkelContext: Norwegian locale, UTM 33 (kode 11), latest snapshot, our client id."""
        ctx = client.get_type(f"{{{NS_DOMAIN}}}MatrikkelContext")
        kode = client.get_type(f"{{{NS_DOMAIN}/geometri/koder}}KoordinatsystemKodeId")
        stamp = client.get_type(f"{{{NS_DOMAIN}}}Timestamp")
        return ctx(locale="no_NO", brukOriginaleKoordinater=False, koordinatsystemKodeId=kode(value=11), systemVersion="4.4",
                   klientIdentifikasjon=self.config.client_id, snapshotVersion=stamp(timestamp=datetime(9999, 1, 1)))

    def _call(self, fn: Callable[..., Any], what: str, **kwargs: Any) -> Any:
        try:
            return fn(**kwargs)
        except zeep.exceptions.Fault as exc:
            text = str(exc.message or "")
            if "ikke funnet" in text.lower() or "not found" in text.lower() or "finnes ikke" in text.lower():
                raise NotFound(f"Matrikkelen kjenner ikke {what}.", detail=text) from exc
            raise BadResponse(f"Matrikkel-API-et svarte med en feil for {what}: {text[:200]}", detail=text) from exc
        except zeep.exceptions.TransportError as exc:
            if exc.status_code in (401, 403):
                raise InvalidData("Matrikkel-API-et avviste brukernavn/passord (HTTP 401/403); sjekk TOMTE_MATRIKKEL_USER/PASSWORD.") from exc
            raise SourceUnavailable(f"Matrikkel-API-et svarte HTTP {exc.status_code}; prøv igjen senere.") from exc
        except requests.RequestException as exc:
            raise SourceUnavailable("Får ikke kontakt med Matrikkel-API-et; sjekk nettverket og TOMTE_MATRIKKEL_URL.", detail=repr(exc)) from exc

    def owners(self, kommunenummer: str, gnr: int, bnr: int, fnr: int = 0, snr: int = 0) -> list[OwnerRecord]:
        """Registered owners of one matrikkelenhet (cached per client)."""
        key = (kommunenummer, gnr, bnr, fnr, snr)
        if key in self._cache:
            return self._cache[key]
        what = f"{kommunenummer}-{gnr}/{bnr}/{fnr}/{snr}"
        me_client, me_service = self._service("MatrikkelenhetService")
        ident_type = me_client.get_type(f"{{{NS_ME}}}MatrikkelenhetIdent")
        kommune_ident = me_client.get_type(f"{{{NS_DOMAIN}/kommune}}KommuneIdent")
        ident = ident_type(kommuneIdent=kommune_ident(kommunenummer=kommunenummer), gardsnummer=gnr, bruksnummer=bnr,
                           festenummer=fnr, seksjonsnummer=snr)
        found = self._call(me_service.findMatrikkelenhetIdForIdent, what, matrikkelenhetIdent=ident, matrikkelContext=self.context(me_client))
        if found is None:
            raise NotFound(f"Matrikkelen kjenner ikke {what}.")
        store_client, store_service = self._service("StoreService")
        me_id = store_client.get_type(f"{{{NS_ME}}}MatrikkelenhetId")(value=_value(found))
        enhet = self._call(store_service.getObject, what, id=me_id, matrikkelContext=self.context(store_client))
        shares: dict[int, tuple[str, str]] = {}
        for item in _items(getattr(enhet, "eierforhold", None)):
            type_name = type(item).__name__ if not hasattr(item, "_xsd_type") else item._xsd_type.name
            if "TinglystEierforhold" not in str(type_name) or "IkkeTinglyst" in str(type_name) or getattr(item, "eierId", None) is None:
                continue
            andel = getattr(item, "andel", None)
            share = f"{andel.teller}/{andel.nevner}" if andel is not None and getattr(andel, "teller", None) else ""
            shares[_value(item.eierId)] = (share, "organisasjon" if "Juridisk" in str(type_name) else "person")
        if not shares:
            self._cache[key] = []
            return []
        person_ids = []
        for pid, (_, kind) in shares.items():
            type_name = "JuridiskPersonId" if kind == "organisasjon" else "FysiskPersonId"
            person_ids.append(store_client.get_type(f"{{{NS_PERSON}}}{type_name}")(value=pid))
        id_list = store_client.get_type(f"{{{NS_DOMAIN}}}MatrikkelBubbleIdList")(item=person_ids)
        persons = self._call(store_service.getObjects, what, ids=id_list, matrikkelContext=self.context(store_client))
        records = []
        for person in _items(persons):
            pid = _value(person.id)
            share, kind = shares.get(pid, ("", "person"))
            records.append(OwnerRecord(str(person.navn or "").strip(), kind, _address(person), share))
        self._cache[key] = records
        return records

    def owners_many(self, parcels: list[tuple[str, int, int, int, int]]) -> dict[tuple, list[OwnerRecord] | Exception]:
        """Look up many parcels with at most ``concurrency`` calls in flight; errors are returned per parcel."""
        def one(p: tuple[str, int, int, int, int]) -> list[OwnerRecord] | Exception:
            try:
                return self.owners(*p)
            except (NotFound, BadResponse) as exc:
                return exc
        with ThreadPoolExecutor(max(1, self.config.concurrency)) as pool:
            return dict(zip(parcels, pool.map(one, parcels), strict=True))


def _items(value: Any) -> list[Any]:
    """The items of a SOAP list (zeep gives the bare list when the wrapper has one field)."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return list(getattr(value, "item", None) or [])


def _value(bubble_id: Any) -> int:
    """The number in a MatrikkelBubbleId (zeep unwraps single-field answers to the bare value)."""
    return int(bubble_id if isinstance(bubble_id, int | str) else bubble_id.value)


def _address(person: Any) -> str:
    adr = getattr(person, "postadresse", None) or getattr(person, "forretningsadresse", None)
    if adr is None:
        return ""
    lines = [getattr(adr, f"adresselinje{i}", None) for i in (1, 2, 3)]
    postnr = getattr(getattr(adr, "postnummeromradeId", None), "value", None)
    text = ", ".join(str(x).strip() for x in lines if x)
    return text + (f" (postnummerområde {postnr})" if postnr else "")
