"""Cookies, session cookies, captures from HTML, and noise that neither invents nor hides.

The last tests prove the noise rule with real apps: two Flask references and Quart
candidates (faithful ones and mutated ones) play a login, an HTML form with a CSRF token and
a submit, with fresh random tokens every run; a type change must be a difference 10 runs of
10, a faithful port never.
"""

from __future__ import annotations

import secrets
import time
from email.utils import formatdate

import pytest
from flask import Flask, jsonify, request, session
from itsdangerous import URLSafeTimedSerializer
from quart import Quart
from quart import jsonify as q_jsonify
from quart import request as q_request
from quart import session as q_session

from compat.capture import capture_html, check_spec
from compat.clients import Reply, client_for
from compat.compare import (
    TRANSPORT_HEADERS,
    compare,
    forms_compatible,
    json_compatible,
    learn_noise,
)
from compat.cookies import CookieJar, decode_session, encode_session, parse_set_cookie

KEY = "test-secret-key"
JSON = [("Content-Type", "application/json")]


def kinds(outcome):
    return sorted(d.key() for d in outcome.differences)


def flask_cookie(data: dict, key: str = KEY) -> str:
    """A session cookie value exactly as Flask signs it."""
    app = Flask("sign")
    app.secret_key = key
    return app.session_interface.get_signing_serializer(app).dumps(data)


# ---------------------------------------------------------------------------- Set-Cookie


def test_parse_set_cookie_keeps_attributes_in_order_and_tolerates_odd_input():
    c = parse_set_cookie("sid=a=b; Path=/; HttpOnly;; SameSite=Lax; Max-Age=")
    assert (c.name, c.value) == ("sid", "a=b")
    assert c.attributes == [("path", "/"), ("httponly", None), ("samesite", "Lax"), ("max-age", "")]
    assert c.attr("httponly") == "" and c.attr("secure") is None and c.has("samesite")
    assert parse_set_cookie("lonely").name == "" and parse_set_cookie("lonely").value == "lonely"
    assert parse_set_cookie("").attributes == []
    assert parse_set_cookie(' q = "x y" ; SECURE').attributes == [("secure", None)]


# ---------------------------------------------------------------------------- the jar


def test_jar_sends_longer_paths_first_then_creation_order_and_scopes_paths():
    jar = CookieJar()
    jar.update([("Set-Cookie", "a=1; Path=/"), ("Content-Type", "text/html")], "/login")
    jar.update([("set-cookie", "b=2")], "/app/login")  # default path /app
    jar.update([("Set-Cookie", "c=3; Path=/")], "/")
    assert jar.header("/app/page") == "b=2; a=1; c=3"
    assert jar.header("/app") == "b=2; a=1; c=3"
    assert jar.header("/apple") == "a=1; c=3"  # /app does not path-match /apple
    assert jar.header("/?x=1") == "a=1; c=3"
    # replacing a cookie keeps its creation time, hence its place
    jar.update([("Set-Cookie", "a=9; Path=/")], "/")
    assert jar.header("/") == "a=9; c=3"


def test_jar_deletes_on_max_age_zero_or_past_expires_and_clears():
    jar = CookieJar()
    jar.update(
        [("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2; Path=/"), ("Set-Cookie", "c=3; Path=/; Max-Age=60")], "/"
    )
    assert jar.header("/") == "a=1; b=2; c=3"
    jar.update([("Set-Cookie", "a=; Max-Age=0; Path=/")], "/")
    past = formatdate(time.time() - 3600, usegmt=True)
    jar.update([("Set-Cookie", f"b=; Expires={past}; Path=/")], "/")
    assert jar.header("/") == "c=3"
    # Max-Age wins over Expires; a cookie of another path is another cookie
    jar.update([("Set-Cookie", f"c=4; Max-Age=60; Expires={past}; Path=/"), ("Set-Cookie", "c=5; Path=/x")], "/")
    assert jar.header("/x/y") == "c=5; c=4"
    jar.clear()
    assert jar.header("/") is None and len(jar) == 0


# ---------------------------------------------------------------------------- sessions


