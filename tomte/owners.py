"""Owners (hjemmelshavere) of the parcels under a lot, and the personal-data rules around them.

Owner data is personal data (GDPR, utleveringsforskriften). tomte keeps it only where needed:
names and postal addresses per parcel (never the national identity number), with where they came
from; every look-up is logged with who, when, which lot and the legal basis; a reservation flag
(Reservasjonsregisteret) blocks letters; :func:`purge` removes owners for good, including from the
SQLite file's free pages (``secure_delete``, WAL checkpoint and VACUUM). Nothing here writes owner
data to logs; exports leave it out unless the analyst asks.
"""

from __future__ import annotations

import csv
import mmap
import os
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tomte.errors import InvalidData, NotFound, TomteError
from tomte.store import Store, now


class PurgeBlocked(TomteError):
    """Owners were deleted, but it cannot be proven that their bytes are gone from the file yet."""


KINDS = ("person", "organisasjon")
NAME_SEPARATOR = "\n"  # joins names in exports; a stored name never contains a line break (see clean_name)


def clean_name(name: str) -> str:
    """A name as stored: control characters and line breaks become spaces, runs of space one space."""
    return " ".join("".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in name).split())
OUTREACH_STEPS = [(0, "brev", "Grunneierbrev"), (3, "e-post", "Oppfølging på e-post"), (14, "telefon", "Telefonsamtale"),
                  (30, "brev 2", "Andre brev")]


@dataclass(frozen=True)
class Owner:
    """An owner of a parcel."""

    kommunenummer: str
    gnr: int
    bnr: int
    fnr: int
    snr: int
    name: str
    kind: str = "person"
    address: str = ""
    share: str = ""
    source: str = "manuell"


def normalise_share(text: str | None) -> str:
    """An ownership share as a fraction, as the Matrikkel writes it: ``1/2``, ``50 %`` → ``1/2``, ``0,25`` → ``1/4``,
    ``100 %`` → ``1/1``; empty stays empty (unknown). Anything else («halvparten», ``3/2``, ``120 %``) is refused."""
    from fractions import Fraction

    raw = str(text or "").strip().replace(" ", "").replace("\u00a0", "")
    if not raw:
        return ""
    try:
        if "/" in raw:
            top, bottom = raw.split("/", 1)
            value = Fraction(int(top), int(bottom))
        elif raw.endswith("%"):
            value = Fraction(raw[:-1].replace(",", ".")) / 100
        else:
            value = Fraction(raw.replace(",", "."))
    except (ValueError, ZeroDivisionError):
        raise InvalidData(f"Andelen «{text}» er ikke en brøk eller prosent; skriv f.eks. 1/2, 50 % eller 0,5.") from None
    if not 0 < value <= 1:
        raise InvalidData(f"Andelen «{text}» må være mellom 0 og 1 (0 og 100 %).")
    value = value.limit_denominator(10_000)
    return f"{value.numerator}/{value.denominator}"


def add_owner(store: Store, owner: Owner) -> int:
    """Store an owner (manual entry, CSV import or Matrikkel look-up; same data model); the share is
    checked and written as a fraction (:func:`normalise_share`)."""
    name = clean_name(owner.name)
    if not name:
        raise InvalidData("Eieren må ha et navn.")
    if owner.kind not in KINDS:
        raise InvalidData(f"Eiertype må være {' eller '.join(KINDS)}.")
    with store.transaction() as conn:
        cur = conn.execute(
            "INSERT INTO owners (kommunenummer, gnr, bnr, fnr, snr, name, kind, address, share, source, reserved, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)",
            (owner.kommunenummer, owner.gnr, owner.bnr, owner.fnr, owner.snr, name, owner.kind, owner.address.strip(),
             normalise_share(owner.share), owner.source, now()))
    return int(cur.lastrowid)


