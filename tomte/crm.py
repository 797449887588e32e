"""CRM pipeline: lot statuses, notes and an activity log that is never rewritten.

``crm_events`` is append-only (SQLite triggers refuse UPDATE and DELETE). A lot's current
status is kept on ``lots.status`` for fast listing; every change is also an event.
"""

from __future__ import annotations

from tomte.errors import InvalidData, NotFound
from tomte.store import Store, now


def lineage_sql(start: str) -> str:
    """A query for a lot and every lot its analyst data moved from; ``start`` is ``?`` or a column."""
    return (f"WITH RECURSIVE anc(id) AS (SELECT {start} UNION "
            "SELECT g.old_lot_id FROM lot_lineage g JOIN anc ON g.new_lot_id = anc.id) SELECT id FROM anc")


STATUSES = ["Ny", "Vurderes", "Kontaktet", "I dialog", "LOI/opsjon", "Avslått", "Arkivert"]


def normalise_status(text: str) -> str:
    """Accept a status case-insensitively (``"i dialog"``, ``"loi"``)."""
    wanted = text.strip().lower()
    for status in STATUSES:
        if status.lower() == wanted or status.lower().split("/")[0] == wanted:
            return status
    raise InvalidData(f"Ukjent status «{text}»; gyldige: {', '.join(STATUSES)}.")


def successor(store: Store, lot_id: str) -> str | None:
    """The living lot an archived lot's analyst data moved to (following the chain), if any."""
    current, seen = lot_id, {lot_id}
    while True:
        row = store.rows("SELECT g.new_lot_id, l.active FROM lot_lineage g JOIN lots l ON l.lot_id = g.new_lot_id "
                         "WHERE g.old_lot_id = ? ORDER BY l.active DESC, g.overlap_share DESC LIMIT 1", (current,))
        if not row or row[0]["new_lot_id"] in seen:
            return None
        current = row[0]["new_lot_id"]
        seen.add(current)
        if row[0]["active"]:
            return current


def set_status(store: Store, lot_id: str, status: str | None, note: str | None, who: str,
               follow: bool = False) -> dict[str, str | None]:
    """Change a living lot's status and/or add a note; both are logged as events.

    The check that the lot is active runs in the same write transaction as the change, so a write
    cannot land on a lot that a concurrent analysis has just archived. An archived lot is refused
    with its successor's id, or, with ``follow``, the change goes to the successor.
    """
    new = normalise_status(status) if status else None
    if new is None and not (note and note.strip()):
        raise InvalidData("Oppgi en ny status (--status) eller et notat (--note).")
    stamp = now()
    with store.transaction() as conn:
        row = store.rows("SELECT status, active, archived_reason FROM lots WHERE lot_id = ?", (lot_id,))
        if not row:
            raise NotFound(f"Fant ingen tomt med id {lot_id}; se `lots --kommune KNR --json`.")
        if not row[0]["active"]:
            heir = successor(store, lot_id)
            if heir is None:
                raise InvalidData(f"Tomten {lot_id} er arkivert ({row[0]['archived_reason']}) og har ingen etterfølger; "
                                  "statusen er ikke endret.")
            if not follow:
                raise InvalidData(f"Tomten {lot_id} er arkivert; den lever videre som {heir}. Sett status der, "
                                  "eller kjør igjen med --follow.")
            lot_id = heir
            row = store.rows("SELECT status FROM lots WHERE lot_id = ?", (lot_id,))
        old = row[0]["status"]
        if new is not None and new != old:
            conn.execute("UPDATE lots SET status = ?, updated_at = ? WHERE lot_id = ?", (new, stamp, lot_id))
            conn.execute(
                "INSERT INTO crm_events (lot_id, at, who, kind, old_status, new_status) VALUES (?, ?, ?, 'status', ?, ?)",
                (lot_id, stamp, who, old, new),
            )
        if note and note.strip():
            conn.execute(
                "INSERT INTO crm_events (lot_id, at, who, kind, note) VALUES (?, ?, ?, 'notat', ?)",
                (lot_id, stamp, who, note.strip()),
            )
    return {"lot_id": lot_id, "old_status": old, "status": new or old}


def events(store: Store, lot_id: str) -> list[dict]:
    """The lot's activity log, including events of the lots its data moved from."""
    return store.rows(
        "SELECT * FROM crm_events WHERE lot_id IN (" + lineage_sql("?") + ") ORDER BY id",
        (lot_id,),
    )


def move_lots(store: Store, lot_ids: list[str], status: str, who: str) -> int:
    """Give several lots the same status in one transaction (the pipeline board): all or none; returns how many."""
    with store.transaction():
        for lot_id in lot_ids:
            set_status(store, lot_id, status, None, who)
    return len(lot_ids)


CONTACTED = ("Kontaktet", "I dialog", "LOI/opsjon")


def funnel(store: Store, qualified_from: float = 60.0) -> list[dict]:
    """The funnel per kommune: analysed, qualified (score > 60), contacted, in dialogue, LOI/option, dwellings."""
    return store.rows(
        "SELECT s.kommunenummer, k.navn, s.kp_count AS analysed, "
        "SUM(l.score > ?) AS qualified, SUM(l.status IN (?, ?, ?)) AS contacted, SUM(l.status = 'I dialog') AS dialogue, "
        "SUM(l.status = 'LOI/opsjon') AS loi, "
        "COALESCE(SUM(CASE WHEN l.score > ? THEN json_extract(l.score_detail, '$.dwellings') END), 0) AS dwellings "
        "FROM plan_data_state s JOIN kommuner k USING (kommunenummer) "
        "LEFT JOIN lots l ON l.kommunenummer = s.kommunenummer AND l.active = 1 "
        "GROUP BY s.kommunenummer ORDER BY s.kommunenummer",
        (qualified_from, *CONTACTED, qualified_from))