def _flask_login_cookie(data: dict) -> str:
    app = Flask("f")
    app.secret_key = KEY

    @app.get("/")
    def index():
        session.update(data)
        return "ok"

    with client_for(app) as c:
        return parse_set_cookie(c.request("GET", "/").header("Set-Cookie")).value


def _quart_login_cookie(data: dict) -> str:
    app = Quart("q")
    app.secret_key = KEY

    @app.get("/")
    async def index():
        q_session.update(data)
        return "ok"

    with client_for(app) as c:
        return parse_set_cookie(c.request("GET", "/").header("Set-Cookie")).value


@pytest.mark.parametrize("make", [_flask_login_cookie, _quart_login_cookie], ids=["flask", "quart"])
def test_real_session_cookies_decode_with_and_without_the_key(make):
    value = make({"user_id": 1})
    plain = decode_session(value)
    assert plain.data == {"user_id": 1} and plain.raw == {"user_id": 1} and plain.verified is None
    assert plain.signature == value.rsplit(".", 1)[1] and abs(plain.time - time.time()) < 60
    assert decode_session(value, KEY).verified is True
    assert decode_session(value, "another key").verified is False
    assert decode_session(value, ["old key", KEY]).verified is True  # fallbacks


def test_compressed_and_tagged_session_payloads():
    value = _flask_login_cookie({"user_id": 1, "pair": (1, 2), "blob": "x" * 300})
    assert value.startswith(".")  # compressed
    s = decode_session(value, KEY)
    assert s.compressed and s.verified
    assert s.data["pair"] == (1, 2) and s.raw["pair"] == {" t": [1, 2]}


def test_what_is_not_a_session_cookie_gives_none():
    for value in (
        "",
        "abc",
        "a.b.c",
        "deleted",
        "x.y",
        "eyJhIjoxfQ.bad!.sig",
        "abc.def.ghi",
        URLSafeTimedSerializer(KEY).dumps({"a": 1}) + ".extra",
    ):
        assert decode_session(value) is None, value


def test_encode_session_round_trips_through_flask():
    app = Flask("f")
    app.secret_key = KEY
    ser = app.session_interface.get_signing_serializer(app)
    assert ser.loads(encode_session({"user_id": "1"}, KEY)) == {"user_id": "1"}
    original = decode_session(flask_cookie({"user_id": 1}))
    unsigned = encode_session({"user_id": "1"}, timestamp=original.timestamp, signature=original.signature)
    assert decode_session(unsigned).raw == {"user_id": "1"}
    assert decode_session(unsigned, KEY).verified is False


# ---------------------------------------------------------------------------- captures

PAGE = b"""<!doctype html><html><head><meta name="csrf-token" content="m-123"></head><body>
<form id="login" class="card wide"><input type="hidden" name="csrf_token" value="tok&amp;1">
<p>Job <span class="job id">  j-42 </span></p><input name="other" value="no"></form>
<div><input name="csrf_token" value="outside"></div><a href="/x">link<b>bold</b></a><br/>
</body></html>"""


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("html:input[name=csrf_token]@value", "tok&1"),
        ('html:input[name="csrf_token"]@value', "tok&1"),
        ("html:div input[name=csrf_token]@value", "outside"),
        ("html:form#login.card input@value", "tok&1"),
        ("html:#login .job", "j-42"),
        ("html:span.job.id", "j-42"),
        ("html:meta[name=csrf-token]@content", "m-123"),
        ("html:a", "linkbold"),
        ("html:[href]@href", "/x"),
        ("html:*[type=hidden]@name", "csrf_token"),
        ("html:form#nope input@value", None),
        ("html:input[name=csrf_token]@missing", None),
        ('regex:name="csrf_token" value="([^"]+)"', "tok&amp;1"),
        ("regex:j-\\d+", "j-42"),
        ("regex:(?s)<p>(.*?)</p>", 'Job <span class="job id">  j-42 </span>'),
        ("regex:nothing here", None),
    ],
)
def test_capture_specs(spec, expected):
    assert capture_html(PAGE, spec) == expected


