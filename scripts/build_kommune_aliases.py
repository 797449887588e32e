"""Derive ``data/kommune_aliases.csv`` (former kommunenummer → 2024 number).

Run once by a developer with ``../shared`` present; the output is committed. Inputs: the 2024
boundaries (robhop/fylker-og-kommuner, CC BY 4.0, Kartverket data) and NINA's 2019→2020 kommune
table; numbers and names are public facts (SSB Klass 131). Matching is by name within compatible
counties (2020 Viken 30 → 31/32/33, Vestfold og Telemark 38 → 39/40, Troms og Finnmark 54 → 55/56).
"""

import csv
import json
import re
import sys
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
OUT = Path(__file__).resolve().parents[1] / "data" / "kommune_aliases.csv"
FYLKE_2024 = {"30": {"31", "32", "33"}, "38": {"39", "40"}, "54": {"55", "56"}}


def norm(name: str) -> str:
    name = re.sub(r"\(.*?\)", "", name).split(" - ")[0]
    return name.strip().upper()


def main() -> int:
    geo = json.loads((SHARED / "admin-boundaries/robhop_Kommuner-S_2024_wgs84.geojson").read_text())
    by_name: dict[str, list[str]] = {}
    for f in geo["features"]:
        by_name.setdefault(norm(f["properties"]["kommunenavn"]), []).append(f["properties"]["kommunenummer"])
    aliases: dict[str, tuple[str, str]] = {}
    with open(SHARED / "codelists/nina_KommuneFylker.csv", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            new2020 = row["Kommunenr. 2020"].zfill(4)
            old2019 = row["Kommunenr. 2019"].zfill(4)
            fylke = new2020[:2]
            allowed = FYLKE_2024.get(fylke, {fylke})
            cands = [k for k in by_name.get(norm(row["Kommunenavn 2020"]), []) if k[:2] in allowed]
            if len(cands) != 1:
                continue
            target = cands[0]
            for old, note in ((new2020, "2020-2023"), (old2019, "før 2020")):
                if old != target and old not in aliases:
                    aliases[old] = (target, note)
    with open(OUT, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["alias", "kommunenummer", "note"])
        for old in sorted(aliases):
            w.writerow([old, *aliases[old]])
    print(f"{len(aliases)} aliases → {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
