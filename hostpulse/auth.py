"""Tokens, roles and who may call what: one table both apps consult.

The table is keyed by the route's rule string (identical in both apps, since both
route with Werkzeug) and the method, so the interceptors stay one line each. The README's
route tables say the same, with each route's handler in both apps; a test holds the table,
the apps' url maps and the README together (``tests/structure/test_route_policy.py``).
"""

from __future__ import annotations

import fnmatch
import hmac
from dataclasses import dataclass, field

from hostpulse.errors import ApiError
from hostpulse.reload import refresh
from hostpulse.samples import BatchError
from hostpulse.settings import Settings, Token
from hostpulse.tokens import hash_token

PUBLIC = None

# (rule, method) -> the role needed, for every route of either app; HEAD follows GET,
# OPTIONS is public.
ROUTES: dict[tuple[str, str], str | None] = {
    ("/", "GET"): PUBLIC,
    ("/", "POST"): "agent",
    ("/usrname", "GET"): PUBLIC,
    ("/login", "GET"): PUBLIC,
    ("/regist", "GET"): PUBLIC,
    ("/json/list", "GET"): PUBLIC,
    ("/json/dict", "GET"): PUBLIC,
    ("/healthz", "GET"): PUBLIC,
    ("/_get_current_user", "GET"): "viewer",
    ("/data/", "GET"): "viewer",
    ("/data/", "POST"): "agent",
    ("/demo", "GET"): "viewer",
    ("/demo", "POST"): "admin",
    ("/files/<name>", "GET"): "viewer",
    ("/api/<user>/<uuid>", "GET"): "viewer",
    ("/api/<user>/<uuid>", "POST"): "viewer",
    ("/api/exec/<uuid>", "POST"): "admin",
    ("/api/poll/<uuid>", "GET"): "admin",
    ("/api/poll/<uuid>", "POST"): "admin",
    # port only
    ("/ws/agent", "GET"): "agent",  # the WebSocket, and the 426 a plain GET gets
    ("/ingest", "POST"): "agent",
    ("/hosts", "GET"): "viewer",
    ("/hosts/<host>/series", "GET"): "viewer",
    ("/metrics", "GET"): "viewer",
    # the dashboard's pages and files: public, they hold no data (the browser reads the
    # routes above with the viewer's token)
    ("/dashboard", "GET"): PUBLIC,
    ("/dashboard/hosts/<host>", "GET"): PUBLIC,
    ("/dashboard/static/<path:name>", "GET"): PUBLIC,
    ("/ws/live", "GET"): "viewer",  # the dashboard's live feed (its token may come in its first message)
}
# Reserved: routes no app has yet, their roles decided ahead. An app that adds one moves it
# up to ROUTES; the test fails until it does, and fails on an entry of ROUTES no app has.
RESERVED: dict[tuple[str, str], str | None] = {}
# WebSockets a browser opens: it cannot send Authorization, so a handshake without one is let
# through and the route checks the token of its first message, ``{"token": "..."}``.
TOKEN_IN_FIRST_MESSAGE = frozenset({("/ws/live", "GET")})
POLICY: dict[tuple[str, str], str | None] = {**ROUTES, **RESERVED}


@dataclass(frozen=True)
class User:
    username: str
    email: str
    id: int
    roles: tuple[str, ...]
    hosts: tuple[str, ...] = ("*",)
    # The SHA-256 of the token it came with, to find that token again after a reload.
    token_sha256: str = field(default="", repr=False, compare=False)

    def may(self, role: str) -> bool:
        """admin may do everything; viewer and agent only their own role's routes."""
        return "admin" in self.roles or role in self.roles

    def as_json(self) -> dict[str, object]:
        return {"username": self.username, "email": self.email, "id": self.id}


def required_role(rule: str, method: str) -> str | None:
    """The role a request needs; a route missing from the table needs admin (deny by default)."""
    if method == "OPTIONS":
        return PUBLIC
    if method == "HEAD":
        method = "GET"
    return POLICY.get((rule, method), "admin")


def find_token(settings: Settings, token: str) -> Token | None:
    """Compare against every configured hash in constant time, with no early exit."""
    digest = hash_token(token)
    found = None
    for candidate in settings.tokens:
        if hmac.compare_digest(candidate.sha256, digest):
            found = candidate
    return found


def bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value:
        return None
    return value


def authorize(settings: Settings, rule: str, method: str, authorization: str | None) -> User | None:
    """The user a request runs as, or the 401/403 it gets (routing has already matched).

    Tokens are those of the config file as it is now (``hostpulse.reload``)."""
    refresh(settings)
    role = required_role(rule, method)
    token = bearer(authorization)
    found = find_token(settings, token) if token else None
    user = user_of(found) if found else None
    if role is PUBLIC or (token is None and (rule, method) in TOKEN_IN_FIRST_MESSAGE):
        return user
    if user is None:
        message = "a valid bearer token is required" if token else "missing bearer token"
        raise ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})
    if not user.may(role):
        raise ApiError(403, "forbidden", f"this route needs the {role} role")
    return user


def user_of(token: Token) -> User:
    return User(token.username, token.email, token.id, token.roles, token.hosts, token.sha256)


def may_report(hosts: tuple[str, ...], host: str) -> bool:
    """Whether a token with these patterns may send batches for ``host`` (lower case)."""
    return any(fnmatch.fnmatchcase(host, pattern) for pattern in hosts)


_index: tuple[tuple[Token, ...], dict[str, Token]] | None = None


def _by_sha256(tokens: tuple[Token, ...]) -> dict[str, Token]:
    """The tokens by hash, built once per set of tokens (a reload makes a new tuple)."""
    global _index
    cached = _index
    if cached is None or cached[0] is not tokens:
        cached = _index = (tokens, {t.sha256: t for t in tokens})
    return cached[1]


def check_reporter(settings: Settings, user: User | None, host: str, seq: int | None) -> None:
    """A batch for ``host`` sent with ``user``'s token: :class:`BatchError` unless that token
    is still configured (a WebSocket outlives a revoke) and may report the host."""
    if user is None:
        return
    refresh(settings)
    current = _by_sha256(settings.tokens).get(user.token_sha256)
    if current is None or not user_of(current).may("agent"):
        raise BatchError("the token of this connection was revoked or lost the agent role", seq, "unauthorized", 401)
    if not may_report(current.hosts, host):
        raise BatchError(
            f"this token may not report host {host!r} (it may report {', '.join(current.hosts)})",
            seq,
            "forbidden",
            403,
        )
