"""The run file: a comparison described in TOML, run from another project's folder.

The two sides here are written into a temporary project, both as a package named ``app``
(the name this repository's own port has): each side runs in its own interpreter with its
folder first on the path, so neither shadows the other, nor does hostpulse's ``app``. The
suite is started as an installed tool would be (``python -m hostpulse.compat`` from that
folder), not from this repository's root.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

FLASK_SIDE = """
import os
from pathlib import Path
from flask import Flask, jsonify, request, session

def create_app(instance_path=None, greeting="hello from flask"):
    assert os.environ["COMPAT_INSTANCE"] == instance_path
    app = Flask(__name__, instance_path=instance_path)
    app.secret_key = "s3cret"
    store = Path(instance_path) / "count.txt"

    @app.get("/")
    def index():
        return jsonify(side_module=__name__, greeting=greeting)

    @app.post("/login")
    def login():
        session["user_id"] = USER_ID
        return jsonify(ok=True)

    @app.get("/me")
    def me():
        return jsonify(user=session.get("user_id"))

    @app.post("/count")
    def count():
        n = int(store.read_text()) + 1 if store.exists() else 1
        store.write_text(str(n))
        return jsonify(count=n)

    @app.get("/boom")
    def boom():
        raise RuntimeError("the database is not initialised")

    return app
"""

QUART_SIDE = """
import os
from pathlib import Path
from quart import Quart, jsonify, request, session

def create_app(instance_path=None, greeting="hello from quart"):
    assert os.environ["COMPAT_INSTANCE"] == instance_path
    app = Quart(__name__, instance_path=instance_path)
    app.secret_key = "s3cret"
    store = Path(instance_path) / "count.txt"

    @app.get("/")
    async def index():
        return jsonify(side_module=__name__, greeting=greeting)

    @app.post("/login")
    async def login():
        session["user_id"] = USER_ID
        return jsonify(ok=True)

    @app.get("/me")
    async def me():
        response = jsonify(user=session.get("user_id"))
        response.vary.add("Cookie")  # as Flask does when the session is read (compat's catalogue: vary-cookie)
        return response

    @app.post("/count")
    async def count():
        n = int(store.read_text()) + 1 if store.exists() else 1
        store.write_text(str(n))
        return jsonify(count=n)

    @app.get("/boom")
    async def boom():
        raise RuntimeError("the database is not initialised")

    return app
"""

HOOK = """
from pathlib import Path

def prepare(instance: Path, side: str) -> dict:
    (instance / "count.txt").write_text("10")
    import app  # this side's own package: the hook runs in the side's interpreter
    assert Path(app.__file__).parts[-3] == {"reference": "flask_side", "candidate": "quart_side"}[side]
    return {"instance_path": str(instance), "greeting": "hi"}
"""

CORPUS = """
[[scenario]]
name = "index"
path = "/"
tags = ["smoke"]

[[scenario]]
name = "count"
method = "POST"
path = "/count"