@pytest.mark.parametrize(
    "spec",
    [
        "css:input",
        "html:",
        "html:   ",
        "html:div > input",
        "html:a:first-child",
        "html:input[name^=x]",
        "html:input[name=x",
        "html:div]",
        "html:input@",
        "html:input@bad attr",
        "regex:(unclosed",
        "regex:",
        "input[name=x]",
        "html:a+b",
    ],
)
def test_bad_capture_specs_raise_value_error(spec):
    with pytest.raises(ValueError):
        check_spec(spec)
    with pytest.raises(ValueError):
        capture_html(PAGE, spec)


# ---------------------------------------------------------------------------- forms


def test_forms_neither_invent_nor_hide():
    # random base64url tokens: wherever - and _ fall, same form
    plain = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
    dashed = "abc-def_ghijklmnopqrstuvwxyz0123456789ABCDE"
    assert len(plain) == len(dashed) == 43 and forms_compatible(plain, dashed)
    # an itsdangerous value: payload.timestamp.signature, a short part with a - too
    signed = ["Zm9v-YmFy_YmF6LXF1eA", "aW5yQQ", "c2lnbmF0dXJlLXNpZ25hdHVyZQ"]
    other = ["Zm9vYmFyYmF6LXF1eAbb", "aW-yQ_", "c2lnbmF0dXJlLXNpZ25hdHVy_Q"]
    assert [len(x) for x in signed] == [len(x) for x in other]
    assert forms_compatible(".".join(signed), ".".join(other))
    assert not forms_compatible(".".join(signed), ".".join(other[:2] + ["c2lnbmF0dXJlLXNpZ25hdHVy"]))
    for _ in range(2000):
        assert forms_compatible(secrets.token_urlsafe(32), secrets.token_urlsafe(32))
        assert forms_compatible(secrets.token_hex(4), secrets.token_hex(4))
    # a number is not a word; an id of another length class is not the same id
    assert not forms_compatible("12", "twelve")
    assert not forms_compatible(secrets.token_hex(16), secrets.token_hex(20))
    assert not forms_compatible(secrets.token_urlsafe(32), secrets.token_urlsafe(16))
    assert not forms_compatible(secrets.token_hex(16), secrets.token_urlsafe(24))  # hex vs base64url
    assert not forms_compatible("3f2a9b1c", "first")
    assert not forms_compatible("abc12345", "abc1234")
    # dates and numbers keep their text shape
    assert forms_compatible("Tue, 13 Jan 2026 10:00:00 GMT", "Wed, 14 Feb 2027 11:30:59 GMT")
    assert not forms_compatible("Tue, 13 Jan 2026 10:00:00 GMT", "1736762400")
    # JSON: the type is part of the form
    assert json_compatible({"a": 1, "b": ["x1"]}, {"a": 2, "b": ["y7"]})
    assert not json_compatible(1, "1") and not json_compatible(1, 1.0) and not json_compatible(None, "")
    assert not json_compatible({"a": 1}, {"a": 1, "b": 2}) and not json_compatible([1], [1, 2])


def test_noisy_json_int_that_becomes_a_string_is_a_difference():
    p = Reply(200, JSON, b'{"id":17,"token":"%s"}' % secrets.token_urlsafe(16).encode())
    s = Reply(200, JSON, b'{"id":18,"token":"%s"}' % secrets.token_urlsafe(16).encode())
    noise = learn_noise(p, s, TRANSPORT_HEADERS)
    assert noise.items() == ["json:$.id", "json:$.token"]
    good = Reply(200, JSON, b'{"id":19,"token":"%s"}' % secrets.token_urlsafe(16).encode())
    assert kinds(compare(p, good, noise, ignore=TRANSPORT_HEADERS)) == []
    bad = Reply(200, JSON, b'{"id":"19","token":"%s"}' % secrets.token_urlsafe(16).encode())
    assert kinds(compare(p, bad, noise, ignore=TRANSPORT_HEADERS)) == ["json:$.id"]


