"""SOSI plan code lists and the sets tomte's rules are built on.

Sources: ``../shared/reference/domain.md`` §1.4-1.12 (DiBK NAP styles, SOSI objektkatalog).
Codes are strings everywhere; :func:`code` normalises integers and floats such as ``3.0``.
Which codes count as *housing* is a domain judgement (see domain.md §1.12); the defaults
below follow issue 4 and can be changed through :class:`tomte.config.DifferanseSettings`.
"""

from __future__ import annotations

from typing import Any

KP_AREALFORMAL: dict[str, str] = {
    "1000": "Bebyggelse og anlegg - generalisert",
    "1001": "Bebyggelse og anlegg",
    "1110": "Boligbebyggelse",
    "1120": "Fritidsbebyggelse",
    "1130": "Sentrumsformål",
    "1140": "Kjøpesenter",
    "1150": "Forretninger",
    "1160": "Offentlig eller privat tjenesteyting",
    "1170": "Fritids- og turistformål",
    "1200": "Råstoffutvinning",
    "1300": "Næringsbebyggelse",
    "1400": "Idrettsanlegg",
    "1500": "Andre typer bebyggelse og anlegg",
    "1600": "Uteoppholdsareal",
    "1700": "Grav og urnelund",
    "1800": "Kombinert bebyggelse og anleggsformål",
    "2001": "Samferdselsanlegg og teknisk infrastruktur",
    "2010": "Veg",
    "2020": "Bane",
    "2030": "Lufthavn",
    "2040": "Havn",
    "2060": "Kollektivnett",
    "2070": "Kollektivknutepunkt",
    "2080": "Parkering",
    "2100": "Trase for teknisk infrastruktur",
    "2800": "Kombinerte formål for samferdselsanlegg",
    "3001": "Grønnstruktur",
    "3020": "Naturområde",
    "3030": "Turdrag",
    "3040": "Friområde",
    "3050": "Park",
    "4001": "Forsvaret",
    "5000": "LNFR - generalisert",
    "5100": "LNFR-areal for landbruk, natur og friluftsliv",
    "5200": "LNFR-areal for spredt bolig-, fritids- eller næringsbebyggelse",
    "5210": "Spredt boligbebyggelse",
    "5220": "Spredt fritidsbebyggelse",
    "5230": "Spredt næringsbebyggelse",
    "6001": "Bruk og vern av sjø og vassdrag",
    "6100": "Ferdsel",
    "6230": "Småbåthavn",
    "6700": "Friluftsområde i sjø og vassdrag",
}

KP_AREALBRUK_1985: dict[str, str] = {
    "100": "Byggeområder",
    "101": "Bybebyggelse",
    "102": "Tettbebyggelse",
    "110": "Boligområde",
    "120": "Senterområde",
    "130": "Erverv",
    "140": "Fritidsbebyggelse",
    "190": "Annet byggeområde",
    "210": "LNF-område",
    "221": "LNF-område der spredt boligbebyggelse er tillatt",
}

AREALBRUKSSTATUS: dict[str, str] = {"1": "Nåværende", "2": "Framtidig", "3": "Videreutvikling av nåværende"}

PLANSTATUS: dict[str, str] = {
    "1": "Planlegging igangsatt",
    "2": "Planforslag",
    "3": "Endelig vedtatt arealplan",
    "4": "Opphevet",
    "5": "Utgått/erstattet",
    "6": "Vedtatt plan med utsatt rettsvirkning",
    "7": "Endelig vedtatt plan underlagt tidsbegrensning",
    "8": "Overstyrt",
}

PLANTYPE: dict[str, str] = {
    "4": "Statlig arealplan",
    "10": "Fylkesplanens arealdel",
    "11": "Fylkesdelplan",
    "12": "Regionalplan",
    "20": "Kommuneplanens arealdel",
    "21": "Kommunedelplan",
    "22": "Mindre endring av kommune(del)plan",
    "30": "Eldre reguleringsplan",
    "31": "Mindre reguleringsendring",
    "32": "Bebyggelsesplan ihht. reguleringsplan",
    "33": "Bebyggelsesplan ihht. kommuneplanens arealdel",
    "34": "Områderegulering",
    "35": "Detaljregulering",
}

