"""The corpus is data: loaded from TOML, expanded, checked; and it covers SPEC.md."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from compat.corpus import BOUNDARY, DEFAULT_CORPUS, CorpusError, build_request, load
from compat.instance import TOKENS

# The seed routes of SPEC.md (the port-only routes are not compared).
SEED_ROUTES = {
    ("GET", "/"),
    ("POST", "/"),
    ("GET", "/usrname"),
    ("GET", "/login"),
    ("GET", "/regist"),
    ("GET", "/json/list"),
    ("GET", "/json/dict"),
    ("GET", "/_get_current_user"),
    ("GET", "/data/"),
    ("POST", "/data/"),
    ("GET", "/demo"),
    ("POST", "/demo"),
    ("GET", "/files/<name>"),
    ("GET", "/api/<user>/<uuid>"),
    ("POST", "/api/<user>/<uuid>"),
    ("POST", "/api/exec/<uuid>"),
    ("GET", "/healthz"),
    ("GET", "/api/poll/<uuid>"),
    ("POST", "/api/poll/<uuid>"),
}
PATTERNS = {
    "/files/<name>": r"/files/[^/]+",
    "/api/<user>/<uuid>": r"/api/(?!exec/|poll/)[^/]+/[^/]+",
    "/api/exec/<uuid>": r"/api/exec/[^/]+",
    "/api/poll/<uuid>": r"/api/poll/[^/]+",
}


@pytest.fixture(scope="module")
def corpus():
    return load(DEFAULT_CORPUS)


def _requests(corpus):
    out = []
    for s in corpus.scenarios:
        variables = {"stored": "/files/0123456789abcdef-x.txt", "etag": '"e"', "modified": "m"}
        for step in s.steps:
            if not step.action:
                out.append((s, build_request(step, variables)))
    return out


def test_at_least_300_scenarios_with_unique_names(corpus):
    names = [s.name for s in corpus.scenarios]
    assert len(names) >= 300
    assert len(set(names)) == len(names)


def test_every_seed_route_has_scenarios_with_head_and_options(corpus):
    seen = set()
    for _s, req in _requests(corpus):
        path = req.path.split("?", 1)[0]
        for _method, route in SEED_ROUTES:
            pattern = PATTERNS.get(route, re.escape(route))
            if re.fullmatch(pattern, path):
                seen.add((req.method, route))
    assert SEED_ROUTES <= seen, SEED_ROUTES - seen
    for _m, route in SEED_ROUTES:
        assert ("HEAD", route) in seen, route
        assert ("OPTIONS", route) in seen, route


def test_the_issue_list_is_covered(corpus):
    reqs = _requests(corpus)
    ctypes = {dict((k.lower(), v) for k, v in r.headers).get("content-type") for _s, r in reqs}
    assert {
        None,
        "application/json",
        "application/octet-stream",
        "text/plain",
        "application/json; charset=utf-8",
        "not a content type",
    } <= ctypes
    auths = {dict((k.lower(), v) for k, v in r.headers).get("authorization") for _s, r in reqs}
    assert {
        None,
        "Bearer",
        "Bearer " + TOKENS["admin"],
        "Bearer " + TOKENS["viewer"],
        "Bearer " + TOKENS["agent"],
    } <= auths
    assert any(r.chunked for _s, r in reqs)
    assert any(r.body and len(r.body) > 1048576 for _s, r in reqs)  # over the configured limit
    assert any(b'filename="../../etc/passwd"' in (r.body or b"") for _s, r in reqs)
    assert any(r.body and r.body.count(b'name="list"') >= 2 for _s, r in reqs)
    headers = {k.lower() for _s, r in reqs for k, _v in r.headers}
    assert {"if-none-match", "if-modified-since", "range", "x-request-id"} <= headers
    assert any(r.path in ("/data",) for _s, r in reqs) and any(r.path == "/data/" for _s, r in reqs)
    assert any("?" in r.path for _s, r in reqs)
    sequences = {s.name for s in corpus.scenarios if s.is_sequence}
    assert {"job-gated", "upload-then-fetch"} <= sequences


def test_placeholders_multipart_and_json_are_built(corpus):
    by_name = {s.name: s for s in corpus.scenarios}
    req = build_request(by_name["demo-post-form-id"].steps[0])
    assert ("Authorization", "Bearer " + TOKENS["admin"]) in req.headers
    assert ("Content-Type", f"multipart/form-data; boundary={BOUNDARY}") in req.headers
    assert req.body.count(b"--" + BOUNDARY.encode()) == 5
    req = build_request(by_name["data-post-object"].steps[0])
    assert json.loads(req.body) == {"a": 1, "b": [1, 2], "c": {"d": "e"}} and b" " not in req.body
    seed = build_request(by_name["data-post-seed-payload"].steps[0])
    assert len(seed.body) == 3188890


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


def test_matrix_expands_every_combination(tmp_path):
    corpus = load(
        _write(
            tmp_path,
            """
[[matrix]]
name = "m-${method}-${r.n}"
method = "${method}"
path = "${r.p}"
[matrix.vary]
method = ["GET", "HEAD"]
r = [{n = "a", p = "/a"}, {n = "b", p = "/b"}]
""",
        )
    )
    assert [(s.name, s.steps[0].method, s.steps[0].path) for s in corpus.scenarios] == [
        ("m-GET-a", "GET", "/a"),
        ("m-GET-b", "GET", "/b"),
        ("m-HEAD-a", "HEAD", "/a"),
        ("m-HEAD-b", "HEAD", "/b"),
    ]


@pytest.mark.parametrize(
    "text, message",
    [
        ('[[scenario]]\nname = "a"\nbogus = 1\n', "unknown key"),
        ('[[scenario]]\nname = "a"\n[[scenario]]\nname = "a"\n', "duplicate scenario name"),
        ('[[scenario]]\nname = "a"\nbody = "x"\njson = 1\n', "more than one body"),
        ('[[scenario]]\npath = "/"\n', "needs a name"),
        ('[[sequence]]\nname = "s"\n', "needs [[sequence.step]]"),
        ("[nonsense]\n", "unknown table"),
    ],
)
def test_bad_corpus_files_are_refused(tmp_path, text, message):
    with pytest.raises(CorpusError, match=re.escape(message)):
        load(_write(tmp_path, text))
