"""Tokens, roles and who may call what: one table both apps consult.

The table is keyed by the route's rule string (identical in both apps, since both
route with Werkzeug) and the method, so the interceptors stay one line each.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from hostpulse.errors import ApiError
# ROLES and new_token live in hostpulse.settings (no Werkzeug there, for the CLI); kept importable here.
from hostpulse.settings import ROLES, Settings, Token, hash_token, new_token  # noqa: F401

PUBLIC = None

# (rule, method) -> the role needed; HEAD follows GET, OPTIONS is public.
POLICY: dict[tuple[str, str], str | None] = {
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
    ("/ws/agent", "GET"): "agent",
    ("/ingest", "POST"): "agent",
    ("/hosts", "GET"): "viewer",
    ("/hosts/<host>/series", "GET"): "viewer",
    ("/metrics", "GET"): "viewer",
    ("/dashboard", "GET"): PUBLIC,
    ("/ws/live", "GET"): "viewer",
}


@dataclass(frozen=True)
class User:
    username: str
    email: str
    id: int
    roles: tuple[str, ...]

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
    """The user a request runs as, or the 401/403 it gets (routing has already matched)."""
    role = required_role(rule, method)
    token = bearer(authorization)
    found = find_token(settings, token) if token else None
    user = User(found.username, found.email, found.id, found.roles) if found else None
    if role is PUBLIC:
        return user
    if user is None:
        message = "a valid bearer token is required" if token else "missing bearer token"
        raise ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})
    if not user.may(role):
        raise ApiError(403, "forbidden", f"this route needs the {role} role")
    return user