VERTIKALNIVA: dict[str, str] = {
    "1": "Under grunnen (tunnel)",
    "2": "På grunnen/vannoverflate",
    "3": "Over grunnen (bru)",
    "4": "På bunnen (vann/sjø)",
    "5": "I vannsøylen",
}

# Issue 4 defaults.
HOUSING_SURE_2008 = frozenset({"1110", "1130"})
HOUSING_POSSIBLE_2008 = frozenset({"1001", "1800"})
SPREDT_BOLIG = frozenset({"5210"})
HOUSING_SURE_1985 = frozenset({"110", "120"})
HOUSING_POSSIBLE_1985 = frozenset({"100", "101", "102", "190"})
STATUS_DEFAULT = frozenset({"2", "3"})
APPROVED_PLANSTATUS = frozenset({"3", "6", "7", "8"})
IN_PROGRESS_PLANSTATUS = frozenset({"1", "2"})
SUBTRACTING_VERTIKALNIVA = frozenset({"2"})  # and "no level given"
UTNYTTING_FORBIDS = frozenset({"10", "11"})

PLANSTATUS_SHORT: dict[str, str] = {
    "1": "planlegging igangsatt",
    "2": "planforslag",
    "3": "vedtatt",
    "4": "opphevet",
    "5": "utgått",
    "6": "vedtatt, utsatt rettsvirkning",
    "7": "vedtatt, tidsbegrenset",
    "8": "overstyrt",
}


def code(value: Any) -> str | None:
    """Normalise a SOSI code value to a string (``3``, ``3.0``, ``" 3 "`` → ``"3"``).

    Returns ``None`` for missing values (``None``, empty string, NaN).
    """
    if value is None:
        return None
    if isinstance(value, float):
        if value != value:  # NaN
            return None
        if value.is_integer():
            return str(int(value))
        return str(value)
    if isinstance(value, int):
        return str(value)
    text = str(value).strip()
    if not text or text.lower() in {"null", "none", "nan"}:
        return None
    if text.endswith(".0") and text[:-2].isdigit():
        return text[:-2]
    return text


def code_series(values: Any) -> Any:
    """:func:`code` for a pandas Series: integers vectorised, anything else once per distinct value."""
    import pandas as pd

    series = pd.Series(values, copy=False)
    if series.dtype.kind in "iu":
        return series.astype(str).astype(object)
    text = series.astype(object)
    present = text[series.notna()]
    as_str = text.map({v: code(v) for v in pd.unique(present)}) if len(present) else text
    return as_str.astype(object).where(as_str.notna() & series.notna(), None)


FLAG_NAMES: dict[str, str] = {
    "mulig_bolig": "mulig bolig (sjekk bestemmelsene)", "geometri_reparert": "geometri reparert",
    "mangler_reguleringsplaner": "mangler reguleringsplandata", "plan_under_arbeid": "plan under arbeid",
    "mangler_kommuneplan": "mangler kommuneplandata",
}


def flag_words(flags: str | list[str] | None) -> str:
    """The flags of a lot in words, for people ("plan under arbeid, mulig bolig (sjekk bestemmelsene)")."""
    items = [f for f in (flags.split(",") if isinstance(flags, str) else flags or []) if f]
    return ", ".join(FLAG_NAMES.get(f, f.replace("_", " ")) for f in items)


def arealformal_name(value: str | None, regime: str = "2008") -> str:
    """Human name of a kommuneplan land-use code, or the code itself when unknown."""
    if value is None:
        return "ukjent formål"
    table = KP_AREALBRUK_1985 if regime == "1985" else KP_AREALFORMAL
    return table.get(value, f"formål {value}")
