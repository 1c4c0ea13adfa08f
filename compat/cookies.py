"""Cookies as a client sees them: ``Set-Cookie`` parsing, a cookie jar, Flask/Quart sessions.

- :func:`parse_set_cookie` splits one ``Set-Cookie`` value into its name, value and
  attributes (lower-case names, in order, ``None`` for a flag such as ``HttpOnly``). It never
  raises: odd input gives an odd but faithful :class:`SetCookie`.
- :class:`CookieJar` keeps the cookies of one sequence of requests, as a browser would for one
  host over plain http: ``Domain`` and ``Secure`` are ignored (everything is one loopback
  host), ``Path`` is honoured (default path per RFC 6265 5.1.4), ``Max-Age <= 0`` or an
  ``Expires`` in the past deletes a cookie. ``header(path)`` gives the ``Cookie:`` value with
  longer paths first, then in creation order (RFC 6265 5.4).
- :func:`decode_session` reads a cookie made by Flask's or Quart's default
  ``SecureCookieSessionInterface`` (itsdangerous ``URLSafeTimedSerializer`` with salt
  ``cookie-session``, HMAC key derivation and SHA-1): ``payload.timestamp.signature``, where
  the payload is base64url of compact JSON, or ``.`` + base64url of zlib-compressed JSON.
  :func:`encode_session` makes one (used by the mutants and the tests).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

__all__ = [
    "SetCookie",
    "parse_set_cookie",
    "CookieJar",
    "SessionValue",
    "decode_session",
    "encode_session",
    "SESSION_SALT",
]

SESSION_SALT = b"cookie-session"


# ---------------------------------------------------------------------------- Set-Cookie


@dataclass
class SetCookie:
    name: str
    value: str
    attributes: list[tuple[str, str | None]] = field(default_factory=list)

    def attr(self, name: str) -> str | None:
        """The last value of attribute ``name`` (lower-case), ``""`` for a flag, else None."""
        found = None
        for k, v in self.attributes:
            if k == name:
                found = "" if v is None else v
        return found

    def has(self, name: str) -> bool:
        return any(k == name for k, _ in self.attributes)

    def attr_names(self) -> list[str]:
        return [k for k, _ in self.attributes]


def parse_set_cookie(value: str) -> SetCookie:
    """``"sid=abc; Path=/; HttpOnly"`` -> ``SetCookie("sid", "abc", [("path", "/"), ("httponly", None)])``.

    The value is kept as sent (quotes included); a first part without ``=`` is a cookie with
    an empty name (what browsers do); an attribute ``Name=`` has the value ``""``.
    """
    parts = value.split(";")
    first = parts[0]
    if "=" in first:
        name, _, val = first.partition("=")
    else:
        name, val = "", first
    attributes: list[tuple[str, str | None]] = []
    for part in parts[1:]:
        part = part.strip()
        if not part:
            continue
        if "=" in part:
            k, _, v = part.partition("=")
            attributes.append((k.strip().lower(), v.strip()))
        else:
            attributes.append((part.lower(), None))
    return SetCookie(name.strip(), val.strip(), attributes)


# ---------------------------------------------------------------------------- the jar


def default_path(request_path: str) -> str:
    """RFC 6265 5.1.4: the request path up to, not including, its right-most ``/``."""
    path = request_path.split("?", 1)[0].split("#", 1)[0]
    if not path.startswith("/") or path.count("/") == 1:
        return "/"
    return path[: path.rfind("/")]


def path_matches(request_path: str, cookie_path: str) -> bool:
    """RFC 6265 5.1.4 path-match."""
    path = request_path.split("?", 1)[0].split("#", 1)[0] or "/"
    if path == cookie_path:
        return True
    if path.startswith(cookie_path):
        return cookie_path.endswith("/") or path[len(cookie_path)] == "/"
    return False


@dataclass
class _Stored:
    name: str
    value: str
    path: str
    created: int
    expires: float | None  # epoch seconds, None: a session cookie


def _expiry(cookie: SetCookie, now: float) -> tuple[bool, float | None]:
    """(delete now?, expiry time). Max-Age wins over Expires (RFC 6265 5.3 step 3)."""
    max_age = cookie.attr("max-age")
    if max_age is not None and re.fullmatch(r"-?\d+", max_age.strip()):
        seconds = int(max_age)
        if seconds <= 0:
            return True, None
        return False, now + seconds
    expires = cookie.attr("expires")
    if expires:
        try:
            when = parsedate_to_datetime(expires).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return False, None
        if when <= now:
            return True, None
        return False, when
    return False, None


class CookieJar:
    """The cookies of one sequence on one instance (one host, plain http)."""

    def __init__(self) -> None:
        self._cookies: dict[tuple[str, str], _Stored] = {}
        self._counter = 0

    def update(self, reply_headers: Iterable[tuple[str, str]], request_path: str) -> None:
        now = time.time()
        for hname, hvalue in reply_headers:
            if hname.lower() != "set-cookie":
                continue
            cookie = parse_set_cookie(hvalue)
            path = cookie.attr("path")
            if not path or not path.startswith("/"):
                path = default_path(request_path)
            key = (cookie.name, path)
            delete, expires = _expiry(cookie, now)
            if delete:
                self._cookies.pop(key, None)
                continue
            old = self._cookies.get(key)
            self._counter += 1
            created = old.created if old is not None else self._counter
            self._cookies[key] = _Stored(cookie.name, cookie.value, path, created, expires)

    def cookies(self, path: str = "/") -> list[tuple[str, str]]:
        """(name, value) pairs sent for ``path``, in the order of the ``Cookie:`` header."""
        now = time.time()
        for key in [k for k, c in self._cookies.items() if c.expires is not None and c.expires <= now]:
            del self._cookies[key]
        chosen = [c for c in self._cookies.values() if path_matches(path, c.path)]
        chosen.sort(key=lambda c: (-len(c.path), c.created))
        return [(c.name, c.value) for c in chosen]

    def header(self, path: str) -> str | None:
        pairs = self.cookies(path)
        if not pairs:
            return None
        return "; ".join(f"{n}={v}" if n else v for n, v in pairs)

    def clear(self) -> None:
        self._cookies.clear()

    def __len__(self) -> int:
        return len(self._cookies)


# ---------------------------------------------------------------------------- sessions


@dataclass
class SessionValue:
    data: Any  # the payload as Flask/Quart load it (tagged JSON: tuples, bytes, datetimes...)
    raw: Any  # the payload as plain JSON data (tags left as ``{" t": ...}`` objects)
    payload: str  # the payload part as sent (with its leading "." when compressed)
    timestamp: str
    signature: str
    compressed: bool
    verified: bool | None  # None: no key given

    @property
    def time(self) -> int:
        return int.from_bytes(_b64decode(self.timestamp), "big")


def _b64decode(text: str) -> bytes:
    raw = text.encode("ascii")
    return base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


_B64 = re.compile(r"[A-Za-z0-9_-]+")


def _tagged_loads(text: str) -> Any:
    for module in ("flask.json.tag", "quart.json.tag"):
        try:
            mod = __import__(module, fromlist=["TaggedJSONSerializer"])
            return mod.TaggedJSONSerializer().loads(text)
        except ImportError:
            continue
    return json.loads(text)


def _keys(secret_key: Any) -> list[bytes]:
    if secret_key is None:
        return []
    keys = list(secret_key) if isinstance(secret_key, (list, tuple)) else [secret_key]
    return [k.encode("utf-8") if isinstance(k, str) else bytes(k) for k in keys]


def session_signature(signed_part: str, secret_key: str | bytes) -> str:
    """The signature itsdangerous makes for ``payload.timestamp`` (HMAC key derivation, SHA-1)."""
    key = _keys(secret_key)[0]
    derived = hmac.new(key, SESSION_SALT, hashlib.sha1).digest()
    return _b64encode(hmac.new(derived, signed_part.encode("ascii"), hashlib.sha1).digest())


def decode_session(value: str, secret_key: Any = None) -> SessionValue | None:
    """A Flask/Quart session cookie's content, else None.

    ``secret_key`` (a key, or a list of keys: the current one and its fallbacks) verifies the
    signature: ``verified`` is then True or False; without a key it is None. A value whose
    signature does not verify is still decoded (it is what the client received).
    """
    if not value:
        return None
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    parts = value.rsplit(".", 2)
    if len(parts) != 3:
        return None
    payload, ts, sig = parts
    compressed = payload.startswith(".")
    body = payload[1:] if compressed else payload
    if not (body and _B64.fullmatch(body) and _B64.fullmatch(ts) and _B64.fullmatch(sig)):
        return None
    try:
        if len(_b64decode(sig)) != 20 or not 1 <= len(_b64decode(ts)) <= 8:
            return None
        data = _b64decode(body)
        if compressed:
            data = zlib.decompress(data)
        text = data.decode("utf-8")
        raw = json.loads(text)
    except (ValueError, zlib.error, UnicodeDecodeError, TypeError):
        return None
    try:
        loaded = _tagged_loads(text)
    except Exception:
        loaded = raw
    verified: bool | None = None
    keys = _keys(secret_key)
    if keys:
        signed = f"{payload}.{ts}"
        verified = any(hmac.compare_digest(session_signature(signed, k), sig) for k in keys)
    return SessionValue(loaded, raw, payload, ts, sig, compressed, verified)


def encode_session(
    raw: Any, secret_key: Any = None, *, timestamp: str | int | None = None, signature: str | None = None
) -> str:
    """A session cookie value for the plain JSON data ``raw`` (tags already as JSON objects).

    Compact JSON, zlib-compressed when that is shorter (as itsdangerous does). The timestamp
    is ``timestamp`` (its base64 part as sent, or seconds), else now; signed with the first of
    ``secret_key`` when given, else ``signature`` is kept (an unsigned change).
    """
    text = json.dumps(raw, separators=(",", ":"), ensure_ascii=True).encode("utf-8")
    compressed = zlib.compress(text)
    if len(compressed) < len(text) - 1:
        payload = "." + _b64encode(compressed)
    else:
        payload = _b64encode(text)
    if timestamp is None:
        timestamp = int(time.time())
    if isinstance(timestamp, int):
        timestamp = _b64encode(timestamp.to_bytes((timestamp.bit_length() + 7) // 8 or 1, "big"))
    signed = f"{payload}.{timestamp}"
    if _keys(secret_key):
        sig = session_signature(signed, _keys(secret_key)[0])
    elif signature is not None:
        sig = signature
    else:
        raise ValueError("encode_session needs a secret key or a signature to keep")
    return f"{signed}.{sig}"