def test_within_what_the_references_showed():
    """A field null in one reference and a string in the other may be either in the candidate."""
    p = Reply(200, JSON, b'{"done":null}')
    s = Reply(200, JSON, b'{"done":"2026-01-13"}')
    noise = learn_noise(p, s, TRANSPORT_HEADERS)
    for body, expected in (
        (b'{"done":null}', []),
        (b'{"done":"2027-02-14"}', []),
        (b'{"done":7}', ["json:$.done"]),
        (b'{"done":"soon"}', ["json:$.done"]),
    ):
        assert kinds(compare(p, Reply(200, JSON, body), noise, ignore=TRANSPORT_HEADERS)) == expected


def test_noisy_header_with_random_base64_token_is_compared_by_form():
    tokens = ["Ab-_" + secrets.token_urlsafe(24)[4:], secrets.token_urlsafe(24).replace("-", "a").replace("_", "b")]
    p = Reply(200, [("X-Trace", tokens[0])], b"")
    s = Reply(200, [("X-Trace", secrets.token_urlsafe(24))], b"")
    noise = learn_noise(p, s, TRANSPORT_HEADERS)
    assert kinds(compare(p, Reply(200, [("X-Trace", tokens[1])], b""), noise, ignore=TRANSPORT_HEADERS)) == []
    short = Reply(200, [("X-Trace", secrets.token_urlsafe(12))], b"")
    assert kinds(compare(p, short, noise, ignore=TRANSPORT_HEADERS)) == ["header-value:x-trace"]


# ---------------------------------------------------------------------------- Set-Cookie comparison


def _cookie_reply(*values: str, status: int = 200) -> Reply:
    return Reply(status, [("Content-Type", "text/html")] + [("Set-Cookie", v) for v in values], b"ok")


def _expires(offset: float) -> str:
    return formatdate(time.time() + offset, usegmt=True)


def test_cookie_attribute_that_appeared_is_a_difference_even_when_the_header_is_noisy():
    p = _cookie_reply(f"pref={secrets.token_urlsafe(24)}; Expires={_expires(3600)}; HttpOnly; Path=/")
    s = _cookie_reply(f"pref={secrets.token_urlsafe(24)}; Expires={_expires(3700)}; HttpOnly; Path=/")
    noise = learn_noise(p, s, TRANSPORT_HEADERS)
    assert noise.items() == ["cookie:pref value", "cookie:pref;expires"]
    same = _cookie_reply(f"pref={secrets.token_urlsafe(24)}; Expires={_expires(3800)}; HttpOnly; Path=/")
    out = compare(p, same, noise, ignore=TRANSPORT_HEADERS)
    assert kinds(out) == [] and sorted(out.noise_hits) == ["cookie:pref value", "cookie:pref;expires"]
    secure = _cookie_reply(f"pref={secrets.token_urlsafe(24)}; Expires={_expires(3800)}; HttpOnly; Path=/; Secure")
    assert kinds(compare(p, secure, noise, ignore=TRANSPORT_HEADERS)) == ["cookie-attribute:pref;secure"]
    no_httponly = _cookie_reply(f"pref={secrets.token_urlsafe(24)}; Expires={_expires(3800)}; Path=/")
    assert kinds(compare(p, no_httponly, noise, ignore=TRANSPORT_HEADERS)) == ["cookie-attribute:pref;httponly"]
    # an Expires of another form, a Path value, a value of another length: differences
    odd = _cookie_reply(f"pref={secrets.token_urlsafe(8)}; Expires=3600; HttpOnly; Path=/app")
    assert kinds(compare(p, odd, noise, ignore=TRANSPORT_HEADERS)) == [
        "cookie-attribute:pref;expires",
        "cookie-attribute:pref;path",
        "cookie-value:pref",
    ]