[[sequence]]
name = "login-then-me"
[[sequence.step]]
name = "login"
method = "POST"
path = "/login"
[[sequence.step]]
name = "me"
path = "/me"
"""


ALLOW = """
[[allow]]
scenario = "edge-*"
difference = "*"
modes = ["live"]
reason = "gunicorn's request-line and header limits (414, 431); Hypercorn has none: the servers, not the port"
"""


def make_project(root: Path, *, user_id: str = "1", candidate_user_id: str | None = None, hook: bool = True) -> Path:
    for side, source, uid in (
        ("flask_side", FLASK_SIDE, user_id),
        ("quart_side", QUART_SIDE, candidate_user_id or user_id),
    ):
        pkg = root / side / "app"
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text(textwrap.dedent(source).replace("USER_ID", uid))
    (root / "corpus.toml").write_text(CORPUS)
    (root / "allowlist.toml").write_text(ALLOW)
    (root / "compat_setup.py").write_text(HOOK)
    setup = '[setup]\nhook = "compat_setup:prepare"\nsecret_key = "s3cret"\n' if hook else ""
    (root / "compat.toml").write_text(
        textwrap.dedent(f"""
        [reference]
        path = "flask_side"
        app = "app:create_app"
        [candidate]
        path = "quart_side"
        app = "app:create_app"
        {setup}
        [run]
        corpus = "corpus.toml"
        allow = "allowlist.toml"
        """).replace("\n        ", "\n")
    )
    return root / "compat.toml"


def run(project: Path, *args: str) -> tuple[int, str, dict]:
    report = project / "report.json"
    proc = subprocess.run(
        [sys.executable, "-m", "hostpulse.compat", "--config", "compat.toml", "--report", str(report), *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )
    data = json.loads(report.read_text()) if report.exists() else {}
    return proc.returncode, proc.stdout + proc.stderr, data


def results(data: dict, pair: int = 0) -> dict[str, dict]:
    return {r["key"]: r for r in data["pairs"][pair]["results"]}


def test_same_package_name_on_both_sides_with_a_setup_hook(tmp_path):
    make_project(tmp_path)
    code, out, data = run(tmp_path)
    assert code == 0, out
    got = results(data)
    assert set(got) == {"index", "count", "login-then-me/login", "login-then-me/me"}
    # the sides' factories default to other greetings and counts start at 1 without the
    # hook: "same" everywhere means the hook's kwargs and files reached both sides
    assert all(r["status"] == "same" for r in got.values()), got
    assert data["pairs"][0]["counts"]["same"] == 4


def test_without_the_hook_the_sides_differ_as_they_should(tmp_path):
    make_project(tmp_path, hook=False)
    code, out, data = run(tmp_path)
    assert code == 1, out
    index = results(data)["index"]
    assert any(d["where"] == "$.greeting" for d in index["differences"]), index


def test_every_mode_from_the_run_file(tmp_path):
    make_project(tmp_path)
    code, out, data = run(tmp_path, "--mode", "all", "--fuzz", "60")
    assert code == 0, out
    modes = [p["mode"] for p in data["pairs"]]
    assert modes == ["inprocess", "live", "fuzz"]
    assert data["pairs"][1]["reference"] == "flask@gunicorn" and data["pairs"][1]["candidate"] == "port@hypercorn"
    # the size edges were played live, and what gunicorn refuses was seen (and allowed)
    live = results(data, 1)
    assert live["edge-request-line-4095"]["allowed"][0]["reference"] == 414
    assert live["edge-request-line-4094"]["status"] == "same"
    assert "Failed to find attribute" not in out
    assert len(out.splitlines()) < 40, out  # quiet: the apps' logs went to a file


def test_a_session_value_stored_as_a_string_is_a_difference(tmp_path):
    make_project(tmp_path, user_id="1", candidate_user_id='"1"')
    for _ in range(3):
        code, out, data = run(tmp_path)
        assert code == 1, out
        differs = {k for k, r in results(data).items() if r["differences"]}
        assert "login-then-me/login" in differs, out


def test_both_sides_failing_alike_is_not_agreement(tmp_path):
    make_project(tmp_path)
    (tmp_path / "corpus.toml").write_text('[[scenario]]\nname = "boom"\npath = "/boom"\n')
    code, out, data = run(tmp_path)
    assert data["pairs"][0]["counts"]["both 5xx"] == 1 and data["pairs"][0]["counts"]["same"] == 0
    assert "BOTH sides" in out and "WARNING" in out
    boom = results(data)["boom"]
    assert "the database is not initialised" in boom["candidate"]["log"]
    assert "the database is not initialised" in boom["reference"]["log"]


@pytest.mark.parametrize(
    "text, message",
    [
        ('[reference]\napp = "app:create_app"\n', "[candidate] is missing"),
        ('[reference]\npath = "nowhere"\napp = "a:b"\n[candidate]\napp = "a:b"\n', "no folder"),
        ('[reference]\napp = "a:b"\n[candidate]\napp = "a:b"\n[run]\ncorpus = "x.toml"\nspeed = 1\n', "unknown key"),
        ('[reference]\napp = "a:b"\n[candidate]\napp = "a:b"\n[setup]\nhook = "nocolon"\n', "MODULE:FUNCTION"),
        ('[referense]\napp = "a:b"\n', "unknown table"),
    ],
)
def test_a_bad_run_file_is_one_line_and_exit_2(tmp_path, text, message):
    (tmp_path / "compat.toml").write_text(text)
    code, out, _ = run(tmp_path)
    assert code == 2, out
    assert message in out and "Traceback" not in out
    assert len(out.strip().splitlines()) == 1, out


def test_an_app_that_does_not_import_is_exit_2(tmp_path):
    make_project(tmp_path)
    (tmp_path / "quart_side" / "app" / "__init__.py").write_text("import not_a_module_anywhere\n")
    code, out, _ = run(tmp_path)
    assert code == 2, out
    assert "candidate" in out and "not_a_module_anywhere" in out


def test_the_reference_from_a_git_ref_of_the_same_project(tmp_path):
    """The Flask app as committed on a branch, the port in the working tree: one checkout."""
    make_project(tmp_path)
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run(git[:3] + ["init", "-q", "-b", "main"], check=True)
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-qm", "flask"], check=True)
    # the working tree's Flask side changes after the commit: the run must use main's
    flask = tmp_path / "flask_side" / "app" / "__init__.py"
    flask.write_text(flask.read_text().replace("greeting=greeting)", "greeting=greeting, extra=1)"))
    run_file = tmp_path / "compat.toml"
    run_file.write_text(run_file.read_text().replace("[reference]\n", '[reference]\ngit = "main"\n'))
    code, out, data = run(tmp_path)
    assert code == 0, out
    assert data["meta"]["reference"] == "app:create_app@main"
    assert results(data)["index"]["status"] == "same"
    # and without the ref, the working tree's change shows
    run_file.write_text(run_file.read_text().replace('git = "main"\n', ""))
    code, out, data = run(tmp_path)
    assert code == 1 and any(d["where"] == "$.extra" for d in results(data)["index"]["differences"]), out


def test_a_git_ref_that_does_not_exist_is_one_line(tmp_path):
    make_project(tmp_path)
    subprocess.run(["git", "-C", str(tmp_path), "init", "-q"], check=True)
    run_file = tmp_path / "compat.toml"
    run_file.write_text(run_file.read_text().replace("[reference]\n", '[reference]\ngit = "no-such-branch"\n'))
    code, out, _ = run(tmp_path)
    assert code == 2 and "no-such-branch" in out and len(out.strip().splitlines()) == 1, out


def test_a_ready_app_object_instead_of_a_factory(tmp_path):
    """``app = "MODULE:ATTR"`` may name an app built at import time (no factory, no hook)."""
    make_project(tmp_path, hook=False)
    for side in ("flask_side", "quart_side"):
        init = tmp_path / side / "app" / "__init__.py"
        init.write_text(
            init.read_text()
            .replace('greeting="hello from flask"', 'greeting="hi"')
            .replace('greeting="hello from quart"', 'greeting="hi"')
            + '\nimport os as _os\nAPPLICATION = create_app(_os.environ["COMPAT_INSTANCE"])\n'
        )
    run_file = tmp_path / "compat.toml"
    run_file.write_text(run_file.read_text().replace('app = "app:create_app"', 'app = "app:APPLICATION"'))
    code, out, data = run(tmp_path, "--mode", "all", "--fuzz", "30")
    assert code == 0, out
    assert [p["mode"] for p in data["pairs"]] == ["inprocess", "live", "fuzz"]
    assert results(data)["count"]["status"] == "same"


def test_the_logs_folder_keeps_what_is_not_a_previous_runs_log(tmp_path):
    make_project(tmp_path)
    logs = tmp_path / "mine"
    logs.mkdir()
    (logs / "notes.txt").write_text("keep me")
    (logs / "old.log").write_text("from the previous run")
    code, out, _ = run(tmp_path, "--logs", str(logs))
    assert code == 0, out
    assert (logs / "notes.txt").read_text() == "keep me" and not (logs / "old.log").exists()
    assert sorted(p.name for p in logs.glob("*.log")) == ["candidate.log", "reference-2.log", "reference.log"]
