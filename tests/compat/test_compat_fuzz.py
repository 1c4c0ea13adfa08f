"""Fuzz learns from the corpus (hints) and always tries the size edges. Fast: no server."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
from flask import Blueprint, Flask

from compat.corpus import MODES, Scenario, Step, build_request, load
from compat.edges import (
    HEADER_LINES,
    PAD_HEADER,
    REQUEST_LINES,
    edge_scenarios,
    header_line,
    request_line,
)
from compat.fuzz import generate, to_scenarios
from compat.hints import learn_hints, route_rules

MIB = 1024 * 1024

CORPUS = """
[[scenario]]
name = "index"
path = "/"

[[scenario]]
name = "style"
path = "/static/style.css"

[[scenario]]
name = "create-note"
method = "POST"
path = "/notes"
json = { title = "t", body_text = "b" }

[[scenario]]
name = "create-note-again"
method = "POST"
path = "/notes"
content_type = "application/json"
body = '{"title": "u", "pinned": true}'

[[scenario]]
name = "list-by-tag"
path = "/notes?tag=x&tag=y"
headers = { Cookie = "theme=dark; lang=fr", X-Trace = "abc" }

[[scenario]]
name = "read-note"
path = "/notes/7"

[[scenario]]
name = "upload"
method = "POST"
path = "/notes/7/attachments"
form = [["caption", "a cat"]]
files = [{ field = "attachment", filename = "cat.txt", content = "meow" }]

[[scenario]]
name = "signin-alone"
method = "POST"
path = "/login"
urlencoded = [["username", "x"], ["password", "wrong"]]
note = "a scenario, not a sequence: no login"

[[sequence]]
name = "create-read"

[[sequence.step]]
name = "create"
method = "POST"
path = "/notes"
json = { title = "s" }
capture = { location = "header:Location" }

[[sequence.step]]
name = "read"
path = "${location}"

[[sequence]]
name = "log-in-and-look"

[[sequence.step]]
name = "login"
method = "POST"
path = "/login"
urlencoded = [["username", "ann"], ["password", "secret"]]