def test_cookies_missing_extra_and_order():
    p = _cookie_reply("a=1; Path=/", "b=2; Path=/")
    noise = learn_noise(p, p, TRANSPORT_HEADERS)
    assert noise.empty()
    assert kinds(compare(p, _cookie_reply("a=1; Path=/"), noise, ignore=TRANSPORT_HEADERS)) == ["cookie-missing:b"]
    assert kinds(compare(p, _cookie_reply("a=1; Path=/", "b=2; Path=/", "c=3"), noise, ignore=TRANSPORT_HEADERS)) == [
        "cookie-extra:c"
    ]
    assert kinds(compare(p, _cookie_reply("a=1; Path=/", "b=3; Path=/"), noise, ignore=TRANSPORT_HEADERS)) == [
        "cookie-value:b"
    ]
    assert (
        kinds(compare(p, _cookie_reply("a=1; Path=/", "b=2; path=/"), noise, ignore=TRANSPORT_HEADERS)) == []
    )  # attribute names are case-insensitive
    # presence noise: a cookie one reference set and the other did not
    noisy = learn_noise(p, _cookie_reply("a=1; Path=/"), TRANSPORT_HEADERS)
    assert noisy.items() == ["cookie:b presence"]
    assert kinds(compare(p, _cookie_reply("a=1; Path=/"), noisy, ignore=TRANSPORT_HEADERS)) == []


def _session_reply(data: dict, key: str = KEY, extra: str = "HttpOnly; Path=/") -> Reply:
    return _cookie_reply(f"session={flask_cookie(data, key)}; {extra}")


@pytest.mark.parametrize("key", [KEY, None], ids=["with-key", "without-key"])
def test_session_user_id_that_became_a_string_is_a_difference_next_to_a_noisy_field(key):
    def csrf() -> str:
        return secrets.token_urlsafe(32)

    p = _session_reply({"csrf_token": csrf(), "user_id": 1})
    s = _session_reply({"csrf_token": csrf(), "user_id": 1})
    noise = learn_noise(p, s, TRANSPORT_HEADERS, secret_key=key)
    assert noise.items() == ["cookie:session$.csrf_token"]
    good = compare(
        p, _session_reply({"csrf_token": csrf(), "user_id": 1}), noise, ignore=TRANSPORT_HEADERS, secret_key=key
    )
    assert kinds(good) == [] and "cookie:session$.csrf_token" in good.noise_hits
    bad = compare(
        p, _session_reply({"csrf_token": csrf(), "user_id": "1"}), noise, ignore=TRANSPORT_HEADERS, secret_key=key
    )
    assert kinds(bad) == ["cookie-session:session$.user_id"]
    # a real value change of a field that is not noisy, a field that appeared
    assert kinds(
        compare(
            p, _session_reply({"csrf_token": csrf(), "user_id": 2}), noise, ignore=TRANSPORT_HEADERS, secret_key=key
        )
    ) == ["cookie-session:session$.user_id"]
    assert kinds(
        compare(
            p,
            _session_reply({"csrf_token": csrf(), "user_id": 1, "admin": True}),
            noise,
            ignore=TRANSPORT_HEADERS,
            secret_key=key,
        )
    ) == ["cookie-session:session$.admin"]


def test_session_signed_with_another_key_is_a_difference_only_with_the_key():
    p = _session_reply({"user_id": 1})
    noise = learn_noise(p, _session_reply({"user_id": 1}), TRANSPORT_HEADERS, secret_key=KEY)
    forged = _session_reply({"user_id": 1}, key="not the key")
    assert kinds(compare(p, forged, noise, ignore=TRANSPORT_HEADERS, secret_key=KEY)) == [
        "cookie-session:session:signature"
    ]
    assert kinds(compare(p, forged, noise, ignore=TRANSPORT_HEADERS)) == []


def test_old_shape_rule_would_invent_here_and_the_form_rule_does_not():
    """The session cookie that gave false differences in 1 run of 5: its signature and
    timestamp are masked, its payload compared by content."""
    hits = 0
    for _ in range(50):
        p = _session_reply({"csrf_token": secrets.token_urlsafe(32), "user_id": 1})
        s = _session_reply({"csrf_token": secrets.token_urlsafe(32), "user_id": 1})
        c = _session_reply({"csrf_token": secrets.token_urlsafe(32), "user_id": 1})
        noise = learn_noise(p, s, TRANSPORT_HEADERS, secret_key=KEY)
        hits += bool(compare(p, c, noise, ignore=TRANSPORT_HEADERS, secret_key=KEY).differences)
    assert hits == 0


# ---------------------------------------------------------------------------- 10 runs of 10, real apps

