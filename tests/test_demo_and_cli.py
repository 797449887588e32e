"""Demo data (deterministic, synthetic, realistic mix) and the CLI contract."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tomte.cli import main
from tomte.store import open_store

COMMANDS = ["demo", "import-plans", "fetch", "discover", "analyse", "lots", "export", "crm", "sync"]


def _plan_digest(path: Path) -> str:
    s = open_store(path)
    rows = s.rows("SELECT zone_key, arealformal, arealbruksstatus, hex(AsBinary(geom)) g FROM kp_zones ORDER BY zone_key")
    rows += s.rows("SELECT area_key, planstatus, vertikalniva, hex(AsBinary(geom)) g FROM rp_areas ORDER BY area_key")
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


def test_demo_is_deterministic(tmp_path: Path, demo_db: Path) -> None:
    other = tmp_path / "again.sqlite"
    assert main(["--db", str(other), "--quiet", "demo"]) == 0
    assert _plan_digest(other) == _plan_digest(demo_db)


def test_demo_has_realistic_synthetic_mix(demo_db: Path) -> None:
    s = open_store(demo_db)
    assert s.scalar("SELECT COUNT(*) FROM plan_data_state WHERE synthetic = 1") == 3
    assert s.scalar("SELECT COUNT(*) FROM lots WHERE synthetic = 0") == 0
    for knr in ("3207", "3218", "3212"):
        status = {r["planstatus"]: r["n"] for r in s.rows(
            "SELECT planstatus, COUNT(*) n FROM rp_areas WHERE kommunenummer = ? GROUP BY 1", (knr,))}
        total = sum(status.values())
        assert status["3"] / total > 0.6  # mostly approved
        assert status.get("1", 0) + status.get("2", 0) > 0  # some proposals
        assert status.get("4", 0) + status.get("5", 0) > 0  # some repealed
        assert s.scalar("SELECT COUNT(*) FROM rp_areas WHERE kommunenummer = ? AND vertikalniva = '1'", (knr,)) > 0
        formal = {r["arealformal"] for r in s.rows("SELECT DISTINCT arealformal FROM kp_zones WHERE kommunenummer = ?", (knr,))}
        assert {"1110", "1130", "5100"} <= formal
    assert 200 <= s.scalar("SELECT COUNT(*) FROM lots WHERE active = 1") <= 1500
    assert s.scalar("SELECT COUNT(*) FROM parcels") > 1000


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    out = subprocess.run([sys.executable, "-m", "tomte", command, "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    assert "usage:" in out.stdout


def test_expected_failures_are_one_line_without_traceback(tmp_path: Path, demo_copy: Path) -> None:
    cases = [
        ["--db", str(demo_copy), "lots", "--kommune", "9999"],
        ["--db", str(demo_copy), "lots", "--kommune", "Oslo"],
        ["--db", str(tmp_path / "missing.sqlite"), "lots", "--kommune", "3207"],
        ["--db", str(demo_copy), "import-plans", "--kommune", "3207", "--kp", str(tmp_path / "nope.gml")],
        ["--db", str(demo_copy), "crm", "set", "--lot", "nope", "--status", "Vurderes"],
        ["--db", str(demo_copy), "export", "--kommune", "3207", "--format", "csv", "--out", str(tmp_path / "no/dir.csv")],
    ]
    for args in cases:
        out = subprocess.run([sys.executable, "-m", "tomte", "--quiet", *args], capture_output=True, text=True)
        assert out.returncode == 1, (args, out.stderr)
        lines = [line for line in out.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("Feil: "), (args, out.stderr)
        assert "Traceback" not in out.stderr


def test_crm_set_and_lots_json_show_status_and_latest_note(demo_copy: Path, capsys) -> None:
    assert main(["--db", str(demo_copy), "lots", "--kommune", "3207", "--json"]) == 0
    lots = json.loads(capsys.readouterr().out)
    lot = lots[0]["lot_id"]
    assert main(["--db", str(demo_copy), "crm", "set", "--lot", lot, "--status", "i dialog", "--note", "Ringte eier"]) == 0
    assert main(["--db", str(demo_copy), "crm", "set", "--lot", lot, "--note", "Møte avtalt"]) == 0
    capsys.readouterr()
    assert main(["--db", str(demo_copy), "lots", "--kommune", "3207", "--json"]) == 0
    row = next(r for r in json.loads(capsys.readouterr().out) if r["lot_id"] == lot)
    assert row["status"] == "I dialog"
    assert row["latest_note"] == "Møte avtalt"
    for field in ("lot_id", "kommunenummer", "arealformal", "arealbruksstatus", "area_m2", "score", "tier", "status", "flags"):
        assert field in row
    kinds = [e["kind"] for e in open_store(demo_copy).rows("SELECT kind FROM crm_events WHERE lot_id = ?", (lot,))]
    assert kinds == ["status", "notat", "notat"]


def test_cli_differanse_options(demo_copy: Path, capsys) -> None:
    base = ["--db", str(demo_copy), "--quiet", "analyse", "--kommune", "3207"]
    assert main(base) == 0
    default = int(capsys.readouterr().out.split(":")[1].split()[0])
    assert main([*base, "--fortetting"]) == 0
    infill = int(capsys.readouterr().out.split(":")[1].split()[0])
    assert main([*base, "--min-area", "50000"]) == 0
    big = int(capsys.readouterr().out.split(":")[1].split()[0])
    assert infill > default > big
    assert main([*base, "--vedtatt-status", ""]) == 1


def test_curve_preset_from_the_cli_and_bad_arguments_are_one_sentence(demo_copy: Path) -> None:
    """Issue 16: the master document's literal curves stay reproducible (`analyse --kurver som-skrevet`); argparse's
    English usage errors (exit 2) are one Norwegian sentence with exit 1 like every other bad input."""
    from tests.test_owners import run_cli
    from tomte.store import open_store

    out = run_cli(demo_copy, "analyse", "--kommune", "3207", "--kurver", "som-skrevet")
    assert out.returncode == 0, out.stderr
    s = open_store(demo_copy)
    literal_a = s.scalar("SELECT COUNT(*) FROM lots WHERE kommunenummer = '3207' AND active = 1 AND tier = 'A'")
    assert run_cli(demo_copy, "analyse", "--kommune", "3207").returncode == 0
    default_a = s.scalar("SELECT COUNT(*) FROM lots WHERE kommunenummer = '3207' AND active = 1 AND tier = 'A'")
    total = s.scalar("SELECT COUNT(*) FROM lots WHERE kommunenummer = '3207' AND active = 1")
    assert literal_a > total / 2 and default_a <= total / 4  # as written nearly everything is A; the default ranks
    for args in (["analyse", "--kommune", "3207", "--kurver", "feil"], ["analyse"], ["export", "--kommune", "3207", "--format", "xls",
                                                                                       "--out", "x.xls"]):
        bad = run_cli(demo_copy, *args)
        assert bad.returncode == 1 and bad.stderr.startswith("Feil: ") and "usage:" not in bad.stderr, bad.stderr
