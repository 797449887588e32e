"""``python -m tomte --db PATH <command>``: the command-line interface.

Library errors (:class:`~tomte.errors.TomteError`) become one line on stderr and exit code 1;
bad arguments exit 2 (argparse); anything unexpected prints one line and exits 3 (``--debug``
shows the traceback). Progress goes to stderr, results to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

from tomte import __version__, crm, pipeline
from tomte.analysis import lot_rows
from tomte.config import DifferanseSettings, Settings
from tomte.errors import InvalidData, TomteError
from tomte.export import FORMATS, TIER_CHOICES, Selection, export_lots
from tomte.store import open_store

CLI_BASIS = "oppslag i CLI av behandlingsansvarliges egne ansatte"
LOT_FIELDS = ["lot_id", "kommunenummer", "arealformal", "arealbruksstatus", "area_m2", "score", "tier", "status", "flags"]


def _progress(quiet: bool):
    def say(msg: str) -> None:
        if not quiet:
            print(msg, file=sys.stderr, flush=True)
    return say


DIFF_OPTIONS = {  # CLI option → DifferanseSettings field
    "fortetting": "include_fortetting", "spredt": "include_spredt", "min_area": "min_area_m2", "mode": "mode",
    "bolig_koder": "housing_sure", "mulig_koder": "housing_possible", "bolig_koder_1985": "housing_sure_1985",
    "mulig_koder_1985": "housing_possible_1985", "status": "statuses", "vedtatt_status": "approved_planstatus",
    "under_arbeid_status": "in_progress_planstatus", "nivaa": "subtracting_levels", "dekning": "whole_zone_max_covered",
}


CURVE_CHOICES = {"standard": "Standard (logaritmisk)", "som-skrevet": "Masterdokument, som skrevet"}


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env(args.db)
    if getattr(args, "kurver", None):
        from tomte.scoring import with_curves

        settings = replace(settings, scoring=with_curves(settings.scoring, CURVE_CHOICES[args.kurver]))
    options: dict[str, Any] = {}
    for opt, field in DIFF_OPTIONS.items():
        value = getattr(args, opt, None)
        if value not in (None, False):
            options[field] = value
    if not options:
        return settings
    return replace(settings, differanse=DifferanseSettings.from_options(settings.differanse, **options))


def cmd_demo(args, settings, say) -> int:
    store = open_store(settings.db_path)
    pipeline.build_demo_database(store, settings, say)
    print(f"Demo-database (SYNTETISKE data) klar: {settings.db_path} ({store.counts()['lots']} tomter)")
    return 0


def cmd_import(args, settings, say) -> int:
    store = open_store(settings.db_path)
    result = pipeline.import_plans(store, args.kommune, args.kp, args.rp, args.crs, say, force=args.force)
    print(result.summary())
    return 0


def cmd_fetch(args, settings, say) -> int:
    store = open_store(settings.db_path)
    result = pipeline.fetch_kommune(store, settings, args.kommune, args.sources, args.refresh, say, force=args.force)
    print(result.summary() + f" ({result.requests} forespørsler)")
    for unit, message in result.failed.items():
        print(f"Feil: {message} (enheten «{unit}» beholder tidligere data)", file=sys.stderr)
    return 0 if result.ok else 1


def cmd_analyse(args, settings, say) -> int:
    store = open_store(settings.db_path, create=False)
    t0 = time.perf_counter()
    result = pipeline.analyse(store, settings, args.kommune, say)
    print(f"{result.summary()} på {time.perf_counter() - t0:.2f} s")
    return 0


def cmd_lots(args, settings, say) -> int:
    store = open_store(settings.db_path, create=False)
    k = pipeline.resolve_kommune(store, args.kommune)
    rows = lot_rows(store, k.kommunenummer, include_archived=args.all)
    if args.json:
        json.dump(rows, sys.stdout, ensure_ascii=False, indent=1)
        print()
    else:
        for r in rows:
            print(f"{r['lot_id']}  {r['arealformal'] or '-':>4}/{r['arealbruksstatus'] or '-'}  {r['area_m2'] / 1000:8.1f} daa  "
                  f"{r['tier'] or '-'}  {r['status']:<10} {r['flags']}")
        print(f"{len(rows)} tomter", file=sys.stderr)
    return 0


def export_selection(args) -> Selection:
    """``--tier A,B``, ``--status "I dialog"`` (repeatable or comma-separated) and ``--lot ID`` (repeatable)."""
    def listed(values: list[str] | None) -> list[str]:
        return [v.strip() for value in values or [] for v in value.split(",") if v.strip()]

    tiers = [t.upper() if t != "-" else "–" for t in listed(args.tier)]
    bad = [t for t in tiers if t not in TIER_CHOICES]
    if bad:
        raise InvalidData(f"Ukjent klasse «{bad[0]}»; bruk A, B, C, D eller – (uten poeng).")
    return Selection(tuple(tiers), tuple(crm.normalise_status(s) for s in listed(args.status)), tuple(listed(args.lot)))


def cmd_dossier(args, settings, say) -> int:
    from tomte.dossier import dossier_pdf
    from tomte.export import checked_target

    store = open_store(settings.db_path, create=False)
    path = checked_target(store, args.out, args.overwrite)
    pdf = dossier_pdf(store, args.lot, with_owners=args.with_owners, who=settings.user, basis=args.basis or "")
    try:
        path.write_bytes(pdf)
    except OSError as exc:
        raise InvalidData(f"Kunne ikke skrive {path}: {exc.strerror or exc}.") from exc
    print(f"Skrev dossier for {len(args.lot)} tomt{'er' if len(args.lot) != 1 else ''} til {args.out}"
          + (" (med eiernavn; logget)" if args.with_owners else ""))
    return 0


def cmd_export(args, settings, say) -> int:
    store = open_store(settings.db_path, create=False)
    k = pipeline.resolve_kommune(store, args.kommune)
    n = export_lots(store, k.kommunenummer, args.format, args.out, with_owners=args.with_owners, overwrite=args.overwrite,
                    selection=export_selection(args))
    if args.with_owners:
        from tomte import owners

        owners.log_lookup(store, settings.user, None, args.basis or CLI_BASIS, 0,
                          f"eksport med eiernavn (CLI): {n} tomter i {k.kommunenummer} til {Path(args.out).name}")
    print(f"Skrev {n} tomter til {args.out} ({args.format})")
    return 0


def cmd_crm_set(args, settings, say) -> int:
    store = open_store(settings.db_path, create=False)
    result = crm.set_status(store, args.lot, args.status, args.note, settings.user, follow=args.follow)
    print(f"{result['lot_id']}: {result['old_status']} → {result['status']}")
    return 0


def cmd_sync(args, settings, say) -> int:
    import logging

    from tomte.sync import run_sync

    interactive = sys.stderr.isatty()
    if not interactive:  # cron / systemd: quiet, structured log lines instead of progress
        logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s level=%(levelname)s %(name)s %(message)s")
    store = open_store(settings.db_path)
    report = run_sync(store, settings, args.kommune or None, args.sources, args.refresh, say if interactive else (lambda _m: None),
                      workers=args.workers)
    if args.report:
        Path(args.report).write_text(report.render(str(args.report).endswith(".html")), encoding="utf-8")
    print(report.summary())
    return 0 if report.ok else 1


def cmd_discover(args, settings, say) -> int:
    from tomte.sources._http import Http
    from tomte.sources.discovery import KARTKATALOG, discover

    store = open_store(settings.db_path)
    k = pipeline.resolve_kommune(store, args.kommune)
    http = Http(settings.http, refresh=True)
    proposals = discover(http, k.kommunenummer, k.navn, args.kartkatalog or KARTKATALOG)
    if not proposals:
        print(f"Fant ingen plantjenester for {k.navn} i Kartkatalogen.", file=sys.stderr)
        return 1
    print(f"# Forslag til kilder for {k.navn} ({k.kommunenummer}); sjekk dem og legg dem i en --sources-fil.")
    for proposal in proposals:
        print(proposal.toml())
    return 0


def cmd_owners(args, settings, say) -> int:
    from tomte import owners

    store = open_store(settings.db_path, create=False)
    if args.lookup:
        result = pipeline.lookup_owners(store, settings, args.lot, args.basis or "", settings.user, progress=say)
        say(f"Matrikkel: {result['owners']} eiere for {result['parcels']} teiger ({result['missing']} ukjente)")
    rows = owners.lot_parcels_and_owners(store, args.lot)
    shown = sum(1 for r in rows if r["name"])
    if shown and not args.lookup:  # every read of owner data is logged (a look-up logs itself); no owner data in the log
        owners.log_lookup(store, settings.user, args.lot, args.basis or CLI_BASIS, len({r["matrikkelnummer"] for r in rows}),
                          f"vist {shown} eiere (CLI)")
    if args.json:
        json.dump(rows, sys.stdout, ensure_ascii=False, indent=1)
        print()
    else:
        for r in rows:
            owner = f"{r['name']} ({r['kind']}, {r['share'] or 'andel ukjent'}){' [reservert]' if r['reserved'] else ''}" if r["name"] else "ingen eiere registrert"
            print(f"{r['kommunenummer']}-{r['matrikkelnummer']:<12} {r['overlap_m2']:>8.0f} m²  {owner}")
    return 0


def cmd_purge_owners(args, settings, say) -> int:
    from tomte import owners

    store = open_store(settings.db_path, create=False)
    days = args.older_than if args.older_than is not None else settings.owner_retention_days
    removed = owners.purge(store, days if args.older_than is not None or days is not None else None)
    print(f"Slettet {removed} eiere for godt" + (f" (eldre enn {days} dager)" if days is not None else "")
          + "; filen er sjekket (WAL tømt, VACUUM, navnene finnes ikke lenger i filen)")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with tomte's contract for bad input: one Norwegian ``Feil:`` sentence and exit 1 (not usage text
    in English and exit 2). ``--help`` is unchanged."""

    def error(self, message: str) -> NoReturn:
        import re

        text = message
        for pattern, norsk in (
            (r"argument (\S+): invalid choice: '([^']*)' \(choose from (.*)\)", r"Ugyldig verdi «\2» for \1; velg en av \3."),
            (r"the following arguments are required: (.*)", r"Mangler \1."),
            (r"unrecognized arguments: (.*)", r"Ukjent argument: \1."),
            (r"argument (\S+): invalid (\w+) value: '([^']*)'", r"Ugyldig verdi «\3» for \1 (ventet et tall)."),
            (r"argument (\S+): expected one argument", r"\1 trenger en verdi."),
        ):
            if re.fullmatch(pattern, message):
                text = re.sub(pattern, norsk, message)
                break
        print(f"Feil: {text} Se `{self.prog} --help`.", file=sys.stderr)
        raise SystemExit(1)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used to render ``--help``)."""
    p = _Parser(prog="python -m tomte", description="tomte: finn byggbar tomtegrunn for sosial boligbygging.")
    p.add_argument("--db", help="SpatiaLite-fil (standard: $TOMTE_DB eller data/tomte.sqlite)")
    p.add_argument("--quiet", action="store_true", help="ingen fremdriftsmeldinger")
    p.add_argument("--debug", action="store_true", help="vis full feilsporing ved uventede feil")
    p.add_argument("--version", action="version", version=f"tomte {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("demo", help="bygg demo-databasen med SYNTETISKE plandata for Nordre Follo, Ås og Nesodden")
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("import-plans", help="importer plandata fra filer (SOSI, SOSI-GML 3.2, GeoJSON, GeoPackage)")
    s.add_argument("--kommune", required=True, help="kommunenummer (også tidligere numre)")
    s.add_argument("--kp", help="fil med kommuneplanens arealformål (KpArealformålOmråde/KpArealbrukOmråde)")
    s.add_argument("--rp", help="fil med reguleringsplanområder (RpOmråde)")
    s.add_argument("--crs", help="koordinatsystem for filer uten (f.eks. EPSG:25832)")
    s.add_argument("--force", action="store_true", help="bytt ut selv om den nye kopien har under halvparten så mange objekter")
    s.set_defaults(func=cmd_import)

    s = sub.add_parser("fetch", help="hent plandata og teiger for en kommune fra de konfigurerte tjenestene")
    s.add_argument("--kommune", required=True)
    s.add_argument("--sources", help="TOML-fil med ekstra/overstyrte kilder ([[source]])")
    s.add_argument("--refresh", action="store_true", help="spør tjenestene på nytt selv om hurtigbufferen er fersk")
    s.add_argument("--force", action="store_true", help="bytt ut selv om den nye kopien har under halvparten så mange objekter")
    s.set_defaults(func=cmd_fetch)

    s = sub.add_parser("discover", help="søk i Geonorges Kartkatalog etter kommunens plantjenester og foreslå kilder")
    s.add_argument("--kommune", required=True)
    s.add_argument("--kartkatalog", help=argparse.SUPPRESS)
    s.set_defaults(func=cmd_discover)

    s = sub.add_parser("analyse", help="beregn differansen (boligsoner minus vedtatte reguleringsplaner) fra lagrede data")
    s.add_argument("--kommune", required=True)
    s.add_argument("--fortetting", action="store_true", help="ta med nåværende boligsoner (arealbruksstatus 1)")
    s.add_argument("--kurver", choices=list(CURVE_CHOICES),
                   help="poengkurver: standard (logaritmisk, skiller 5–1000 boliger og 2–300 daa) eller som-skrevet (masterdokumentet)")
    s.add_argument("--spredt", action="store_true", help="ta med spredt boligbebyggelse (5210)")
    s.add_argument("--min-area", type=float, help="minste tomteareal i m² (standard 2000)")
    s.add_argument("--mode", choices=["difference", "whole_zone"], help="whole_zone: hele sonen når < --dekning er regulert")
    s.add_argument("--dekning", type=float, help="whole_zone: største regulerte andel (standard 0.9)")
    s.add_argument("--bolig-koder", help="sikre boligformål, kommaseparert (standard 1110,1130)")
    s.add_argument("--mulig-koder", help="mulige boligformål, flagges mulig_bolig (standard 1001,1800)")
    s.add_argument("--bolig-koder-1985", help="PBL-1985 arealbruk som er bolig (standard 110,120)")
    s.add_argument("--mulig-koder-1985", help="PBL-1985 arealbruk som kanskje er bolig (standard 100,101,102,190)")
    s.add_argument("--status", help="arealbruksstatus som er kandidater (standard 2,3)")
    s.add_argument("--vedtatt-status", help="planstatus som trekkes fra (standard 3,6,7,8)")
    s.add_argument("--under-arbeid-status", help="planstatus som gir flagget plan_under_arbeid (standard 1,2)")
    s.add_argument("--nivaa", help="vertikalnivå som trekkes fra (standard 2; planer uten nivå trekkes alltid fra)")
    s.set_defaults(func=cmd_analyse)

    s = sub.add_parser("lots", help="list tomtene i en kommune")
    s.add_argument("--kommune", required=True)
    s.add_argument("--json", action="store_true", help="skriv JSON (uten geometri)")
    s.add_argument("--all", action="store_true", help="ta med arkiverte tomter")
    s.set_defaults(func=cmd_lots)

    s = sub.add_parser("export", help="eksporter tomtene (GeoPackage/GeoJSON for QGIS, CSV for Excel)")
    s.add_argument("--kommune", required=True)
    s.add_argument("--format", choices=FORMATS, required=True,
                   help="gpkg og geojson for QGIS; csv for Excel på norsk (; og desimalkomma); csv-rfc4180 for skript (, og desimalpunktum)")
    s.add_argument("--out", required=True)
    s.add_argument("--with-owners", action="store_true", help="ta med eiernavn (personopplysninger; bare når det trengs; logges)")
    s.add_argument("--basis", help="med --with-owners: formålet/rettslig grunnlag som logges")
    s.add_argument("--overwrite", action="store_true", help="skriv over en fil som finnes fra før")
    s.add_argument("--tier", action="append", help="bare disse klassene (A,B,C,D; – for uten poeng); kan gjentas")
    s.add_argument("--status", action="append", help="bare tomter med denne CRM-statusen; kan gjentas")
    s.add_argument("--lot", action="append", help="bare denne tomten (lot_id); kan gjentas")
    s.set_defaults(func=cmd_export)

    s = sub.add_parser("dossier", help="tomtedossier (PDF) for én eller flere tomter, til møter og kolleger")
    s.add_argument("--lot", action="append", required=True, help="tomtens id (lot_id); gjenta for flere tomter i samme PDF")
    s.add_argument("--out", required=True, help="PDF-filen som skrives")
    s.add_argument("--with-owners", action="store_true", help="ta med eiernavn (personopplysninger; logges; krever --basis)")
    s.add_argument("--basis", help="med --with-owners: formålet/rettslig grunnlag som logges")
    s.add_argument("--overwrite", action="store_true", help="skriv over en fil som finnes fra før")
    s.set_defaults(func=cmd_dossier)

    s = sub.add_parser("crm", help="CRM: status og notater for tomter")
    crm_sub = s.add_subparsers(dest="crm_command", required=True, metavar="CRM_COMMAND")
    c = crm_sub.add_parser("set", help="sett status og/eller legg til notat for en tomt")
    c.add_argument("--lot", required=True)
    c.add_argument("--status", help=", ".join(crm.STATUSES))
    c.add_argument("--note")
    c.add_argument("--follow", action="store_true", help="er tomten arkivert, sett status på tomten den lever videre som")
    c.set_defaults(func=cmd_crm_set)

    s = sub.add_parser("owners", help="vis teiger og eiere for en tomt; --lookup spør Matrikkel-API-et først")
    s.add_argument("--lot", required=True)
    s.add_argument("--lookup", action="store_true", help="slå opp eiere i Matrikkelen (TOMTE_MATRIKKEL_URL/USER/PASSWORD)")
    s.add_argument("--basis", help="rettslig grunnlag for oppslaget (logges), f.eks. «berettiget interesse»")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_owners)

    s = sub.add_parser("purge-owners", help="slett eierdata for godt (også fra databasefilens ledige sider)")
    s.add_argument("--older-than", type=int, help="bare eiere lagret for mer enn så mange dager siden (standard: TOMTE_OWNER_RETENTION_DAYS, ellers alle)")
    s.set_defaults(func=cmd_purge_owners)

    s = sub.add_parser("sync", help="hent → analyser for alle (eller valgte) kommuner med kilder, og rapporter")
    s.add_argument("--kommune", action="append", help="kommunenummer (kan gjentas); standard: alle med kilder")
    s.add_argument("--sources")
    s.add_argument("--report", help="skriv rapport (Markdown, eller HTML når filnavnet slutter på .html)")
    s.add_argument("--refresh", action="store_true", help="spør alle tjenestene på nytt (ellers brukes hurtigbufferen innen maks alder)")
    s.add_argument("--workers", type=int, help="kommuner i parallell (standard: antall CPU-er)")
    s.set_defaults(func=cmd_sync)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    say = _progress(args.quiet)
    try:
        settings = _settings(args)
        return int(args.func(args, settings, say))
    except TomteError as exc:
        print(f"Feil: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Avbrutt.", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - last line of defence: one line, no traceback
        if args.debug:
            raise
        print(f"Uventet feil: {type(exc).__name__}: {exc} (kjør med --debug for detaljer)", file=sys.stderr)
        return 3
