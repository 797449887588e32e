"""The site dossier (tomtedossier): one or more lots as an A4 PDF for a meeting (issue 18).

Per lot, from the stored data only (drawn offline, as vectors): the site with its parcels and the
site in the kommune, each with a scale bar and north arrow; tier, score, area in daa and the
dwellings at the m² per dwelling the last scoring used; the explanation in words; the score
breakdown with each factor's reason; the reguleringsplaner that touch it with status, year and a
link to the plan register; constraints; the parcels (gnr/bnr, overlap); the CRM status and history.

Owner names are personal data: they are in a dossier only when asked for (``with_owners``, after
login in the app), the first page then says so, and every such dossier is logged like an owner
look-up (who, when, which lots, legal basis; no names in the log).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import shapely

from tomte import crm, plans
from tomte import owners as owners_mod
from tomte.errors import InvalidData, NotFound
from tomte.letters import LEFT, RIGHT, Pdf, draw_map
from tomte.scoring import FACTOR_NAMES
from tomte.store import Store, loads

MAP_W, MAP_H = 80.0, 62.0


def dossier_pdf(store: Store, lot_ids: list[str], with_owners: bool = False, who: str = "", basis: str = "",
                today: date | None = None) -> bytes:
    """The dossier of the lots as one PDF (one section per lot, each from a new page)."""
    if not lot_ids:
        raise InvalidData("Velg minst én tomt til dossieret.")
    if with_owners and not basis.strip():
        raise InvalidData("Et dossier med eiernavn krever et formål/rettslig grunnlag (det logges).")
    stamp = (today or date.today()).strftime("%d.%m.%Y")
    pdf = Pdf()
    pdf.set_title("Tomtedossier")
    for lot_id in lot_ids:
        _lot_section(pdf, store, lot_id, with_owners, who, stamp)
    if with_owners:
        owners_mod.log_lookup(store, who or "ukjent", lot_ids[0] if len(lot_ids) == 1 else None, basis, 0,
                              f"dossier med eiernavn: {len(lot_ids)} tomter")
    return bytes(pdf.output())


def _heading(pdf: Pdf, text: str) -> None:
    if pdf.get_y() > pdf.h - pdf.b_margin - 20:
        pdf.add_page()
    pdf.ln(2)
    pdf.set_font(pdf.family, "B", 11)
    pdf.multi_cell(0, 6, pdf.clean(text), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(pdf.family, "", 9)


def _table(pdf: Pdf, header: list[str], rows: list[list[Any]], widths: list[float], links: list[str | None] | None = None) -> None:
    """A plain table that wraps its cells and breaks across pages; ``links`` makes the last cell of each row a link."""
    from fpdf.fonts import FontFace

    with pdf.table(col_widths=widths, text_align="LEFT", line_height=4.2, first_row_as_headings=True,
                   headings_style=FontFace(emphasis="BOLD", fill_color=(235, 240, 235)), padding=0.8,
                   width=sum(widths), align="LEFT") as table:
        for n, values in enumerate([header, *rows]):
            line = table.row()
            for i, value in enumerate(values):
                link = links[n - 1] if links and n and i == len(values) - 1 else None
                line.cell(pdf.clean("" if value is None else str(value)), link=link or None)


def _lot_section(pdf: Pdf, store: Store, lot_id: str, with_owners: bool, who: str, stamp: str) -> None:
    rows = store.rows("SELECT l.*, k.navn AS kommune, AsBinary(l.geom) AS wkb FROM lots l LEFT JOIN kommuner k USING (kommunenummer) "
                      "WHERE l.lot_id = ?", (lot_id,))
    if not rows:
        raise NotFound(f"Fant ingen tomt med id {lot_id}.")
    lot = rows[0]
    geom = shapely.from_wkb(lot["wkb"])
    parcels = [shapely.from_wkb(r["g"]) for r in store.rows(
        "SELECT AsBinary(p.geom) AS g FROM lot_parcels lp JOIN parcels p ON p.id = lp.parcel_id WHERE lp.lot_id = ?", (lot_id,))]
    boundary = [shapely.from_wkb(r["g"]) for r in store.rows(
        "SELECT AsBinary(geom) AS g FROM kommuner WHERE kommunenummer = ?", (lot["kommunenummer"],))]
    detail = loads(lot["score_detail"], {})
    exp = loads(lot["explanation"], {})
    address = store.scalar("SELECT adressetekst || COALESCE(', ' || postnummer || ' ' || poststed, '') FROM lot_addresses WHERE lot_id = ?",
                           (lot_id,))

    pdf.add_page()
    pdf.first_page, pdf.reference = pdf.page_no(), f"Tomtedossier {lot_id}"
    pdf.set_font(pdf.family, "B", 15)
    pdf.set_xy(LEFT, 16)
    pdf.multi_cell(0, 7, pdf.clean(f"Tomtedossier – {lot['kommune'] or lot['kommunenummer']}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(pdf.family, "", 9)
    pdf.multi_cell(0, 4.5, pdf.clean(f"Tomt {lot_id}" + (f" · {address}" if address else "") + f" · laget {stamp}"
                                     + (" · SYNTETISKE demodata" if lot["synthetic"] else "")), new_x="LMARGIN", new_y="NEXT")
    if with_owners:
        pdf.set_text_color(160, 0, 0)
        pdf.multi_cell(0, 4.5, pdf.clean(f"Inneholder eiernavn (personopplysninger), tatt med på forespørsel av {who or 'ukjent'}; "
                                         "oppslaget er logget. Del bare med dem som trenger det."), new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(0, 0, 0)
    pdf.ln(2)
    homes = detail.get("dwellings")
    m2 = detail.get("m2_per_dwelling")
    figures = [("Klasse", lot["tier"] or "–"), ("Poeng", "–" if lot["score"] is None else f"{lot['score']:.0f}"),
               ("Areal", f"{(lot['area_m2'] or 0) / 1000:.1f} daa".replace(".", ",")),
               (f"Boliger ({m2:.0f} m²/bolig)" if m2 else "Boliger (anslag)", "–" if homes is None else f"{homes}"),
               ("CRM-status", lot["status"])]
    y = pdf.get_y()
    width = (pdf.w - LEFT - RIGHT) / len(figures)
    for i, (label, value) in enumerate(figures):
        pdf.set_xy(LEFT + i * width, y)
        pdf.set_font(pdf.family, "", 7.5)
        pdf.cell(width, 4, pdf.clean(label))
        pdf.set_xy(LEFT + i * width, y + 4)
        pdf.set_font(pdf.family, "B", 11)
        pdf.cell(width, 6, pdf.clean(value))
    y += 13
    draw_map(pdf, LEFT, y, MAP_W, MAP_H, [geom], parcels)
    draw_map(pdf, pdf.w - RIGHT - MAP_W, y, MAP_W, MAP_H, [geom.buffer(max(150.0, geom.length / 20))], boundary,
             frame_of=boundary or [geom])
    pdf.set_font(pdf.family, "", 7.5)
    pdf.set_xy(LEFT, y + MAP_H + 1)
    pdf.multi_cell(MAP_W, 3.6, pdf.clean("Tomten (grønn) med teigene (grå linjer)."))
    pdf.set_xy(pdf.w - RIGHT - MAP_W, y + MAP_H + 1)
    pdf.multi_cell(MAP_W, 3.6, pdf.clean("Tomten (grønn, forstørret markering) i kommunen (grense i grått)."))
    pdf.set_xy(LEFT, y + MAP_H + 9)

    _heading(pdf, "Hvorfor denne tomten")
    pdf.multi_cell(0, 4.6, pdf.clean(exp.get("text") or "Ingen forklaring lagret."), new_x="LMARGIN", new_y="NEXT")

    _heading(pdf, "Poeng, faktor for faktor")
    weights = detail.get("weights", {})
    factor_rows = [[FACTOR_NAMES.get(name, name), "ukjent" if f.get("value") is None else f"{f['value']:.2f}".replace(".", ","),
                    f"{weights.get(name, 0):.0f}", f"{f.get('points', 0):.1f}".replace(".", ","), f.get("reason", "")]
                   for name, f in detail.get("factors", {}).items()]
    if factor_rows:
        _table(pdf, ["Faktor", "Verdi", "Vekt", "Poeng", "Begrunnelse"], factor_rows, [30, 14, 12, 14, 95])
    else:
        pdf.multi_cell(0, 4.6, "Tomten er ikke poengsatt ennå.", new_x="LMARGIN", new_y="NEXT")

    _heading(pdf, "Reguleringsplaner som berører tomten")
    plan_rows = plans.lot_plans(store, lot_id)
    if plan_rows:
        _table(pdf, ["Plan", "Navn", "Status", "År", "Forhold", "Les planen (lenke)"],
               [[p["Plan"], p["Navn"], p["Status"], p["Vedtatt"], p["Forhold"], p["Kilde"] or "–"] for p in plan_rows],
               [20, 38, 28, 10, 32, 37], links=[p["Les planen"] for p in plan_rows])
    else:
        pdf.multi_cell(0, 4.6, "Ingen vedtatte eller pågående reguleringsplaner over sonen.", new_x="LMARGIN", new_y="NEXT")

    features = loads(store.scalar("SELECT features FROM lot_features WHERE lot_id = ?", (lot_id,)), {})
    _heading(pdf, "Restriksjoner og hensyn")
    free = features.get("free_share")
    pdf.multi_cell(0, 4.6, pdf.clean("Ukjent (ingen restriksjonsdata lastet)." if free is None else
                                     ("Ingen kjente restriksjoner." if free >= 0.9999 else
                                      f"{round(free * 100)} % av tomten er fri for restriksjoner; berørt av: {features.get('constraints') or 'ukjent'}.")),
                   new_x="LMARGIN", new_y="NEXT")

    _heading(pdf, "Teiger")
    parcel_rows = owners_mod.lot_parcels_and_owners(store, lot_id)
    seen: dict[str, list[Any]] = {}
    for r in parcel_rows:
        key = f"{r['gnr']}/{r['bnr']}" + (f"/{r['fnr']}" if r["fnr"] else "") + (f"/{r['snr']}" if r["snr"] else "")
        entry = seen.setdefault(key, [key, f"{r['overlap_m2']:.0f}", []])
        if with_owners and r["name"]:
            entry[2].append(r["name"] + (" (reservert)" if r["reserved"] else ""))
    if seen:
        header = ["Gnr/bnr", "Overlapp m²", *(["Eiere"] if with_owners else [])]
        body = [[k, o, *(["; ".join(n) or "ukjent"] if with_owners else [])] for k, o, n in seen.values()]
        _table(pdf, header, body, [30, 25, 110] if with_owners else [30, 25])
    else:
        pdf.multi_cell(0, 4.6, "Ingen teiger koblet til tomten (hent teiger under «Kommuner»).", new_x="LMARGIN", new_y="NEXT")

    _heading(pdf, f"CRM: status {lot['status']}")
    history = crm.events(store, lot_id)
    if history:
        _table(pdf, ["Dato", "Hvem", "Hva", "Notat"],
               [[str(e["at"])[:10], e["who"], e["kind"] + (f": {e['old_status']} → {e['new_status']}" if e["new_status"] else ""),
                 e["note"] or ""] for e in history], [20, 28, 45, 72])
    else:
        pdf.multi_cell(0, 4.6, "Ingen aktivitet registrert ennå.", new_x="LMARGIN", new_y="NEXT")
