"""Who may call what: routing first (404/405), then the token (401), then the role (403)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from .helpers import TOKENS, UNKNOWN_TOKEN

CALLERS = (None, "unknown", "agent", "viewer", "admin")


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    role: str | None  # None: public
    ok: int  # the status a caller that may call it gets with this request
    body: bytes | None = None
    content_type: str | None = None

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


ROUTES = [
    Route("GET", "/", None, 200),
    Route("POST", "/", "agent", 200, b"[1, 2]", "application/json"),
    Route("GET", "/usrname", None, 302),
    Route("GET", "/login", None, 200),
    Route("GET", "/regist", None, 200),
    Route("GET", "/json/list", None, 200),
    Route("GET", "/json/dict", None, 200),
    Route("GET", "/healthz", None, 200),
    Route("GET", "/_get_current_user", "viewer", 200),
    Route("GET", "/data/", "viewer", 200),
    Route("POST", "/data/", "agent", 200, b'{"0": {"name": "tigerrose"}}', "application/json"),
    Route("GET", "/demo?id=1&name=n&list=a", "viewer", 200),
    Route("POST", "/demo", "admin", 200, b"id=1", "application/x-www-form-urlencoded"),
    Route("GET", "/files/0123456789abcdef-missing.txt", "viewer", 404),
    Route("GET", "/api/someone/abc", "viewer", 200),
    Route("POST", "/api/someone/abc", "viewer", 200, b"{}", "application/json"),
    # an allowed caller gets past auth to the body check ({} has no cmd): nothing runs
    Route("POST", "/api/exec/job1", "admin", 400, b"{}", "application/json"),
    Route("GET", "/api/poll/job1", "admin", 404),
    Route("POST", "/api/poll/job1", "admin", 404),
]


def may_call(caller: str | None, role: str | None) -> bool:
    if role is None:
        return True
    return caller in (role, "admin")


def expected_status(caller: str | None, route: Route) -> int:
    if route.role is None:
        return route.ok
    if caller in (None, "unknown"):
        return 401
    return route.ok if may_call(caller, route.role) else 403


def check(reply, caller, route, method):
    want = expected_status(caller, route)
    where = f"{method} {route.path} as {caller}"
    assert reply.status == want, (where, reply.status, reply.body[:200])
    if want == 401:
        assert reply.header("WWW-Authenticate") == "Bearer", where
    if want in (401, 403) and method != "HEAD":
        body = reply.json()
        assert set(body) == {"error", "message"}, where
        assert body["error"] == ("unauthorized" if want == 401 else "forbidden"), where
        assert reply.header("Content-Type") == "application/json", where
    if want == 403:
        assert reply.header("WWW-Authenticate") is None, where
    if method == "HEAD":
        assert reply.body == b"", where


@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_every_role_on_every_route(make_service, route):
    svc = make_service()
    for caller in CALLERS:
        headers = {"Content-Type": route.content_type} if route.content_type else {}
        reply = svc.call(route.method, route.path, caller, headers, route.body)
        check(reply, caller, route, route.method)


@pytest.mark.parametrize("route", [r for r in ROUTES if r.method == "GET"], ids=str)
def test_head_follows_get(make_service, route):
    svc = make_service()
    for caller in CALLERS:
        reply = svc.call("HEAD", route.path, caller)
        check(reply, caller, route, "HEAD")


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer",
        "Bearer ",
        "Bearer " + UNKNOWN_TOKEN,
        "Basic dmlld2VyOnNlY3JldA==",
        "Token " + TOKENS["viewer"],
        TOKENS["viewer"],
        "Bearer" + TOKENS["viewer"],
        "Bearer " + TOKENS["viewer"][:-1],
        "Bearer " + TOKENS["viewer"] + "x",
        "Bearer " + TOKENS["viewer"].upper(),
    ],
    ids=lambda a: repr(a.replace(TOKENS["viewer"], "<viewer>")),
)
def test_malformed_or_unknown_authorization_is_401(svc, authorization):
    reply = svc.get("/data/", headers={"Authorization": authorization})
    assert reply.status == 401
    assert reply.header("WWW-Authenticate") == "Bearer"
    assert reply.json()["error"] == "unauthorized"


def test_token_in_query_string_is_not_a_token(svc):
    reply = svc.get(f"/_get_current_user?token={TOKENS['admin']}")
    assert reply.status == 401
    assert reply.header("WWW-Authenticate") == "Bearer"


def test_bearer_scheme_is_case_insensitive(svc):
    # RFC 9110 section 11.1: the authentication scheme is case-insensitive.
    reply = svc.get("/_get_current_user", headers={"Authorization": "bearer " + TOKENS["viewer"]})
    assert reply.status == 200
    assert reply.json()["username"] == "viewer"


def test_admin_can_do_everything(make_service):
    svc = make_service()
    for route in ROUTES:
        headers = {"Content-Type": route.content_type} if route.content_type else {}
        reply = svc.call(route.method, route.path, "admin", headers, route.body)
        assert reply.status == route.ok, (str(route), reply.status, reply.body[:200])


def test_agent_token_can_never_run_a_command(svc):
    for cmd in ("python3 count.py", "uptime", "df -h"):
        reply = svc.exec("agentjob", cmd, role="agent")
        assert reply.status == 403, cmd
        assert reply.json()["error"] == "forbidden"
    assert svc.poll("agentjob", role="agent").status == 403
    # nothing was started under that id
    reply = svc.poll("agentjob", role="admin")
    assert reply.status == 404
    assert reply.json()["error"] == "unknown_job"


def test_viewer_cannot_run_a_command_either(svc):
    reply = svc.exec("viewerjob", "python3 count.py", role="viewer")
    assert reply.status == 403
    assert svc.poll("viewerjob").status == 404


@pytest.mark.parametrize(
    "path, method",
    [
        ("/", "POST"),
        ("/data/", "POST"),
        ("/demo", "POST"),
        ("/api/exec/job1", "POST"),
        ("/api/poll/job1", "GET"),
        ("/api/someone/abc", "GET"),
        ("/_get_current_user", "GET"),
        ("/files/0123456789abcdef-missing.txt", "GET"),
    ],
)
@pytest.mark.parametrize("caller", [None, "unknown", "agent"])
def test_options_is_public_and_tells_the_methods(svc, path, method, caller):
    reply = svc.call("OPTIONS", path, caller)
    assert reply.status == 200
    allowed = {m.strip() for m in reply.header("Allow").split(",")}
    assert method in allowed
    assert "OPTIONS" in allowed
    assert reply.header("WWW-Authenticate") is None


# ---------------------------------------------------------------- routing before auth


@pytest.mark.parametrize("caller", [None, "unknown", "agent", "admin"])
@pytest.mark.parametrize("path", ["/nope", "/api/exec/", "/api/poll/", "/api/a/b/c", "/files/", "/demo/"])
def test_unknown_path_is_404_with_or_without_token(svc, path, caller):
    reply = svc.get(path, role=caller)
    assert reply.status == 404
    assert reply.header("Content-Type") == "application/json"
    body = reply.json()
    assert set(body) == {"error", "message"}
    assert body["error"] == "not_found"
    assert reply.header("WWW-Authenticate") is None


@pytest.mark.parametrize("caller", [None, "unknown", "agent", "admin"])
@pytest.mark.parametrize(
    "method, path, allowed",
    [
        ("DELETE", "/data/", {"GET", "POST"}),
        ("PUT", "/", {"GET", "POST"}),
        ("POST", "/login", {"GET"}),
        ("PATCH", "/api/exec/job1", {"GET", "POST"}),
        ("DELETE", "/api/poll/job1", {"GET", "POST"}),
        ("POST", "/files/0123456789abcdef-missing.txt", {"GET"}),
        ("PUT", "/demo", {"GET", "POST"}),
    ],
)
def test_wrong_method_is_405_with_allow_with_or_without_token(svc, method, path, allowed, caller):
    reply = svc.call(method, path, caller)
    assert reply.status == 405
    assert reply.header("Content-Type") == "application/json"
    body = reply.json()
    assert set(body) == {"error", "message"}
    assert body["error"] == "method_not_allowed"
    advertised = {m.strip() for m in reply.header("Allow").split(",")}
    assert allowed <= advertised
    assert method not in advertised
    assert reply.header("WWW-Authenticate") is None


def test_errors_are_json_without_internals(svc):
    for reply in (svc.get("/nope"), svc.call("DELETE", "/data/"), svc.get("/data/")):
        text = reply.body.decode()
        assert reply.header("Content-Type") == "application/json"
        assert "Traceback" not in text and "<html" not in text.lower()