FORM = """<!doctype html><html><body><form method="post" action="/submit">
<input type="hidden" name="csrf_token" value="{token}"><span id="req">{req}</span>
<button>Save</button></form></body></html>"""


def make_flask() -> Flask:
    app = Flask("ref")
    app.secret_key = KEY

    @app.post("/login")
    def login():
        session["user_id"] = 1
        session["csrf_token"] = secrets.token_urlsafe(32)
        return jsonify(ok=True, request_id=secrets.token_urlsafe(16), user_id=1)

    @app.get("/form")
    def form():
        return FORM.format(token=session.get("csrf_token", ""), req=secrets.token_hex(16))

    @app.post("/submit")
    def submit():
        if "user_id" not in session:
            return jsonify(error="login first"), 401
        if request.form.get("csrf_token") != session.get("csrf_token"):
            return jsonify(error="bad csrf token"), 400
        return jsonify(saved=True, user_id=session["user_id"])

    return app


def make_quart(*, user_id=1, cookie_secure=False) -> Quart:
    """The port; ``user_id="1"`` is the port of the issue (stores the user id as a string)."""
    app = Quart("cand")
    app.secret_key = KEY
    app.config["SESSION_COOKIE_SECURE"] = cookie_secure

    @app.post("/login")
    async def login():
        q_session["user_id"] = user_id
        q_session["csrf_token"] = secrets.token_urlsafe(32)
        return q_jsonify(ok=True, request_id=secrets.token_urlsafe(16), user_id=1)

    @app.get("/form")
    async def form():
        return FORM.format(token=q_session.get("csrf_token", ""), req=secrets.token_hex(16))

    @app.post("/submit")
    async def submit():
        if "user_id" not in q_session:
            return q_jsonify(error="login first"), 401
        if (await q_request.form).get("csrf_token") != q_session.get("csrf_token"):
            return q_jsonify(error="bad csrf token"), 400
        return q_jsonify(saved=True, user_id=q_session["user_id"])

    @app.after_request
    async def vary(response):
        # pinned: Flask adds "Vary: Cookie" when the session was read, Quart 0.22 only when
        # written (its session does not track reads); every view here reads it
        if "session" in q_request.cookies:
            response.vary.add("Cookie")
        return response

    return app


def play(client) -> list[Reply]:
    """The sequence, with a cookie jar and the CSRF token captured from the HTML form."""
    jar = CookieJar()
    replies = []

    def send(method: str, path: str, body: bytes | None = None, ctype: str | None = None) -> Reply:
        headers = [("Content-Type", ctype)] if ctype else []
        if jar.header(path):
            headers.append(("Cookie", jar.header(path)))
        reply = client.request(method, path, headers=headers, body=body)
        jar.update(reply.headers, path)
        replies.append(reply)
        return reply

    send("POST", "/login", b"")
    page = send("GET", "/form")
    token = capture_html(page.body, "html:form input[name=csrf_token]@value")
    send("POST", "/submit", f"csrf_token={token}".encode(), "application/x-www-form-urlencoded")
    return replies


def differences(primary: list[Reply], secondary: list[Reply], candidate: list[Reply], key) -> list[str]:
    out = []
    for step, (p, s, c) in enumerate(zip(primary, secondary, candidate)):
        noise = learn_noise(p, s, TRANSPORT_HEADERS, secret_key=key)
        out += [f"{step}:{k}" for k in kinds(compare(p, c, noise, ignore=TRANSPORT_HEADERS, secret_key=key))]
    return out


@pytest.fixture(scope="module")
def clients():
    from compat import mutants

    made = {
        "primary": client_for(make_flask()),
        "secondary": client_for(make_flask()),
        "faithful": client_for(make_quart()),
        "user-id-as-string": client_for(make_quart(user_id="1")),
        "secure-cookie": client_for(make_quart(cookie_secure=True)),
    }
    for name in ("session-value-type", "json-int-to-str", "cookie-attribute"):
        made[f"mutant:{name}"] = client_for(mutants.wrapper(name)(make_quart()))
    yield made
    for c in made.values():
        c.close()