def replace_parcel_owners(store: Store, kommunenummer: str, gnr: int, bnr: int, fnr: int, snr: int, owners: list[Owner]) -> None:
    """Replace a parcel's owners (after a fresh look-up), keeping reservation flags by name."""
    with store.transaction() as conn:
        reserved = {r[0] for r in conn.execute(
            "SELECT lower(name) FROM owners WHERE kommunenummer = ? AND gnr = ? AND bnr = ? AND fnr = ? AND snr = ? AND reserved = 1",
            (kommunenummer, gnr, bnr, fnr, snr))}
        conn.execute("DELETE FROM owners WHERE kommunenummer = ? AND gnr = ? AND bnr = ? AND fnr = ? AND snr = ?",
                     (kommunenummer, gnr, bnr, fnr, snr))
        conn.executemany(
            "INSERT INTO owners (kommunenummer, gnr, bnr, fnr, snr, name, kind, address, share, source, reserved, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(o.kommunenummer, o.gnr, o.bnr, o.fnr, o.snr, clean_name(o.name), o.kind, o.address, o.share, o.source,
              int(clean_name(o.name).lower() in reserved), now()) for o in owners])


def import_csv(store: Store, path: str | Path) -> int:
    """Owners from CSV: ``kommunenummer,gnr,bnr[,fnr,snr],navn[,type,adresse,andel]`` (UTF-8, comma or semicolon)."""
    text = Path(path).read_text(encoding="utf-8-sig")
    dialect = csv.Sniffer().sniff(text.splitlines()[0], delimiters=",;")
    rows = list(csv.DictReader(text.splitlines(), dialect=dialect))
    if not rows or not {"kommunenummer", "gnr", "bnr", "navn"} <= set(rows[0]):
        raise InvalidData("CSV-filen må ha kolonnene kommunenummer, gnr, bnr og navn (og gjerne fnr, snr, type, adresse, andel).")
    parsed = []
    for i, row in enumerate(rows, start=2):  # every line is checked before any is stored: a bad file stores nothing
        try:
            owner = Owner(str(row["kommunenummer"]).zfill(4), int(row["gnr"]), int(row["bnr"]), int(row.get("fnr") or 0),
                          int(row.get("snr") or 0), row["navn"], (row.get("type") or "person").strip().lower(),
                          row.get("adresse") or "", normalise_share(row.get("andel")), "csv")
        except ValueError as exc:
            raise InvalidData(f"Linje {i} i CSV-filen: gnr/bnr må være tall ({exc}).") from exc
        except InvalidData as exc:
            raise InvalidData(f"Linje {i} i CSV-filen: {exc}") from exc
        parsed.append(owner)
    with store.transaction():
        for owner in parsed:
            add_owner(store, owner)
    return len(parsed)


def set_reserved(store: Store, owner_id: int, reserved: bool) -> None:
    """Set or clear the reservation flag (Reservasjonsregisteret) by hand."""
    with store.transaction() as conn:
        if conn.execute("UPDATE owners SET reserved = ? WHERE id = ?", (int(reserved), owner_id)).rowcount == 0:
            raise NotFound(f"Fant ingen eier med id {owner_id}.")


def import_reservations(store: Store, path: str | Path) -> int:
    """Mark owners reserved from a washed list (CSV with ``navn`` and optionally ``adresse``); returns matches."""
    rows = list(csv.DictReader(Path(path).read_text(encoding="utf-8-sig").splitlines()))
    if rows and "navn" not in rows[0]:
        raise InvalidData("Reservasjonslisten må ha kolonnen navn (og gjerne adresse).")
    matched = 0
    with store.transaction() as conn:
        for row in rows:
            sql, params = "UPDATE owners SET reserved = 1 WHERE lower(trim(name)) = lower(trim(?))", [row["navn"]]
            if row.get("adresse"):
                sql += " AND lower(trim(address)) = lower(trim(?))"
                params.append(row["adresse"])
            matched += conn.execute(sql, params).rowcount
    return matched


def lot_parcels_and_owners(store: Store, lot_id: str) -> list[dict[str, Any]]:
    """Parcels touching a lot with their owners (one row per owner, or one per parcel without owners)."""
    if not store.rows("SELECT 1 FROM lots WHERE lot_id = ?", (lot_id,)):
        raise NotFound(f"Fant ingen tomt med id {lot_id}.")
    return store.rows(
        "SELECT p.kommunenummer, p.matrikkelnummer, p.gnr, p.bnr, p.fnr, p.snr, ROUND(lp.overlap_m2) AS overlap_m2, "
        "o.id AS owner_id, o.name, o.kind, o.address, o.share, o.source, o.reserved "
        "FROM lot_parcels lp JOIN parcels p ON p.id = lp.parcel_id "
        "LEFT JOIN owners o ON o.kommunenummer = p.kommunenummer AND o.gnr = p.gnr AND o.bnr = p.bnr AND o.fnr = p.fnr AND o.snr = p.snr "
        "WHERE lp.lot_id = ? ORDER BY lp.overlap_m2 DESC, o.name", (lot_id,))


