"""``python -m compat`` on a stateful Flask app and its Quart port that are not ours.

tests/compat/notes_app/ holds a notes service in Flask, its Quart port and a corpus. The port
keeps one deliberate difference (Quart's get_json() on a wrong content type: 400 where
Flask answers 415), which every mode must report, and which an allow-list entry with its
reason lets through.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from compat.apps import AppSpec
from compat.corpus import load
from compat.mutants import self_check

HERE = Path(__file__).resolve().parent / "notes_app"
ROOT = Path(__file__).resolve().parents[2]
REFERENCE = f"{HERE / 'flask_notes.py'}:create_app"
CANDIDATE = f"{HERE / 'quart_notes.py'}:create_app"
CORPUS = HERE / "corpus.toml"


def run_cli(*args: str, tmp_path: Path) -> tuple[int, str, dict]:
    report = tmp_path / "report.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "compat",
            "--reference",
            REFERENCE,
            "--candidate",
            CANDIDATE,
            "--corpus",
            str(CORPUS),
            "--report",
            str(report),
            *args,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    data = json.loads(report.read_text()) if report.exists() else {}
    return proc.returncode, proc.stdout + proc.stderr, data


def differing(data: dict) -> dict[str, set[str]]:
    """{candidate label: {request keys with an unexplained difference}}."""
    return {p["candidate"]: {r["key"] for r in p["results"] if r["differences"]} for p in data["pairs"]}


def test_inprocess_reports_the_deliberate_difference(tmp_path):
    code, out, data = run_cli(tmp_path=tmp_path)
    assert code == 1, out
    assert differing(data) == {CANDIDATE: {"create-wrong-content-type"}}
    result = next(r for r in data["pairs"][0]["results"] if r["key"] == "create-wrong-content-type")
    status = next(d for d in result["differences"] if d["kind"] == "status")
    assert (status["reference"], status["candidate"]) == (415, 400)
    # explained by the catalogue of known Flask -> Quart differences, with the usual fix
    assert status["known"]["id"] == "get-json-silent" and "is_json" in status["known"]["fix"]
    assert "create-wrong-content-type" in out
    # the sequence played on its own instance of each app: create, read, delete, read again
    statuses = {r["key"]: r["status"] for r in data["pairs"][0]["results"]}
    assert statuses["create-read-delete/read-deleted"] == "same"


def test_an_allow_list_entry_with_its_reason_lets_it_through(tmp_path):
    code, out, data = run_cli("--allow", str(HERE / "allowlist-deliberate.toml"), tmp_path=tmp_path)
    assert code == 0, out
    result = next(r for r in data["pairs"][0]["results"] if r["key"] == "create-wrong-content-type")
    assert result["status"] == "allowed" and "on purpose" in result["allowed"][0]["reason"]


def test_an_allow_list_entry_without_a_reason_is_refused(tmp_path):
    bad = tmp_path / "allow.toml"
    bad.write_text('[[allow]]\nscenario = "*"\ndifference = "*"\nreason = ""\n')
    code, out, _data = run_cli("--allow", str(bad), tmp_path=tmp_path)
    assert code == 2 and "no reason" in out


def test_live_and_fuzz_modes_report_it_too(tmp_path):
    code, out, data = run_cli("--mode", "live", "--fuzz", "400", tmp_path=tmp_path)
    assert code == 1, out
    found = differing(data)
    # the size edges are played live too: gunicorn refuses what Hypercorn lets through
    assert found["port@hypercorn"] - {k for k in found["port@hypercorn"] if k.startswith("edge-")} == {
        "create-wrong-content-type"
    }
    live = next(p for p in data["pairs"] if p["mode"] == "live")
    layers = {g["known"]["id"]: g["layer"] for g in live["groups"] if g["known"]}
    assert layers.get("server-request-line-414") == "server" and layers.get("get-json-silent") == "framework"
    fuzz = found[CANDIDATE]
    generated = {k for k in fuzz if not k.startswith("edge-")}
    assert generated and all(key.endswith("-POST-notes") for key in generated), fuzz
    # Quart's default 16 MiB limit, found by the size edges, not by a hand-written scenario
    assert "edge-body-16mib-plus-1" in fuzz


def test_mutants_of_a_foreign_port_are_caught_or_not_applicable():
    corpus = load(CORPUS)
    checks = {c.name: c for c in self_check(AppSpec(REFERENCE), AppSpec(CANDIDATE), corpus.scenarios, corpus.setup())}
    for name in ("status-200-to-201", "content-type-charset", "json-spacing", "json-key-order", "location-absolute"):
        assert checks[name].verdict == "caught", (name, checks[name])
    assert checks["head-body"].verdict == "no wire difference; app-level note"
    # this app sends no X-Request-ID and no Content-Disposition: nothing for those mutants to change
    assert checks["drop-x-request-id"].applied == 0 and checks["content-disposition"].applied == 0
    assert checks["drop-x-request-id"].verdict.startswith("not applicable") and checks["drop-x-request-id"].passed