@pytest.mark.parametrize("key", [KEY, None], ids=["with-key", "without-key"])
def test_type_changes_are_caught_10_of_10_and_a_faithful_port_never_differs(clients, key):
    from compat import mutants

    mutants.SESSION_SECRET_KEY = key
    try:
        caught = {name: 0 for name in clients if name not in ("primary", "secondary", "faithful")}
        faithful_diffs = []
        for _ in range(10):
            primary, secondary = play(clients["primary"]), play(clients["secondary"])
            faithful_diffs += differences(primary, secondary, play(clients["faithful"]), key)
            for name in caught:
                found = differences(primary, secondary, play(clients[name]), key)
                caught[name] += bool(found)
                if name in ("user-id-as-string", "mutant:session-value-type"):
                    assert "0:cookie-session:session$.user_id" in found
                if name == "mutant:json-int-to-str":
                    assert "0:json:$.user_id" in found and "0:json:$.request_id" not in found
                if name in ("secure-cookie", "mutant:cookie-attribute"):
                    assert "0:cookie-attribute:session;secure" in found
        assert faithful_diffs == []
        assert caught == {name: 10 for name in caught}
    finally:
        mutants.SESSION_SECRET_KEY = None


def test_the_references_really_are_noisy(clients):
    """The runs above are not trivially equal: the two references differ in session tokens,
    signatures, request ids and the HTML page, so what passes passes as noise."""
    primary, secondary = play(clients["primary"]), play(clients["secondary"])
    learnt = [learn_noise(p, s, TRANSPORT_HEADERS, secret_key=KEY).items() for p, s in zip(primary, secondary)]
    assert "cookie:session$.csrf_token" in learnt[0] and "json:$.request_id" in learnt[0]
    assert learnt[1] == ["body"]
    assert decode_session(parse_set_cookie(primary[0].header("Set-Cookie")).value, KEY).verified
    assert primary[2].json() == {"saved": True, "user_id": 1}


def test_the_session_mutant_is_not_applicable_to_an_app_without_sessions():
    from compat import mutants

    app = Quart("plain")

    @app.get("/")
    async def index():
        return q_jsonify(n=1)

    wrapped = mutants.wrapper("session-value-type")(app)
    with client_for(wrapped) as c:
        assert c.request("GET", "/").json() == {"n": 1}
    assert wrapped.applied == 0
    wrapped = mutants.wrapper("json-int-to-str")(app)
    with client_for(wrapped) as c:
        assert c.request("GET", "/").body == b'{"n":"1"}\n'
    assert wrapped.applied == 1


# ---------------------------------------------------------------------------- HTML bodies with noise


def _page(token: str, message: str = "Incorrect username.") -> bytes:
    return (
        f'<html><body><form method="post"><input type="hidden" name="csrf_token" value="{token}">'
        f'<p class="flash">{message}</p><input name="username"></form></body></html>'
    ).encode()


def _html(body: bytes) -> Reply:
    from compat.clients import Reply

    return Reply(200, [("Content-Type", "text/html; charset=utf-8")], body)


def test_a_random_token_in_a_page_is_noise_and_a_changed_word_elsewhere_is_not():
    import secrets

    from compat.compare import TRANSPORT_HEADERS, compare, learn_noise

    for _ in range(10):
        primary, secondary = _html(_page(secrets.token_urlsafe(24))), _html(_page(secrets.token_urlsafe(24)))
        noise = learn_noise(primary, secondary, TRANSPORT_HEADERS)
        assert noise.body
        faithful = _html(_page(secrets.token_urlsafe(24)))
        assert compare(primary, faithful, noise, ignore=TRANSPORT_HEADERS).differences == []
        # the same length and the same form, elsewhere on the page: a real change
        reworded = _html(_page(secrets.token_urlsafe(24), "Incorrect password."))
        diffs = compare(primary, reworded, noise, ignore=TRANSPORT_HEADERS).differences
        assert [d.kind for d in diffs] == ["body"]
        # a token of another form where the references had tokens
        other = _html(_page("12345"))
        assert compare(primary, other, noise, ignore=TRANSPORT_HEADERS).differences