def owner_names_by_lot(store: Store, kommunenummer: str) -> dict[str, list[str]]:
    """Owner names per active lot, one row per owner (never a joined string split again), sorted."""
    rows = store.rows(
        "SELECT DISTINCT lp.lot_id, o.name FROM lot_parcels lp JOIN lots l ON l.lot_id = lp.lot_id "
        "JOIN parcels p ON p.id = lp.parcel_id JOIN owners o ON o.kommunenummer = p.kommunenummer AND o.gnr = p.gnr "
        "AND o.bnr = p.bnr AND o.fnr = p.fnr AND o.snr = p.snr WHERE l.kommunenummer = ? AND l.active = 1 "
        "ORDER BY lp.lot_id, o.name", (kommunenummer,))
    out: dict[str, list[str]] = {}
    for r in rows:
        out.setdefault(r["lot_id"], []).append(r["name"])
    return out


def log_lookup(store: Store, who: str, lot_id: str | None, basis: str, parcels: int, outcome: str) -> None:
    """Record a look-up of owner data: who, when, which lot, on which legal basis (no owner data in the log)."""
    if not basis.strip():
        raise InvalidData("Oppgi rettslig grunnlag for oppslaget (f.eks. «berettiget interesse, utleveringsforskriften § 4»).")
    with store.transaction() as conn:
        conn.execute("INSERT INTO owner_lookups (at, who, lot_id, basis, parcels, outcome) VALUES (?, ?, ?, ?, ?, ?)",
                     (now(), who, lot_id, basis.strip(), parcels, outcome))


def lookup_log(store: Store, limit: int = 200) -> list[dict[str, Any]]:
    """Latest owner look-ups."""
    return store.rows("SELECT at, who, lot_id, basis, parcels, outcome FROM owner_lookups ORDER BY id DESC LIMIT ?", (limit,))


def _holders(path: Path) -> int:
    """How many other processes hold the database file open (Linux ``/proc``; 0 where unknown)."""
    wanted = {str(path.resolve()), str(path.resolve()) + "-wal"}
    count = 0
    for proc in Path("/proc").glob("[0-9]*"):
        if proc.name == str(os.getpid()):
            continue
        try:
            if any(os.readlink(fd) in wanted for fd in (proc / "fd").iterdir()):
                count += 1
        except OSError:
            continue
    return count


