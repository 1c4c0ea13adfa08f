"""``python -m compat --config`` on the three example ports in tests/compat/examples/.

Each faithful port (blog, jsonapi, site) must pass every mode of the suite: in-process (the
blog with the mutant self-check), live (gunicorn vs Hypercorn) and fuzz, with only the
differences its ``allowlist.toml`` gives a reason for. The blog's deliberately wrong port
(made by the tests from the faithful one: a sync before-request hook opening SQLite) must fail, its failures
explained by the catalogue entry ``sync-hook-thread``. And the verdict must not depend on the
run: ten in-process runs of each give the same answer.

Every run is the CLI in a subprocess from the repository root, as a person runs it, with its
JSON report and the apps' logs in the test's temporary folder.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from compat.corpus import load

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = Path(__file__).resolve().parent / "examples"
EXAMPLE_NAMES = ["blog", "jsonapi", "site"]
FUZZ = 150
RUNS = 10
STATIC_DIFFS = {"header-value:etag", "header-value:last-modified"}  # two copies of one file
SERVER_DIFFS = {
    "status:status",
    "body:body",
    "header-value:content-type",
    "header-value:content-length",
    "header-extra:vary",
}  # gunicorn's own 414/431 page vs the app's 200


def run_cli(config: Path, *args: str, tmp_path: Path, name: str) -> tuple[int, str, dict]:
    report = tmp_path / f"{name}.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "compat",
            "--config",
            str(config),
            "--report",
            str(report),
            "--logs",
            str(tmp_path / f"{name}-logs"),
            *args,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    data = json.loads(report.read_text()) if report.exists() else {}
    return proc.returncode, proc.stdout + proc.stderr, data


def corpus_keys(example: str, mode: str) -> list[str]:
    """The request keys a run of ``mode`` compares: a scenario's name, a sequence's ``name/step``."""
    keys = []
    for s in load(EXAMPLES / example / "corpus.toml").select(mode=mode):
        for step in s.steps:
            if not step.action and step.compare:
                keys.append(s.name if len(s.steps) == 1 else f"{s.name}/{step.name}")
    return keys


def deciding(data: dict) -> list[dict]:
    return [p for p in data["pairs"] if p["decides_verdict"]]


def by_key(pair: dict) -> dict[str, dict]:
    return {r["key"]: r for r in pair["results"]}


def allowed_keys(pair: dict) -> set[str]:
    return {f"{a['kind']}:{a['where']}" for r in pair["results"] for a in r["allowed"]}


def differing(data: dict) -> set[tuple[str, str]]:
    return {(p["mode"], r["key"]) for p in deciding(data) for r in p["results"] if r["differences"]}


def header(request: dict, name: str) -> str | None:
    return next((v for k, v in request["headers"] if k.lower() == name), None)


def session_data(request: dict) -> dict:
    """The session a request carried in its Cookie header (itsdangerous: payload.time.signature)."""
    cookie = header(request, "cookie") or ""
    value = next(part.split("=", 1)[1] for part in cookie.split("; ") if part.startswith("session="))
    compressed = value.startswith(".")
    payload = value.lstrip(".").split(".")[0]
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    return json.loads(zlib.decompress(raw) if compressed else raw)


def check_faithful(code: int, out: str, data: dict, example: str, mode: str) -> dict:
    """What every faithful run shows; returns its one deciding pair."""
    assert code == 0, out
    assert data["ok"] is True and data["verdict"].startswith("OK"), data["verdict"]
    pairs = deciding(data)
    assert [p["mode"] for p in pairs] == [mode], out
    pair = pairs[0]
    counts = pair["counts"]
    assert counts["DIFFERENT"] == 0 and pair["groups"] == []
    assert counts["both 5xx"] == 0 and counts["reference 5xx"] == 0, out
    assert counts["same"] > 0
    assert counts["requests"] == len(pair["results"]) == counts["same"] + counts["allowed"]
    # the allow-list lets through what its reasons name, nothing else
    assert allowed_keys(pair) <= STATIC_DIFFS | (SERVER_DIFFS if mode == "live" else set()), allowed_keys(pair)
    assert data["meta"]["allow"] == str(EXAMPLES / example / "allowlist.toml")
    return pair


def check_blog_login(pair: dict) -> None:
    """The author sequence: every step alike; the login's session cookie goes with the later
    steps, which see a logged-in page (the post's Edit link, only shown to its author)."""
    results = by_key(pair)
    author = [k for k in corpus_keys("blog", "inprocess") if k.startswith("author/")]
    assert len(author) == 18
    unlike = {k: results[k]["status"] for k in author if results[k]["status"] not in ("same", "same (noise)")}
    assert not unlike, unlike
    assert "user_id" not in session_data(results["author/login"]["request"])
    assert session_data(results["author/index-logged-in"]["request"]) == {"user_id": 1}
    assert session_data(results["author/logout"]["request"])["user_id"] == 1
    # captured from the logged-in index page: the Edit link of the new post (id 1), then the
    # second post's; bob reads alice's edited post, captured from his own logged-in index
    assert results["author/update"]["request"]["path"] == "/1/update"
    assert results["author/delete"]["request"]["path"] == "/2/delete"
    assert results["someone-elses-post/read-alices-post"]["request"]["path"] == "/1"
    assert session_data(results["someone-elses-post/index"]["request"]) == {"user_id": 2}
    for key in ("author/index-logged-in", "author/update", "someone-elses-post/update-alices-post"):
        assert results[key]["status"] in ("same", "same (noise)"), results[key]


# ---------------------------------------------------------------------------- faithful ports


@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_faithful_port_inprocess(example, tmp_path):
    extra = ["--mutants"] if example == "blog" else []
    code, out, data = run_cli(
        EXAMPLES / example / "compat.toml",
        "--mode",
        "inprocess",
        *extra,
        tmp_path=tmp_path,
        name=f"{example}-inprocess",
    )
    pair = check_faithful(code, out, data, example, "inprocess")
    keys = corpus_keys(example, "inprocess")
    assert len(pair["results"]) == len(keys) and sorted(by_key(pair)) == sorted(keys)
    results = by_key(pair)
    same = ("same", "same (noise)")
    if example == "blog":
        check_blog_login(pair)
        # the mutant self-check: every mutant that changed an answer was caught
        checks = {c["name"]: c for c in data["mutants"]}
        assert len(checks) >= 10 and not [
            c for c in checks.values() if "MISSED" in c["verdict"] or "WRONG" in c["verdict"]
        ], checks
        for name in ("status-200-to-201", "vary", "content-disposition", "cache-control", "session-value-type"):
            assert checks[name]["verdict"] == "caught" and checks[name]["new_differences"] > 0, checks[name]
        assert results["static-css"]["status"] == "allowed"
        assert results["unknown-path"]["status"] in same  # Vary: Cookie on a 404 too, as Flask
    elif example == "jsonapi":
        assert results["create-wrong-content-type"]["status"] in same  # 415, as Flask's get_json()
        assert results["crud/delete"]["status"] in same  # 204 without Content-Length
        assert data["mutants"] is None
    else:
        for key in ("contact-over-16mib", "contact/thanks", "not-found", "static-missing"):
            assert results[key]["status"] in same, results[key]
        # conditional and range requests on static files: the same statuses and headers but
        # the allowed ETag/Last-Modified of two copies of one file
        for key in ("png-if-modified-since-future", "css-if-none-match-star", "robots-range", "head-png"):
            assert results[key]["status"] == "allowed"
            assert {f"{a['kind']}:{a['where']}" for a in results[key]["allowed"]} <= STATIC_DIFFS


@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_faithful_port_live(example, tmp_path):
    code, out, data = run_cli(
        EXAMPLES / example / "compat.toml", "--mode", "live", tmp_path=tmp_path, name=f"{example}-live"
    )
    pair = check_faithful(code, out, data, example, "live")
    assert (pair["reference"], pair["candidate"]) == ("flask@gunicorn", "port@hypercorn")
    results = by_key(pair)
    edges = {k for k in results if k.startswith("edge-")}
    assert edges, "the size edges are played live"
    keys = corpus_keys(example, "live")
    assert len(results) == len(keys) + len(edges) and sorted(set(results) - edges) == sorted(keys)
    # server-made answers (gunicorn's 414/431) are the only allowed differences besides the static files
    for key, r in results.items():
        if r["allowed"] and key in edges:
            assert r["reference"]["status"] in (414, 431) and r["candidate"]["status"] == 200, r
    assert {k for k in edges if results[k]["allowed"]} == {
        "edge-request-line-4095",
        "edge-request-line-4100",
        "edge-request-line-8200",
        "edge-header-8200",
        "edge-header-16384",
        "edge-header-count-120",
    }
    if example == "blog":
        check_blog_login(pair)


@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_faithful_port_fuzz(example, tmp_path):
    code, out, data = run_cli(
        EXAMPLES / example / "compat.toml",
        "--mode",
        "fuzz",
        "--fuzz",
        str(FUZZ),
        tmp_path=tmp_path,
        name=f"{example}-fuzz",
    )
    pair = check_faithful(code, out, data, example, "fuzz")
    extra = pair["extra"]
    assert extra["requests"] == FUZZ and extra["edges"] > 0
    # the blog's login sequence plays first, up to its login (not its logout)
    login = 7 if example == "blog" else 0
    assert extra["login_steps"] == login
    assert pair["counts"]["requests"] == FUZZ + extra["edges"] + login
    fuzzed = [r for r in pair["results"] if r["key"].startswith("fuzz-")]
    assert len(fuzzed) == FUZZ
    assert len({(r["request"]["method"], r["request"]["path"]) for r in fuzzed}) > FUZZ // 3
    if example == "blog":
        # the login sequence plays first on each instance, alike, and lends its cookie jar to
        # the generated requests tagged "session"
        assert extra["login"] == "author"
        results = by_key(pair)
        author = [k for k in results if k.startswith("author/")]
        assert len(author) == login and all(results[k]["status"] in ("same", "same (noise)") for k in author)
        assert not any(k.startswith("author/logout") for k in author)
        # the generated requests tagged "session" carry the logged-in user's session (until a
        # generated request happens to log out: the jar follows what the app answers)
        with_jar = [
            r for r in fuzzed if "session" in r["tags"] and "session=" in (header(r["request"], "cookie") or "")
        ]
        assert len(with_jar) > FUZZ // 4
        assert session_data(with_jar[0]["request"]).get("user_id") == 1


# ---------------------------------------------------------------------------- the wrong port


WRONG_RUN_FILE = """\
# The blog against its WRONG Quart port: quart_side/ with a sync before-request hook
# (load_logged_in_user) that opens SQLite on Quart's thread pool, so every request of a
# logged-in user answers 500 there (sqlite3.ProgrammingError).
[reference]
path = "flask_side"
app = "flaskr:create_app"
[candidate]
path = "quart_side_wrong"
app = "flaskr:create_app"
[setup]
hook = "compat_setup:prepare"
secret_key = "dev"
[run]
corpus = "corpus.toml"
allow = "allowlist.toml"
"""


@pytest.fixture(scope="module")
def wrong_blog(tmp_path_factory) -> Path:
    """The blog example with a wrong port beside the faithful one: a copy of quart_side/ whose
    one change is the mistake a port makes (the hook left as a sync def)."""
    root = tmp_path_factory.mktemp("wrong") / "blog"
    shutil.copytree(EXAMPLES / "blog", root, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(root / "quart_side", root / "quart_side_wrong")
    auth = root / "quart_side_wrong" / "flaskr" / "auth.py"
    text = auth.read_text()
    assert text.count("async def load_logged_in_user():") == 1
    auth.write_text(text.replace("async def load_logged_in_user():", "def load_logged_in_user():"))
    (root / "compat-wrong.toml").write_text(WRONG_RUN_FILE)
    return root / "compat-wrong.toml"


@pytest.mark.parametrize("mode", ["inprocess", "live"])
def test_wrong_port_fails_with_the_known_cause(mode, tmp_path, wrong_blog):
    code, out, data = run_cli(wrong_blog, "--mode", mode, tmp_path=tmp_path, name=f"wrong-{mode}")
    assert code == 1, out
    assert data["ok"] is False and data["verdict"].startswith("FAILED")
    pairs = deciding(data)
    assert [p["mode"] for p in pairs] == [mode]
    pair = pairs[0]
    assert {(g["known"] or {}).get("id") for g in pair["groups"]} == {"sync-hook-thread"}, pair["groups"]
    title = pair["groups"][0]["known"]["title"]
    assert "sync hook" in title and title in out  # the summary names the cause, its fix below it
    results = by_key(pair)
    bad = {k for k, r in results.items() if r["differences"]}
    # every request of a logged-in user answers 500; anonymous ones answer as Flask does
    assert "author/index-logged-in" in bad and "someone-elses-post/index" in bad
    assert all(k.startswith(("author/", "someone-elses-post/")) for k in bad), bad
    for key in ("index-empty", "register-page", "create-needs-login", "author/register", "author/login"):
        assert results[key]["status"] in ("same", "same (noise)"), results[key]
    r = results["author/index-logged-in"]
    assert r["reference"]["status"] == 200 and r["candidate"]["status"] == 500
    assert "Log Out" in r["reference"]["body"] and "alice" in r["reference"]["body"]
    assert "SQLite objects created in a thread" in r["candidate"]["log"]
    status = next(d for d in r["differences"] if d["kind"] == "status")
    assert status["known"]["id"] == "sync-hook-thread" and "async def" in status["known"]["fix"]


# ---------------------------------------------------------------------------- stable verdicts


def test_verdicts_are_the_same_ten_runs_in_a_row(tmp_path, wrong_blog):
    runs = [("wrong", wrong_blog), ("faithful", EXAMPLES / "blog" / "compat.toml")]
    jobs = [(label, config, i) for i in range(RUNS) for label, config in runs]

    def one(job):
        label, config, i = job
        code, out, data = run_cli(config, "--mode", "inprocess", tmp_path=tmp_path, name=f"{label}-{i}")
        return label, code, out, data.get("verdict"), differing(data) if data else None

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(one, jobs))
    for label, expected_code in (("wrong", 1), ("faithful", 0)):
        mine = [o for o in outcomes if o[0] == label]
        assert len(mine) == RUNS
        assert [code for _l, code, *_rest in mine] == [expected_code] * RUNS, [o[2][-600:] for o in mine]
        assert len({verdict for _l, _c, _o, verdict, _d in mine}) == 1, [o[3] for o in mine]
        assert len({frozenset(diffs) for *_rest, diffs in mine}) == 1
        assert bool(mine[0][4]) == (label == "wrong")
