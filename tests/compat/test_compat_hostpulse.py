"""The compat suite on hostpulse itself: the Flask version against the port.

These are the gates of ``make test``: the whole in-process corpus, a fuzz run of 2,000
requests, the live smoke (gunicorn, Hypercorn's WSGI mode, Hypercorn) and the mutant
self-check. Each fails with the list of unexplained differences (scenario: what differs).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from compat.__main__ import DEFAULT_ALLOW
from compat.allow import AllowList
from compat.apps import DEFAULT_CANDIDATE, DEFAULT_REFERENCE, AppSpec
from compat.corpus import DEFAULT_CORPUS, load
from compat.results import PairReport

ROOT = Path(__file__).resolve().parents[2]
REFERENCE, CANDIDATE = AppSpec(DEFAULT_REFERENCE), AppSpec(DEFAULT_CANDIDATE)


@pytest.fixture(scope="module")
def corpus():
    return load(DEFAULT_CORPUS)


def assert_no_unexplained(report: PairReport) -> None:
    if report.unexplained:
        pytest.fail(explain(report), pytrace=False)


def explain(report: PairReport) -> str:
    lines = [f"{report.mode} {report.pair}: {len(report.unexplained)} request(s) differ"]
    for r in report.unexplained:
        req = r.request or {}
        what = ", ".join(f"{d.kind} {d.where} ({d.reference!r:.60} -> {d.candidate!r:.60})" for d in r.differences[:4])
        lines.append(f"  {r.key} [{req.get('method')} {req.get('path')}]: {what}")
    return "\n".join(lines)


def test_inprocess_corpus_has_no_unexplained_difference(corpus):
    from compat.inprocess import run_inprocess

    scenarios = corpus.select(mode="inprocess")
    report = run_inprocess(REFERENCE, CANDIDATE, scenarios, corpus.setup(), AllowList.load(DEFAULT_ALLOW))
    assert len(report.results) >= len(scenarios)
    assert_no_unexplained(report)


def test_fuzz_2000_generated_requests(corpus):
    from compat.fuzz import run_fuzz

    report = run_fuzz(REFERENCE, CANDIDATE, corpus.setup(), AllowList.load(DEFAULT_ALLOW), n=2000, seed=0)
    assert report.extra["requests"] == 2000 and report.extra["edges"] >= 10
    assert len(report.results) == 2000 + report.extra["edges"]
    # the size edges (request line, headers, bodies at 16 MiB and at the configured limits)
    played = {r.key for r in report.results}
    assert {"edge-body-16mib-plus-1", "edge-request-line-8200"} <= played
    assert report.extra["rules_missing_in_candidate"] == []
    assert_no_unexplained(report)


def test_live_smoke_on_gunicorn_and_hypercorn(corpus):
    from compat.live import run_live

    scenarios = corpus.select(mode="live", tags={"smoke"})
    reports = run_live(
        REFERENCE,
        CANDIDATE,
        scenarios,
        corpus.setup(),
        AllowList.load(DEFAULT_ALLOW),
        servers=["gunicorn", "hypercorn", "hypercorn-wsgi"],
    )
    assert [r.pair for r in reports] == ["flask@gunicorn/port@hypercorn", "flask@gunicorn/flask@hypercorn-wsgi"]
    # what a team deploys decides; Hypercorn's WSGI mode is a pair of its own, asked for
    assert "informational" not in reports[0].extra and reports[1].extra["informational"]
    for report in reports:
        assert len(report.results) >= len(scenarios)
        assert_no_unexplained(report)


def test_every_mutant_is_caught(corpus):
    from compat.mutants import MUTATIONS, UNOBSERVABLE, self_check

    checks = self_check(REFERENCE, CANDIDATE, corpus.select(mode="inprocess"), corpus.setup())
    assert [c.name for c in checks] == list(MUTATIONS)
    # hostpulse sets no cookie: the session mutants have nothing to change here (reported
    # as not applicable, never as caught); every other one must apply
    assert {c.name for c in checks if c.applied == 0} == {"cookie-attribute", "session-value-type"}
    for c in checks:
        if c.applied == 0:
            assert c.verdict.startswith("not applicable") and c.passed
            continue
        if c.name in UNOBSERVABLE:
            # servers drop HEAD bodies: no wire difference, an app-level note instead
            assert c.new_differences == [] and c.notes > 0, c
        else:
            assert c.verdict == "caught", c


def test_cli_summary_and_reports(tmp_path):
    out_json, out_html = tmp_path / "r.json", tmp_path / "r.html"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "compat",
            "--scenario",
            "json-dict",
            "--scenario",
            "usrname-redirect",
            "--report",
            str(out_json),
            "--report",
            str(out_html),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "requests" in proc.stdout and "DIFFERENT" in proc.stdout
    data = json.loads(out_json.read_text())
    assert data["ok"] is True
    assert sorted(r["key"] for r in data["pairs"][0]["results"]) == ["json-dict", "usrname-redirect"]
    assert "header:x-request-id" in data["pairs"][0]["noise"]
    assert out_html.read_text().startswith("<!doctype html>")