def _scrub(store: Store, names: set[str]) -> None:
    """Checkpoint, vacuum, checkpoint again and look for the names in the file's bytes; raise unless proven."""
    conn = store.conn
    conn.execute("PRAGMA busy_timeout = 2000")
    try:
        busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        if not busy:
            try:
                conn.execute("VACUUM")
            except Exception:  # noqa: BLE001 - sqlite's OperationalError (locked), from whichever sqlite module
                busy = 1
        busy = busy or conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
    finally:
        conn.execute("PRAGMA busy_timeout = 30000")
    path = Path(store.path) if store.path is not None else None
    if path is None:
        return
    wal = path.with_name(path.name + "-wal")
    if busy or (wal.exists() and wal.stat().st_size > 0):
        others = _holders(path)
        who = f"{others} andre prosesser holder filen åpen" if others else "en annen prosess holder filen åpen"
        raise PurgeBlocked(f"Eierne er slettet fra tabellene, men {who} (appen, QGIS eller en synk), så de gamle sidene "
                           "kan ikke overskrives ennå; lukk dem og kjør purge-owners igjen.")
    found = 0
    for file in (path, wal):
        if file.exists() and file.stat().st_size:
            with open(file, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
                found += sum(1 for name in names if data.find(name.encode("utf-8")) >= 0)
    if found:
        raise PurgeBlocked(f"Eierne er slettet fra tabellene, men {found} av navnene finnes fortsatt i databasefilen "
                           "(kanskje i andre data, f.eks. en adresse eller et notat); sjekk før du regner dem som slettet.")


def purge(store: Store, older_than_days: int | None = None) -> int:
    """Delete owners (all, or those stored more than ``older_than_days`` ago) for good; returns how many.

    Proven, not assumed (issue 13): ``secure_delete`` zeroes the freed pages; the WAL is checkpointed
    with TRUNCATE and the result checked, the file vacuumed and checkpointed again; then the file and
    its WAL are searched for the deleted names (those of 8 characters or more, held in memory only).
    When another connection blocks the checkpoint (the app mid-query, QGIS holding the file open),
    :class:`PurgeBlocked` says so and the caller exits non-zero; running it again once they are
    closed finishes the job.
    """
    sql, params = "DELETE FROM owners", []
    if older_than_days is not None:
        if older_than_days < 0:
            raise InvalidData("--older-than må være et positivt antall dager.")
        cutoff = (datetime.now(UTC) - timedelta(days=older_than_days)).replace(microsecond=0).isoformat()
        sql += " WHERE created_at < ?"
        params.append(cutoff)
    store.execute("PRAGMA secure_delete = ON")
    with store.transaction() as conn:
        names = {r[0] for r in conn.execute(sql.replace("DELETE FROM owners", "SELECT name FROM owners"), params) if len(r[0]) >= 8}
        removed = conn.execute(sql, params).rowcount
        conn.execute("DELETE FROM outreach WHERE owner_id NOT IN (SELECT id FROM owners)")
    _scrub(store, names)
    return int(removed)


def start_outreach(store: Store, lot_id: str, owner_id: int, start: datetime | None = None) -> None:
    """Plan the outreach sequence for an owner: day 0 letter, day 3 e-mail, day 14 phone, day 30 second letter."""
    day0 = (start or datetime.now(UTC)).date()
    with store.transaction() as conn:
        conn.execute("DELETE FROM outreach WHERE lot_id = ? AND owner_id = ? AND done_at IS NULL", (lot_id, owner_id))
        conn.executemany("INSERT INTO outreach (lot_id, owner_id, step, action, due) VALUES (?, ?, ?, ?, ?)",
                         [(lot_id, owner_id, i, action, (day0 + timedelta(days=d)).isoformat()) for i, (d, action, _) in enumerate(OUTREACH_STEPS)])


def start_outreach_for_lots(store: Store, lot_ids: list[str]) -> int:
    """Start the sequence for every non-reserved owner of the lots who has none yet (letters sent
    today); returns how many were started.

    An owner whose sequence is already planned keeps its dates: making the letters again (a
    reprint, one more lot in the batch) must not move the follow-ups the team works by (issue 15).
    """
    count = 0
    for lot_id in lot_ids:
        planned = {r["owner_id"] for r in store.rows("SELECT DISTINCT owner_id FROM outreach WHERE lot_id = ?", (lot_id,))}
        for row in lot_parcels_and_owners(store, lot_id):
            if row["owner_id"] and not row["reserved"] and row["owner_id"] not in planned:
                start_outreach(store, lot_id, row["owner_id"])
                planned.add(row["owner_id"])
                count += 1
    return count


def due(store: Store, today: str | None = None) -> list[dict[str, Any]]:
    """Outreach actions due today or earlier and not done (no letter steps for reserved owners)."""
    day = today or datetime.now(UTC).date().isoformat()
    return store.rows(
        "SELECT r.id, r.lot_id, r.action, r.due, o.name, o.reserved FROM outreach r JOIN owners o ON o.id = r.owner_id "
        "WHERE r.done_at IS NULL AND r.due <= ? AND NOT (o.reserved = 1 AND r.action LIKE 'brev%') ORDER BY r.due, r.lot_id",
        (day,))


def mark_done(store: Store, outreach_id: int, who: str) -> None:
    """Mark an outreach action done (and log it on the lot)."""
    with store.transaction() as conn:
        row = conn.execute("SELECT lot_id, action FROM outreach WHERE id = ?", (outreach_id,)).fetchone()
        if row is None:
            raise NotFound(f"Fant ingen oppfølging med id {outreach_id}.")
        conn.execute("UPDATE outreach SET done_at = ? WHERE id = ?", (now(), outreach_id))
        conn.execute("INSERT INTO crm_events (lot_id, at, who, kind, note) VALUES (?, ?, ?, 'oppfølging', ?)",
                     (row[0], now(), who, f"Utført: {row[1]}"))
