"""The catalogue of known Flask -> Quart and gunicorn -> Hypercorn differences (compat/known.py).

Each entry has a piece of evidence it must explain (as the best match) and a near miss it
must not match at all; a difference that is none of them is explained by nothing. The last
tests play a Flask app and its Quart twin in-process, compare their real answers with
:mod:`compat.compare`, and check that the catalogue names what the frameworks really do.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import sqlite3
from pathlib import Path

import pytest

from compat.clients import Reply
from compat.compare import Difference
from compat.known import CATALOGUE, LAYERS, Evidence, Known, as_dict, by_id, explain, explain_all

MIB = 1024 * 1024
GUNICORN_431 = (
    b"<html>\n  <head>\n    <title>Request Header Fields Too Large</title>\n  </head>\n"
    b"  <body>\n    <h1><p>Request Header Fields Too Large</p></h1>\n  </body>\n</html>\n"
)
WERKZEUG_404 = b"<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n"


def ev(
    kind: str,
    where: str,
    ref=None,
    cand=None,
    *,
    request=None,
    reference=None,
    candidate=None,
    log: str = "",
    mode: str = "inprocess",
    pair: str = "flask/port",
) -> Evidence:
    return Evidence(
        Difference(kind, where, ref, cand), request, reference, candidate, candidate_log=log, mode=mode, pair=pair
    )


def status(ref: int, cand: int, **kw) -> Evidence:
    kw.setdefault("reference", Reply(ref, [("Content-Type", "text/html; charset=utf-8")], b"x"))
    kw.setdefault("candidate", Reply(cand, [("Content-Type", "text/html; charset=utf-8")], b"y"))
    return ev("status", "status", ref, cand, **kw)


def req(method: str = "GET", path: str = "/", headers=(), body_length: int = 0, **extra) -> dict:
    return {
        "method": method,
        "path": path,
        "headers": [list(h) for h in headers],
        "body_length": body_length,
        "body_preview": "",
        "chunked": False,
        **extra,
    }


def session_cookie(
    payload: dict | str,
    timestamp: str = "aw7rXw",
    signature: str = "8NlPn7jZd8oL32EPpb1zEqczqIs",
    name: str = "session",
) -> str:
    raw = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    b64 = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
    return f"{name}={b64}.{timestamp}.{signature}; HttpOnly; Path=/"


SQLITE_LOG = (
    "ERROR in app: Exception on request GET /db\nTraceback (most recent call last):\n"
    "sqlite3.ProgrammingError: SQLite objects created in a thread can only be used in that same "
    "thread. The object was created in thread id 1 and this is thread id 2."
)
FLASHED_SORTED = '{"_flashes":[{" t":["message","hi"]}],"user":"u"}'
FLASHED_INSERTION = '{"user":"u","_flashes":[{" t":["message","hi"]}]}'
WSGI_PAIR = "flask@gunicorn/flask@hypercorn-wsgi"
LIVE_PAIR = "flask@gunicorn/port@hypercorn"

# id -> (evidence it must explain, as the best match; a near miss it must not match at all)
CASES: dict[str, tuple[Evidence, Evidence]] = {
    "vary-cookie": (
        ev("header-missing", "vary", ["Cookie"], None),
        ev("header-missing", "vary", ["Accept-Encoding"], None),
    ),
    "max-content-length-16mib": (
        status(
            200,
            413,
            request=req("POST", "/data/", [("Content-Type", "application/octet-stream")], body_length=17 * MIB),
        ),
        status(200, 413, request=req("POST", "/data/", body_length=64 * 1024)),  # the port's own limit
    ),
    "get-json-silent": (
        status(415, 400, request=req("POST", "/notes", [("Content-Type", "text/plain")], 17)),
        status(415, 400, request=req("POST", "/notes", [("Content-Type", "application/json")], 17)),
    ),
    "get-json-encoding": (
        status(
            400,
            500,
            request=req("POST", "/add", [("Content-Type", "application/json")], 4),
            log="UnicodeDecodeError: 'utf-8' codec can't decode byte 0xff in position 0",
        ),
        status(
            400,
            500,
            request=req("POST", "/add", [("Content-Type", "application/json")], 4),
            log="Traceback (most recent call last):\nZeroDivisionError: division by zero",
        ),
    ),
    "sync-hook-thread": (
        status(200, 500, log=SQLITE_LOG),
        status(200, 500, log="Traceback (most recent call last):\nZeroDivisionError: division by zero"),
    ),
    "send-file-conditional": (
        status(304, 200, request=req("GET", "/files/a.txt", [("If-None-Match", '"abc"')])),
        status(304, 200, request=req("GET", "/files/a.txt")),
    ),
    "send-file-cache": (
        ev("header-value", "cache-control", ["no-cache"], ["public, max-age=43200"]),
        ev("header-value", "cache-control", ["no-cache"], ["no-store"]),
    ),
    "send-file-headers": (
        ev("header-missing", "content-disposition", ["inline; filename=a.txt"], None),
        ev("header-missing", "x-request-id", ["abc"], None),
    ),
    "content-length-204": (
        ev(
            "header-extra",
            "content-length",
            None,
            ["0"],
            reference=Reply(204),
            candidate=Reply(204, [("content-length", "0")]),
        ),
        ev(
            "header-extra",
            "content-length",
            None,
            ["0"],
            reference=Reply(200),
            candidate=Reply(200, [("content-length", "0")]),
        ),
    ),
    "session-cookie-key-order": (
        ev(
            "header-value",
            "set-cookie",
            [session_cookie(FLASHED_SORTED)],
            [session_cookie(FLASHED_INSERTION, signature="j3YreLxEiS-oqYvmBhkRndd3ZLc")],
        ),
        ev(
            "header-value",
            "set-cookie",
            [session_cookie({"user": "u"})],
            [session_cookie({"user": "v"}, signature="j3YreLxEiS-oqYvmBhkRndd3ZLc")],
        ),
    ),
    "server-name-host": (
        status(
            200,
            404,
            log="UserWarning: Current server name 'localhost' doesn't match configured server name 'example.com'",
        ),
        status(200, 404),
    ),
    "allow-header-order": (
        ev("header-value", "allow", ["GET, HEAD, OPTIONS"], ["OPTIONS, GET, HEAD"]),
        ev("header-value", "allow", ["GET, HEAD, OPTIONS"], ["GET, HEAD, OPTIONS, POST"]),
    ),
    "repeated-request-header": (
        status(401, 200, request=req("GET", "/api/x", [("Authorization", "Bearer a"), ("Authorization", "Bearer b")])),
        status(401, 200, request=req("GET", "/api/x", [("Authorization", "Bearer a"), ("X-Request-ID", "b")])),
    ),
    "body-timeout-408": (
        status(200, 408),
        status(200, 400),
    ),
    "redirect-location": (
        ev("header-value", "location", ["http://localhost/notes/1"], ["/notes/1"]),
        ev("header-value", "location", ["/notes/1"], ["/notes/2"]),
    ),
    "server-request-line-414": (
        status(414, 200, request=req("GET", "/" + "a" * 5000), mode="live", pair=LIVE_PAIR),
        status(414, 200, request=req("GET", "/" + "a" * 5000), mode="inprocess"),
    ),
    "server-header-431": (
        status(431, 200, request=req("GET", "/", [("X-Big", "v" * 9000)]), mode="live", pair=LIVE_PAIR),
        status(431, 200, request=req("GET", "/", [("X-Big", "v" * 100)]), mode="live", pair=LIVE_PAIR),
    ),
    "head-options": (
        status(
            200,
            500,
            request=req("HEAD", "/notes"),
            candidate=Reply(500, [("content-length", "0")], b""),
            mode="live",
            pair=WSGI_PAIR,
        ),
        status(
            200,
            500,
            request=req("HEAD", "/notes"),
            candidate=Reply(500, [("content-length", "0")], b""),
            mode="live",
            pair=LIVE_PAIR,
        ),
    ),
    "hypercorn-wsgi-body": (
        status(
            200,
            400,
            request=req("POST", "/data/", body_length=17 * MIB),
            candidate=Reply(400),
            mode="live",
            pair=WSGI_PAIR,
        ),
        status(
            200,
            400,
            request=req("POST", "/data/", body_length=17 * MIB),
            candidate=Reply(400),
            mode="live",
            pair=LIVE_PAIR,
        ),
    ),
    "server-forwarded-proto": (
        ev(
            "header-value",
            "location",
            ["https://127.0.0.1:5000/dir/"],
            ["http://127.0.0.1:5000/dir/"],
            request=req("GET", "/dir", [("X-Forwarded-Proto", "https")]),
            mode="live",
            pair=LIVE_PAIR,
        ),
        ev(
            "header-value",
            "location",
            ["https://127.0.0.1:5000/dir/"],
            ["http://127.0.0.1:5000/dir/"],
            request=req("GET", "/dir"),
            mode="live",
            pair=LIVE_PAIR,
        ),
    ),
    "server-error-page": (
        ev(
            "body",
            "body",
            GUNICORN_431,
            b"",
            mode="live",
            pair=LIVE_PAIR,
            reference=Reply(431, [("Content-Type", "text/html")], GUNICORN_431),
            candidate=Reply(431, [("content-length", "0")], b""),
        ),
        ev(
            "body",
            "body",
            WERKZEUG_404,
            b"",
            mode="live",
            pair=LIVE_PAIR,
            reference=Reply(404, [("Content-Type", "text/html")], WERKZEUG_404),
            candidate=Reply(404, [("content-length", "0")], b""),
        ),
    ),
    "request-form-await": (
        status(
            200,
            500,
            log="TypeError: 'coroutine' object is not subscriptable\n"
            "RuntimeWarning: coroutine 'Request.form' was never awaited",
        ),
        status(200, 500, log="TypeError: unsupported operand type(s) for +: 'int' and 'str'"),
    ),
    "missing-await-render": (
        status(
            200,
            500,
            log="TypeError: The response value type (coroutine) is not valid\n"
            "RuntimeWarning: coroutine 'render_template' was never awaited",
        ),
        status(200, 500, log="jinja2.exceptions.TemplateNotFound: index.html"),
    ),
    "flash-session": (
        ev(
            "header-missing",
            "set-cookie",
            [session_cookie(FLASHED_SORTED)],
            None,
            log="RuntimeWarning: coroutine 'flash' was never awaited",
        ),
        ev("header-missing", "set-cookie", [session_cookie({"user": "u"})], None),
    ),
    "secret-key-session-cookie": (
        ev(
            "header-value",
            "set-cookie",
            [session_cookie({"user": "u"})],
            [session_cookie({"user": "u"}, signature="OtherSignatureOtherSignature")],
        ),
        ev(
            "header-value",
            "set-cookie",
            [session_cookie({"user": "u"})],
            [session_cookie({"user": "u"}, timestamp="aw7rYg", signature="OtherSignatureOtherSignature")],
        ),
    ),
    "send-file-kwargs": (
        status(200, 500, log="TypeError: send_file() got an unexpected keyword argument 'download_name'"),
        status(200, 500, log="TypeError: send_file() missing 1 required positional argument: 'filename_or_io'"),
    ),
    "json-provider": (
        ev("json-format", "body", b'{"a":1,"b":2}\n', b'{"a": 1, "b": 2}'),
        ev("json", "$.a", 1, 2),
    ),
    "content-type-charset": (
        ev("header-value", "content-type", ["text/plain; charset=utf-8"], ["text/plain"]),
        ev("header-value", "content-type", ["text/plain; charset=utf-8"], ["text/html; charset=utf-8"]),
    ),
}

IDS = [k.id for k in CATALOGUE]


def matched_ids(e: Evidence) -> list[str]:
    return [k.id for k, _ in explain_all(e)]


def test_every_entry_has_a_case_and_every_case_an_entry():
    assert sorted(CASES) == sorted(IDS)


@pytest.mark.parametrize("entry_id", IDS)
def test_entry_explains_its_evidence(entry_id):
    known = explain(CASES[entry_id][0])
    assert known is not None and known.id == entry_id, matched_ids(CASES[entry_id][0])


@pytest.mark.parametrize("entry_id", IDS)
def test_entry_does_not_match_its_near_miss(entry_id):
    assert entry_id not in matched_ids(CASES[entry_id][1])


def test_an_unrelated_difference_is_explained_by_nothing():
    e = ev(
        "json",
        "$.data.name",
        "web-1",
        "web-2",
        request=req("GET", "/api/hosts/1"),
        reference=Reply(200, [("Content-Type", "application/json")], b'{"data":{"name":"web-1"}}\n'),
        candidate=Reply(200, [("Content-Type", "application/json")], b'{"data":{"name":"web-2"}}\n'),
    )
    assert explain(e) is None
    assert explain_all(e) == []
    assert explain(status(200, 201, request=req("POST", "/notes"))) is None


def test_a_log_line_outranks_a_circumstantial_match():
    bare = status(200, 500)  # no log: only the weak fallback fits
    assert [(k.id, s) for k, s in explain_all(bare)] == [("sync-hook-thread", 1)]
    named = status(200, 500, log="TypeError: 'coroutine' object has no attribute 'get'")
    assert explain(named).id == "request-form-await"
    assert "sync-hook-thread" not in matched_ids(named)  # a log that names another cause


def test_strengths_are_ordered_best_first():
    e = status(206, 500, request=req("GET", "/files/a", [("Range", "bytes=-5")]))
    found = explain_all(e)
    assert found[0] == (by_id("send-file-conditional"), 3)
    assert [s for _, s in found] == sorted((s for _, s in found), reverse=True)


def test_the_suites_cookie_kinds_are_read_too():
    # compat.compare reports cookies one by one: cookie-missing / cookie-value / cookie-session
    missing = ev("cookie-missing", "session", session_cookie(FLASHED_SORTED), None)
    assert explain(missing).id == "flash-session"
    sig = ev("cookie-session", "session:signature", "8NlPn7jZd8oL32EPpb1zEqczqIs", "OtherSignature")
    assert explain(sig).id == "secret-key-session-cookie"
    value = ev(
        "cookie-value",
        "session",
        session_cookie(FLASHED_SORTED).split("=", 1)[1].split(";")[0],
        session_cookie(FLASHED_INSERTION).split("=", 1)[1].split(";")[0],
    )
    assert explain(value).id == "session-cookie-key-order"
    other = ev("cookie-value", "theme", "dark", "light")
    assert explain(other) is None


def test_server_limits_follow_gunicorn_exactly():
    def line(n: int) -> Evidence:  # a request line of n bytes: "GET /aaa... HTTP/1.1"
        return status(414, 200, request=req("GET", "/" + "a" * (n - 14)), mode="live", pair=LIVE_PAIR)

    assert "server-request-line-414" not in matched_ids(line(4094))
    assert explain(line(4095)).id == "server-request-line-414"

    def header(n: int) -> Evidence:  # a header line of n bytes with its CRLF
        return status(431, 200, request=req("GET", "/", [("X-A", "v" * (n - 7))]), mode="live", pair=LIVE_PAIR)

    assert "server-header-431" not in matched_ids(header(8190))
    assert explain(header(8191)).id == "server-header-431"
    many = status(431, 200, request=req("GET", "/", [(f"X-{i}", "v") for i in range(100)]), mode="live", pair=LIVE_PAIR)
    assert explain(many).id == "server-header-431"


def test_catalogue_entries_are_well_formed():
    assert len(set(IDS)) == len(IDS)
    for k in CATALOGUE:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", k.id), k.id
        assert k.layer in LAYERS, k.id
        assert k.title and "\n" not in k.title and len(k.title) <= 110, k.id
        assert 40 <= len(k.cause) <= 700 and 20 <= len(k.fix) <= 400, k.id
        assert not k.reference or k.reference.startswith("https://"), k.id
    assert {k.layer for k in CATALOGUE} == set(LAYERS)


def test_as_dict_is_a_plain_json_record():
    d = as_dict(by_id("vary-cookie"))
    assert set(d) == {"id", "title", "layer", "cause", "fix", "reference"}
    assert json.loads(json.dumps(d)) == d
    assert Known(**d) == by_id("vary-cookie")


def test_known_md_documents_every_entry():
    text = (Path(__file__).resolve().parents[2] / "compat" / "KNOWN.md").read_text()
    rows = re.findall(r"^\| `([a-z0-9-]+)` \| (\w+) \|", text, re.M)
    assert sorted(i for i, _ in rows) == sorted(IDS)
    assert {i: layer for i, layer in rows} == {k.id: k.layer for k in CATALOGUE}


# ---------------------------------------------------------------------------- the real frameworks


def _twins(tmp: Path):
    import flask
    import quart

    afile = tmp / "a.txt"
    afile.write_text("hello world\n")

    fa = flask.Flask("known_flask")
    fa.secret_key = "k"

    @fa.get("/who")
    def f_who():
        return {"user": flask.session.get("user")}

    @fa.post("/login")
    def f_login():
        flask.session["user"] = "u"
        flask.flash("hi")
        return "ok"

    @fa.delete("/notes/1")
    def f_delete():
        return "", 204

    @fa.post("/notes")
    def f_create():
        return {"got": flask.request.get_json()}

    @fa.get("/file")
    def f_file():
        return flask.send_file(afile)

    @fa.post("/form")
    def f_form():
        return flask.request.form["a"]

    @fa.post("/data")
    def f_data():
        return str(len(flask.request.get_data()))

    @fa.before_request
    def f_db():
        flask.g.db = sqlite3.connect(":memory:")

    @fa.get("/db")
    def f_dbv():
        return str(flask.g.db.execute("select 1").fetchone()[0])

    qa = quart.Quart("known_quart")
    qa.secret_key = "k"

    @qa.get("/who")
    async def q_who():
        return {"user": quart.session.get("user")}

    @qa.post("/login")
    async def q_login():
        quart.session["user"] = "u"
        await quart.flash("hi")
        return "ok"

    @qa.delete("/notes/1")
    async def q_delete():
        return "", 204

    @qa.post("/notes")
    async def q_create():
        return {"got": await quart.request.get_json()}

    @qa.get("/file")
    async def q_file():
        return await quart.send_file(afile)

    @qa.post("/form")
    async def q_form():
        return quart.request.form["a"]  # the porting mistake: no await

    @qa.post("/data")
    async def q_data():
        return str(len(await quart.request.get_data()))

    @qa.before_request
    def q_db():  # sync: Quart runs it on a thread
        quart.g.db = sqlite3.connect(":memory:")

    @qa.get("/db")
    async def q_dbv():
        return str(quart.g.db.execute("select 1").fetchone()[0])

    return fa, qa


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
async def test_real_flask_and_quart_differences_are_explained(tmp_path, caplog):
    from compat.compare import TRANSPORT_HEADERS, Noise, compare

    fa, qa = _twins(tmp_path)
    fc, qc = fa.test_client(), qa.test_client()
    cases = [
        # (method, path, headers, body, {difference key: expected entry id})
        ("GET", "/who", {}, None, {"header-missing:vary": "vary-cookie"}),
        ("DELETE", "/notes/1", {}, None, {"header-extra:content-length": "content-length-204"}),
        ("POST", "/notes", {"Content-Type": "text/plain"}, b'{"a": 1}', {"status:status": "get-json-silent"}),
        (
            "GET",
            "/file",
            {},
            None,
            {
                "header-missing:content-disposition": "send-file-headers",
                "header-missing:accept-ranges": "send-file-headers",
                "header-value:cache-control": "send-file-cache",
                "header-extra:expires": "send-file-cache",
            },
        ),
        ("GET", "/file", {"Range": "bytes=0-3"}, None, {"status:status": "send-file-conditional"}),
        (
            "POST",
            "/data",
            {"Content-Type": "application/octet-stream"},
            b"x" * (16 * MIB + 1),
            {"status:status": "max-content-length-16mib"},
        ),
        (
            "POST",
            "/form",
            {"Content-Type": "application/x-www-form-urlencoded"},
            b"a=1",
            {"status:status": "request-form-await"},
        ),
        ("GET", "/db", {}, None, {"status:status": "sync-hook-thread"}),
    ]
    for method, path, headers, body, expected in cases:
        fr = fc.open(path, method=method, headers=headers, data=body)
        reference = Reply(fr.status_code, list(fr.headers.items()), fr.get_data())
        caplog.clear()
        with caplog.at_level(logging.ERROR):
            qr = await qc.open(path, method=method, headers=headers, data=body)
            qbody = await qr.get_data()
        candidate = Reply(qr.status_code, list(qr.headers.items()), qbody)
        request = req(method, path, list(headers.items()), len(body or b""))
        diffs = compare(reference, candidate, Noise(), ignore=TRANSPORT_HEADERS).differences
        got = {}
        for d in diffs:
            if d.key() in expected:
                found = explain_all(Evidence(d, request, reference, candidate, candidate_log=caplog.text))
                assert found and found[0][1] >= 2, (path, d.key(), found)  # never a mere guess here
                got[d.key()] = found[0][0].id
        assert got == expected, (method, path, [d.key() for d in diffs])

    # the session: Flask sorts the cookie's keys, Quart keeps insertion order
    fr = fc.post("/login")
    qr = await qc.post("/login")
    ref_cookie, cand_cookie = fr.headers.get("Set-Cookie"), qr.headers.get("Set-Cookie")
    assert ref_cookie.split(".")[0] != cand_cookie.split(".")[0]
    e = ev("header-value", "set-cookie", [ref_cookie], [cand_cookie])
    assert explain(e).id == "session-cookie-key-order"
    assert fr.headers.get("Vary") == qr.headers.get("Vary") == "Cookie"  # modified: both say so


def test_odd_evidence_is_no_fit_and_never_an_error():
    odd = Evidence(
        Difference("status", "status", "200", None),
        {"headers": "X: y", "path": 5, "body": None},
        None,
        None,
        candidate_log=None,
        mode="live",
        pair="",
    )  # type: ignore[arg-type]
    assert explain(odd) is None
    cookie = ev("header-value", "set-cookie", ["session=.!!!.a.b"], ["session=%%%"])
    assert explain(cookie) is None
