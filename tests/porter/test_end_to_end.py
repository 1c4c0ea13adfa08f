"""The command on whole Flask apps: two written by others (``tests/compat/examples``, copied to
a temporary folder) and our own Flask version (``compat/flask_app``, read in place).

For each: ``python -m porter SRC DEST`` from the repository root, as a person runs it; exit 0
or 1 with every remaining group of differences explained by the suite's catalogue (none
unexplained, none failing on both sides); its output compiles, keeps every comment of the
source, and is a fixed point of the porter. Our Flask version, ported without edits, then
passes the contract tests, but for the few that depend on the hand-written port's own work.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from porter.port import port

from .helpers import ROOT, compileall, lost_comments, porter

EXAMPLES = ROOT / "tests" / "compat" / "examples"

# Contract tests the ported Flask version fails, and the hand-written port's code they need
# (each a Flask/Quart difference the port pins; the catalogue entry in brackets).
HAND_PORT = {
    "test_api.py::test_echo_ignores_a_body_it_cannot_read[quart-not-utf8]": "[get-json-encoding] Quart decodes a JSON body as UTF-8 text first (UnicodeDecodeError, 500); "
    "the port reads the bytes (hostpulse/payloads.py through app/requests.py)",
    "test_files.py::test_file_response_headers[quart]": "[send-file-headers, send-file-cache] Quart's send_file: no Content-Disposition, Accept-Ranges only on "
    "206, Cache-Control public, max-age=43200 and Expires; app/files.py sends Werkzeug's headers",
    "test_files.py::test_range_gives_206[quart-suffix]": "[send-file-conditional] a suffix range bytes=-N fails in Quart (AssertionError: Bad range); app/files.py",
    "test_files.py::test_unsatisfiable_range_gives_416[quart]": "[send-file-conditional] Quart's 416 has no Content-Range; app/files.py adds it",
    "test_limits.py::test_upload_is_not_bound_by_max_content_length[quart]": "[body-limit, flagged by the porter] Quart sizes the body from MAX_CONTENT_LENGTH when the request is "
    "made, so the Flask version's per-request `request.max_content_length` for uploads does nothing; "
    "app/requests.py counts body bytes itself",
}


def group_list(report: dict) -> list[dict]:
    return [g for p in report["pairs"] if p["decides_verdict"] for g in p["groups"]]


def check_proven(proc: subprocess.CompletedProcess[str], dest: Path) -> list[dict]:
    """Exit 0 or 1, every group explained by the catalogue, no request failing on both sides."""
    out = proc.stdout + proc.stderr
    assert proc.returncode in (0, 1), out
    report = json.loads((dest / "compat-report.json").read_text(encoding="utf-8"))
    groups = group_list(report)
    unexplained = [f"{g['mode']} {g['kind']} {g['where']} e.g. {g['example']}" for g in groups if not g["known"]]
    assert not unexplained, f"differences the catalogue does not explain: {unexplained}\n{out}"
    assert proc.returncode == (1 if groups else 0), out
    for p in report["pairs"]:
        assert p["counts"]["both 5xx"] == 0, f"{p['mode']}: requests failing on both sides (a broken setup?)\n{out}"
        assert p["counts"]["requests"] >= 10
    for g in groups:  # each remaining difference is named with its fix
        assert f"[{g['known']['id']}]" in proc.stdout and g["known"]["fix"] in proc.stdout
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("hostpulse-port: " + ("DIFFERENT" if groups else "IDENTICAL")), last
    return groups


def check_output(src: Path, dest: Path, again: Path) -> None:
    """Compiles, keeps every comment, and porting it again changes nothing."""
    proc = compileall(dest)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = port(dest, again)
    sources = [p for p in src.rglob("*.py") if "__pycache__" not in p.parts]
    assert sources
    for path in sources:
        rel = path.relative_to(src.parent if (src / "__init__.py").exists() else src)
        ported = (dest / rel).read_text(encoding="utf-8")
        assert not lost_comments(path.read_text(encoding="utf-8"), ported), rel
        assert (again / rel).read_text(encoding="utf-8") == ported, f"{rel} changed when ported again"
    assert result.changed == [], result.changed
    assert not [f for f in result.flags if f.severity == "error"]


@pytest.mark.parametrize("example", ["blog", "jsonapi"])
def test_an_app_written_by_others_is_ported_and_proven(tmp_path: Path, example: str) -> None:
    src = tmp_path / "flask_side"
    shutil.copytree(EXAMPLES / example / "flask_side", src, ignore=shutil.ignore_patterns("__pycache__"))
    dest = tmp_path / "port"
    proc = porter(str(src), str(dest))
    groups = check_proven(proc, dest)
    assert (dest / "compat.toml").exists() and (dest / "corpus.toml").exists()
    check_output(src, dest, tmp_path / "again")
    ids = {g["known"]["id"] for g in groups}
    if example == "blog":
        auth = (dest / "flaskr" / "auth.py").read_text()
        # the sync before_app_request hook became async; login_required awaits the view
        assert "@bp.before_app_request\nasync def load_logged_in_user():" in auth
        assert "    async def wrapped_view(**kwargs):" in auth and "return await view(**kwargs)" in auth
        assert "@with_appcontext" in (dest / "flaskr" / "db.py").read_text()
        assert (dest / "compat_setup.py").exists()  # init-db runs in every instance
        assert "vary-cookie" in ids  # the session: what remains is Quart's, with its fix
        assert "sync-hook-thread" not in ids  # the hook runs on the loop, with the views
    else:
        assert "await request.get_json()" in (dest / "todos" / "__init__.py").read_text()
        assert "get-json-silent" in ids
    # the example's own corpus too (login sequences, CSRF captures, a failed login re-rendering
    # request.form): still nothing the catalogue does not explain
    own = porter(
        str(src), str(tmp_path / "port-own"), "--corpus", str(EXAMPLES / example / "corpus.toml"), "--mode", "inprocess"
    )
    check_proven(own, tmp_path / "port-own")


def test_our_flask_version_is_ported_and_passes_the_contract(tmp_path: Path) -> None:
    src = ROOT / "compat" / "flask_app"
    dest = tmp_path / "port"
    proc = porter(str(src), str(dest))
    check_proven(proc, dest)
    assert "[body-limit]" in proc.stdout  # the per-request body limits Quart cannot honour
    check_output(src, dest, tmp_path / "again")
    # the contract tests, every ASGI test on the ported app (tests/porter/contract_plugin.py)
    env = {**os.environ, "PORTER_CONTRACT_APP": f"{dest}:flask_app"}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/contract",
            "-p",
            "tests.porter.contract_plugin",
            "-q",
            "-p",
            "no:cacheprovider",
            "-rf",
            "-o",
            "addopts=",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = run.stdout + run.stderr
    failed = {m.group(1) for m in re.finditer(r"^FAILED tests/contract/(\S+)", out, re.M)}
    passed = int(m.group(1)) if (m := re.search(r"(\d+) passed", out)) else 0
    unexpected = failed - set(HAND_PORT)
    assert not unexpected, (
        f"contract tests the ported Flask version fails beyond the hand port's own work:\n{out[-6000:]}"
    )
    assert passed >= 350, out[-3000:]
    assert run.returncode in (0, 1), out[-3000:]  # 1: the hand port's tests above
