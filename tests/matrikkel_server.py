"""A local Matrikkel SOAP server that answers according to the real WSDL/XSD (for tests only).

Serves the WSDL and XSD files, checks HTTP Basic credentials, answers
``findMatrikkelenhetIdForIdent``, ``StoreService.getObject`` and ``getObjects`` from a small
in-memory register, returns SOAP faults for unknown parcels, and validates every response body
against the XSDs with lxml before sending it, so the tests prove the client reads schema-valid data.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lxml import etree

from tests.servers import fake_server

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
D = "http://matrikkel.statkart.no/matrikkelapi/wsapi/v1/domain"
NS = {"me": D + "/matrikkelenhet", "p": D + "/person", "u": D + "/util", "k": D + "/kommune", "d": D,
      "sme": "http://matrikkel.statkart.no/matrikkelapi/wsapi/v1/service/matrikkelenhet",
      "sst": "http://matrikkel.statkart.no/matrikkelapi/wsapi/v1/service/store"}

# (kommune, gnr, bnr, fnr, snr) → matrikkelenhet id; id → owners (person id, kind, share)
REGISTER = {("3207", 12, 34, 0, 0): 1001, ("3207", 12, 35, 0, 0): 1002}
OWNERS = {1001: [(501, "FysiskPerson", (1, 2)), (502, "JuridiskPerson", (1, 2))], 1002: []}
PERSONS = {501: ("Kari Nordmann", "Skogveien 1", "1400"), 502: ("Follo Tomteselskap AS", "Postboks 7", "1401")}


def schema(wsdl_dir: Path) -> etree.XMLSchema:
    """One schema importing every XSD in the contract (so xsi:type subtypes validate)."""
    imports = []
    for xsd in sorted(wsdl_dir.glob("*.xsd")):
        tns = etree.parse(str(xsd)).getroot().get("targetNamespace")
        imports.append(f'<xs:import namespace="{tns}" schemaLocation="{xsd.resolve().as_uri()}"/>')
    wrapper = f'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:tomte:test">{"".join(imports)}</xs:schema>'
    return etree.XMLSchema(etree.fromstring(wrapper.encode(), base_url=wsdl_dir.resolve().as_uri() + "/"))


def _envelope(body: str) -> bytes:
    ns = " ".join(f'xmlns:{k}="{v}"' for k, v in NS.items())
    return (f'<?xml version="1.0" encoding="UTF-8"?><S:Envelope xmlns:S="{SOAP}" xmlns:xsi="{XSI}" {ns}><S:Body>{body}</S:Body></S:Envelope>').encode()


def _fault(text: str) -> bytes:
    return _envelope(f"<S:Fault><faultcode>S:Server</faultcode><faultstring>{text}</faultstring></S:Fault>")


COMPONENT_HISTORY = "<d:oppdateringsdato><d:timestamp>2024-01-01T00:00:00</d:timestamp></d:oppdateringsdato><d:versjonId>1</d:versjonId><d:oppdatertAv>test</d:oppdatertAv>"
HISTORY = "<d:oppdateringsdato><d:timestamp>2024-01-01T00:00:00</d:timestamp></d:oppdateringsdato><d:versjonId>1</d:versjonId><d:oppdatertAv>test</d:oppdatertAv><d:versjon>1</d:versjon>"


def answer(op: str, req: etree._Element) -> tuple[int, bytes]:
    """The SOAP answer to one operation."""
    if op == "findMatrikkelenhetIdForIdent":
        def num(name: str) -> int:
            el = req.find(f".//{{{NS['me']}}}{name}")
            return int(el.text) if el is not None and el.text else 0
        knr = req.find(f".//{{{NS['k']}}}kommunenummer").text
        key = (knr, num("gardsnummer"), num("bruksnummer"), num("festenummer"), num("seksjonsnummer"))
        if key not in REGISTER:
            return 500, _fault(f"Matrikkelenhet {key} ikke funnet")
        return 200, _envelope(f"<sme:findMatrikkelenhetIdForIdentResponse><sme:return><d:value>{REGISTER[key]}</d:value></sme:return>"
                              "</sme:findMatrikkelenhetIdForIdentResponse>")
    if op == "getObject":
        mid = int(req.find(".//{*}id").find(f"{{{D}}}value").text)
        items = "".join(
            f'<me:item xsi:type="me:{"Person" if kind == "FysiskPerson" else "JuridiskPerson"}TinglystEierforhold">'
            f"{COMPONENT_HISTORY}<me:id>{mid * 10 + i}</me:id><me:andel><u:teller>{t}</u:teller><u:nevner>{n}</u:nevner></me:andel>"
            f'<me:eierId xsi:type="p:{kind}Id"><d:value>{pid}</d:value></me:eierId></me:item>'
            for i, (pid, kind, (t, n)) in enumerate(OWNERS[mid]))
        return 200, _envelope(
            f'<sst:getObjectResponse><sst:return xsi:type="me:Matrikkelenhet"><d:id xsi:type="me:MatrikkelenhetId"><d:value>{mid}</d:value></d:id>'
            f"{HISTORY}<me:tinglyst>true</me:tinglyst><me:eierforhold>{items}</me:eierforhold></sst:return></sst:getObjectResponse>")
    if op == "getObjects":
        ids = [int(v.text) for v in req.find(".//{*}ids").iter(f"{{{D}}}value")]
        items = []
        for pid in ids:
            name, line, postnr = PERSONS[pid]
            kind = "FysiskPerson" if pid == 501 else "JuridiskPerson"
            items.append(f'<d:item xsi:type="p:{kind}"><d:id xsi:type="p:{kind}Id"><d:value>{pid}</d:value></d:id>{HISTORY}'
                         f"<p:nummer>{'01017012345' if kind == 'FysiskPerson' else '999888777'}</p:nummer><p:navn>{name}</p:navn>"
                         f"<p:postadresse><p:adresselinje1>{line}</p:adresselinje1></p:postadresse></d:item>")
        return 200, _envelope(f"<sst:getObjectsResponse><sst:return>{''.join(items)}</sst:return></sst:getObjectsResponse>")
    return 500, _fault(f"Ukjent operasjon {op}")


@contextmanager
def matrikkel_server(wsdl_dir: Path, user: str = "tomte", password: str = "hemmelig") -> Iterator[tuple[str, Any, list[str]]]:
    """Serve the contract at ``<base>/<Service>WS``; yields (base, server, list of validation errors)."""
    xsd = schema(wsdl_dir)
    errors: list[str] = []
    calls: list[str] = []

    def soap(h: Any, _q: dict) -> tuple[int, dict, bytes]:
        if h.command == "GET":
            name = h.path.split("?")[0].strip("/") + ".wsdl"
            return 200, {"Content-Type": "text/xml"}, (wsdl_dir / name).read_bytes()
        expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        if h.headers.get("Authorization") != expected:
            return 401, {"WWW-Authenticate": 'Basic realm="matrikkel"'}, b"Unauthorized"
        req = etree.fromstring(h.rfile.read(int(h.headers["Content-Length"])))
        body = req.find(f"{{{SOAP}}}Body")[0]
        op = etree.QName(body).localname
        calls.append(op)
        status, payload = answer(op, body)
        doc = etree.fromstring(payload)
        content = doc.find(f"{{{SOAP}}}Body")[0]
        if status == 200 and not xsd.validate(etree.fromstring(etree.tostring(content))):
            errors.append(str(xsd.error_log.last_error))
        return status, {"Content-Type": "text/xml; charset=utf-8"}, payload

    routes: dict[str, Any] = {"/MatrikkelenhetServiceWS": soap, "/StoreServiceWS": soap}
    for f in wsdl_dir.glob("*.xsd"):
        routes["/" + f.name] = lambda h, q, f=f: (200, {"Content-Type": "text/xml"}, f.read_bytes())
    with fake_server(routes) as (base, server):
        server.calls = calls
        yield base, server, errors