[[sequence.step]]
name = "look"
path = "/notes"
"""


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory) -> list[Scenario]:
    path = tmp_path_factory.mktemp("corpus") / "corpus.toml"
    path.write_text(CORPUS, encoding="utf-8")
    return load(path).scenarios


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Flask:
    root = tmp_path_factory.mktemp("tiny")
    (root / "static").mkdir()
    (root / "static" / "style.css").write_text("body {}")
    app = Flask("tiny", root_path=str(root))
    app.add_url_rule("/", "index", lambda: "hi")
    app.add_url_rule("/notes", "notes", lambda: "[]", methods=["GET", "POST"])
    app.add_url_rule("/notes/<int:note_id>", "note", lambda note_id: "{}")
    app.add_url_rule("/notes/<int:note_id>/attachments", "attach", lambda note_id: "", methods=["POST"])
    app.add_url_rule("/login", "login", lambda: "", methods=["POST"])
    admin = Blueprint(
        "admin", "tiny_admin", static_folder=str(root / "static"), static_url_path="/assets", url_prefix="/admin"
    )
    admin.add_url_rule("/", "home", lambda: "admin")
    app.register_blueprint(admin)
    return app


@pytest.fixture(scope="module")
def rules(app):
    return route_rules(app)


@pytest.fixture(scope="module")
def hints(scenarios):
    return learn_hints(scenarios)


# ---------------------------------------------------------------------------- route table and hints


def test_route_rules_include_static_routes_of_app_and_blueprints(rules):
    by_rule = {r: (m, c) for r, m, c in rules}
    assert by_rule["/static/<path:filename>"][1] == {"filename": "PathConverter"}
    assert "GET" in by_rule["/static/<path:filename>"][0]
    assert "/admin/assets/<path:filename>" in by_rule
    assert by_rule["/notes/<int:note_id>"][1] == {"note_id": "IntegerConverter"}
    assert rules == sorted(rules)


def test_hints_learn_names_files_types_and_the_login_sequence(hints):
    assert {"title", "body_text", "pinned"} <= set(hints.json_fields)  # json = {...} and a JSON text body
    assert {"caption", "username", "password"} <= set(hints.form_fields)  # multipart and urlencoded
    assert hints.file_fields == ["attachment"]
    assert hints.query_params == ["tag"]
    assert hints.static_files == ["style.css"]
    assert hints.cookies == ["lang", "theme"]
    assert hints.headers == {"X-Trace": ["abc"]}  # Cookie, Content-Type, Authorization are generated apart
    assert {"application/json", "application/x-www-form-urlencoded"} <= set(hints.content_types)
    # the first *sequence* that POSTs a password (a lone scenario posting one is not a login)
    assert hints.login == "log-in-and-look"
    assert hints.json_fields == sorted(hints.json_fields)


def test_login_found_by_path_and_absent_without_one():
    login = Scenario(
        name="signin-json",
        steps=[
            Step(name="in", method="POST", path="/auth/SignIn", body_spec={"json": {"user": "a"}}),
            Step(name="me", path="/me"),
        ],
    )
    plain = Scenario(
        name="plain",
        steps=[
            Step(name="create", method="POST", path="/notes", body_spec={"json": {"title": "t"}}),
            Step(name="read", path="/notes/1"),
        ],
    )
    getter = Scenario(name="get-login-page", steps=[Step(name="page", path="/login"), Step(name="again", path="/")])
    assert learn_hints([plain, getter, login]).login == "signin-json"
    assert learn_hints([plain, getter]).login is None  # a GET of /login logs nobody in


def test_hints_matched_against_the_rules(hints, rules):
    bound = hints.for_rules(rules)
    assert bound.rules["/notes/<int:note_id>"].values == {"note_id": ["7"]}
    assert bound.rules["/static/<path:filename>"].values["filename"] == ["style.css"]
    assert bound.rules["/admin/assets/<path:filename>"].values["filename"] == ["style.css"]  # a static file
    notes = bound.rules["/notes"]
    assert {"title", "body_text", "pinned"} <= set(notes.json_fields)
    assert notes.query_params == ["tag"]
    assert set(notes.methods) == {"GET", "POST"}
    assert bound.rules["/notes/<int:note_id>/attachments"].file_fields == ["attachment"]
    assert bound.rules["/notes/<int:note_id>/attachments"].json_fields == []  # per rule, not global
    assert "${location}" not in {s.path for s, _r in bound.matched}


# ---------------------------------------------------------------------------- generation


def _json_keys(req) -> set[str]:
    try:
        value = json.loads(req["body"] or b"")
    except ValueError:
        return set()
    return set(value) if isinstance(value, dict) else set()


@pytest.fixture(scope="module")
def learnt(rules, hints):
    return generate(rules, 400, 3, hints)


def test_generate_uses_learnt_field_names_static_files_and_path_values(rules, learnt):
    blind = generate(rules, 200, 3)
    assert len(learnt) == 400

    def field_uses(reqs):
        return sum(1 for r in reqs if _json_keys(r) & {"title", "body_text", "pinned"})

    assert field_uses(learnt) >= 10 and field_uses(learnt) > 6 * field_uses(blind)
    assert any(r["path"] == "/static/style.css" for r in learnt)
    assert not any("style.css" in r["path"] for r in blind)
    assert any(r["path"].startswith("/notes/7") for r in learnt)
    assert any(r["body"] and b'name="attachment"; filename=' in r["body"] for r in learnt)  # a learnt file field
    assert any(re.search(r"[?&]tag=", r["path"]) for r in learnt)
    assert any(h[0] == "Cookie" and re.match(r"(theme|lang)=", h[1]) for r in learnt for h in r["headers"])


def test_generate_is_deterministic_for_a_seed(rules, hints):
    a = generate(rules, 60, 11, hints)
    assert a == generate(rules, 60, 11, learn_hints_again(hints))
    assert a != generate(rules, 60, 12, hints)


def learn_hints_again(hints):
    """Fresh hints from the same corpus (no cache shared with the first)."""
    from dataclasses import replace

    return replace(hints)


def test_session_marks_about_half_when_there_is_a_login(rules, learnt, scenarios):
    reqs = learnt
    share = sum(r["session"] for r in reqs) / len(reqs)
    assert 0.3 < share < 0.7
    no_login = learn_hints([s for s in scenarios if s.name != "log-in-and-look"])
    assert no_login.login is None
    assert not any(r["session"] for r in generate(rules, 60, 5, no_login))
    tagged = to_scenarios(reqs)
    assert all(("session" in s.tags) == r["session"] for s, r in zip(tagged, reqs))
    assert all(s.tags[0] == "fuzz" and s.tags[1] == r["rule"] for s, r in zip(tagged, reqs))


def test_bodies_up_to_a_few_hundred_kb_built_back_exactly(learnt):
    reqs = learnt
    sizes = [len(r["body"]) for r in reqs if r["body"] is not None]
    assert max(sizes) > 50_000 and max(sizes) <= 1_300_000  # a urlencoded value of spaces triples
    assert sum(1 for n in sizes if n > 4096) >= 5
    for scenario, req in zip(to_scenarios(reqs), reqs):
        step = scenario.steps[0]
        built = build_request(step)
        assert built.body == req["body"], scenario.name
        assert built.method == req["method"] and built.path == req["path"]
        if req["body"] is not None and len(req["body"]) > 4096:
            assert "body_hex" not in step.body_spec or not req["body"].isascii(), scenario.name


# ---------------------------------------------------------------------------- edges


@pytest.fixture(scope="module")
def edges(rules, hints):
    return edge_scenarios(rules, hints, [1_048_576, 4_194_304, 1_048_576])


def _built(edges):
    return {s.name: (s, build_request(s.steps[0])) for s in edges}


def test_edges_are_few_named_stably_and_run_in_both_modes(edges, rules, hints):
    names = [s.name for s in edges]
    assert len(names) == len(set(names)) == 12 + 2 * 2  # limits deduplicated
    assert names == [s.name for s in edge_scenarios(rules, None, [4_194_304, 1_048_576])]
    for s in edges:
        assert s.name.startswith("edge-") and "edge" in s.tags
        assert tuple(s.modes) == MODES
        assert len(s.steps) == 1


def test_edge_request_lines_have_the_length_they_claim_on_a_get_route(edges, rules):
    built = _built(edges)
    get_rules = {r for r, m, _c in rules if "GET" in m}
    for length in REQUEST_LINES:
        _s, req = built[f"edge-request-line-{length}"]
        assert req.method == "GET"
        assert len(request_line(req.method, req.path)) == length
        assert len((req.method + " " + req.path + " HTTP/1.1").encode()) == length
        assert req.path.split("?", 1)[0] in get_rules
    assert {4090, 4100, 8200} <= set(REQUEST_LINES)


def test_edge_headers_have_the_length_they_claim(edges):
    built = _built(edges)
    for length in HEADER_LINES:
        _s, req = built[f"edge-header-{length}"]
        pads = [(n, v) for n, v in req.headers if n == PAD_HEADER]
        assert len(pads) == 1
        assert len(header_line(*pads[0])) == length
        assert len(f"{pads[0][0]}: {pads[0][1]}".encode()) == length
    assert {8100, 8200, 16384} <= set(HEADER_LINES)
    _s, many = built["edge-header-count-120"]
    assert sum(1 for n, _v in many.headers if n.startswith(PAD_HEADER)) == 120


def test_edge_bodies_have_the_size_they_claim_on_a_route_the_corpus_posts_to(edges):
    built = _built(edges)
    expected = {
        "edge-body-16mib": 16 * MIB,
        "edge-body-16mib-plus-1": 16 * MIB + 1,
        "edge-body-16mib-plus-1-chunked": 16 * MIB + 1,
        "edge-body-limit-1048576": 1_048_576,
        "edge-body-limit-1048576-plus-1": 1_048_577,
        "edge-body-limit-4194304": 4_194_304,
        "edge-body-limit-4194304-plus-1": 4_194_305,
    }
    for name, size in expected.items():
        scenario, req = built[name]
        assert len(req.body) == size, name
        assert set(scenario.steps[0].body_spec) == {"body_size", "body_fill"}  # no bytes kept in the scenario
        assert req.method == "POST" and req.path == "/notes", name  # the corpus POSTs JSON to /notes
        assert ("Content-Type", "application/json") in req.headers
        assert req.chunked == name.endswith("-chunked")
    assert len({id(s) for s, _r in built.values()}) == len(built)


def test_edge_body_target_without_hints_is_a_post_rule(rules):
    built = _built(edge_scenarios(rules, None, []))
    _s, req = built["edge-body-16mib"]
    post_rules = {r for r, m, _c in rules if "POST" in m}
    assert req.method == "POST" and req.path in post_rules
    assert not any(name.startswith("edge-body-limit") for name in built)
    assert Counter(s.tags[1] for s, _r in built.values()) == {"request-line": 5, "header": 4, "body": 3}


def test_a_seed_gives_the_same_requests_whatever_the_process_imported():
    """Hypothesis draws constants from every local module loaded: the generator must not."""
    import subprocess
    import sys

    script = (
        "import hashlib, importlib, sys\n"
        "for m in sys.argv[1:]: importlib.import_module(m)\n"
        "from flask import Flask\n"
        "from compat.fuzz import generate, route_rules\n"
        "app = Flask('x')\n"
        "app.add_url_rule('/notes/<int:n>', 'n', lambda n: '', methods=['GET', 'POST'])\n"
        "print(hashlib.sha1(repr(generate(route_rules(app), 300, 5)).encode()).hexdigest())\n"
    )
    root = Path(__file__).resolve().parents[2]
    digests = {
        subprocess.run(
            [sys.executable, "-c", script, *mods], cwd=root, capture_output=True, text=True, check=True
        ).stdout
        for mods in ([], ["compat.report"], ["compat.__main__", "tests.compat.test_compat_noise"])
    }
    assert len(digests) == 1, digests
