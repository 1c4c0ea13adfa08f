"""Known Flask -> Quart (and gunicorn -> Hypercorn) differences, and a matcher that explains one.

Why: a port from Flask to Quart trips over the same few things again and again (Quart's
other defaults, what must now be awaited, what runs on a thread, what the servers do before
an app sees a request). When the suite reports a :class:`~compat.compare.Difference`, a
person should not have to rediscover the cause: like a linter, :func:`explain` names the
catalogue entry that fits, with its cause and the usual fix, and the report shows it next to
the difference. An explanation is not an excuse: the difference still counts until the port
(or the allow-list, with its reason) deals with it.

Each entry is a :class:`Known` (an id that never changes, a one-line title, the layer it
belongs to, the cause, the usual fix, a link) and a predicate next to it that reads the
:class:`Evidence` (the difference, the request as the suite built it, both replies, the apps'
logs, the mode and the server pair) and answers how well the entry fits:

====  ======================================================================================
 0    does not fit
 1    circumstantial: the symptom fits, but other causes give the same symptom
 2    the difference *and* the request (or the replies) have the entry's known shape
 3    the evidence names the cause (a log line, a decoded cookie, the same set of methods)
====  ======================================================================================

:func:`explain` returns the entry with the highest strength (the earlier one in
:data:`CATALOGUE` on a tie), or None; :func:`explain_all` lists every fit. Every entry was
checked against Flask 3.1.3 / Werkzeug 3.1 / Quart 0.22 / gunicorn 27 / Hypercorn 0.18; the
table in ``compat/KNOWN.md`` says how.

To add an entry: find the behaviour in the framework's or server's source (or reproduce it
with a Flask app and its Quart twin), then write, in the section of its layer::

    @_entry(
        id="short-slug",                      # stable: reports and people refer to it
        title="one line a person scans",
        layer="framework",                    # framework | server | port
        cause="what Flask/Quart/gunicorn/Hypercorn does, with the setting and its default",
        fix="what the port (or the config) does about it, with the code names",
        reference="https://...",              # a doc, issue or PR, if there is one
    )
    def _short_slug(e: Evidence) -> int:
        ...                                   # 0..3, from e.difference, e.request, e.candidate...

keep the predicate small and literal (which kind, which header or status, which request
shape, which log text), give it a case that matches and a near miss that must not in
``tests/compat/test_compat_known.py``, and a row in ``compat/KNOWN.md``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

from .clients import Reply
from .compare import Difference

__all__ = ["Known", "Evidence", "CATALOGUE", "LAYERS", "explain", "explain_all", "by_id", "as_dict"]

LAYERS = ("framework", "server", "port")


@dataclass(frozen=True)
class Known:
    id: str  # short stable slug, e.g. "vary-cookie"
    title: str  # one line
    layer: str  # "framework" (Flask vs Quart), "server" (gunicorn vs Hypercorn) or "port" (a porting mistake)
    cause: str  # why it happens, 1-3 sentences, concrete
    fix: str  # the usual fix in the port (or config), 1-3 sentences with code names
    reference: str = ""  # a doc or issue link


@dataclass(frozen=True)
class Evidence:
    difference: Difference
    request: dict | None  # {"method", "path", "headers": [[k, v]...], "body_length", ...} as built by the suite
    reference: Reply | None  # compat.clients.Reply (status, headers list of tuples, body bytes)
    candidate: Reply | None
    candidate_log: str = ""  # the candidate app's log/traceback text during that request, if any
    reference_log: str = ""
    mode: str = "inprocess"  # inprocess | live | fuzz
    pair: str = ""  # e.g. "flask@gunicorn/port@hypercorn"


Predicate = Callable[[Evidence], int]
_RULES: list[tuple[Known, Predicate]] = []


def _entry(**fields: str) -> Callable[[Predicate], Predicate]:
    known = Known(**fields)
    if known.layer not in LAYERS:
        raise ValueError(f"{known.id}: layer {known.layer!r} is not one of {LAYERS}")
    if any(k.id == known.id for k, _ in _RULES):
        raise ValueError(f"{known.id}: id used twice")

    def register(fn: Predicate) -> Predicate:
        _RULES.append((known, fn))
        return fn

    return register


# ---------------------------------------------------------------------------- reading evidence

MIB = 1024 * 1024
CONDITIONAL_HEADERS = ("range", "if-none-match", "if-modified-since", "if-range", "if-match", "if-unmodified-since")


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return str(value)


def _values(value: Any) -> list[str]:
    """A header difference's side as a list of values (the suite gives lists; tolerate one)."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [_text(v) for v in value if v is not None]
    return [_text(value)]


def _tokens(value: Any) -> list[str]:
    """Comma-separated tokens of a header, lower-case, in order: ``["GET, HEAD"]`` -> ``["get", "head"]``."""
    return [t.strip().lower() for v in _values(value) for t in v.split(",") if t.strip()]


def _req(e: Evidence) -> dict:
    return e.request if isinstance(e.request, dict) else {}


def _req_headers(e: Evidence) -> list[tuple[str, str]]:
    out = []
    for item in _req(e).get("headers") or ():
        if isinstance(item, (list, tuple)) and len(item) == 2:
            out.append((_text(item[0]).lower(), _text(item[1])))
    return out


def _req_header(e: Evidence, name: str) -> str | None:
    for k, v in _req_headers(e):
        if k == name:
            return v
    return None


def _method(e: Evidence) -> str:
    return _text(_req(e).get("method") or "").upper()


def _body_length(e: Evidence) -> int | None:
    req = _req(e)
    if isinstance(req.get("body_length"), int):
        return req["body_length"]
    if isinstance(req.get("body"), (bytes, str)):
        return len(req["body"])
    return None


def _chunked(e: Evidence) -> bool:
    te = _req_header(e, "transfer-encoding") or ""
    return bool(_req(e).get("chunked")) or "chunked" in te.lower()


def _statuses(e: Evidence) -> tuple[int | None, int | None]:
    ref = e.reference.status if e.reference is not None else None
    cand = e.candidate.status if e.candidate is not None else None
    d = e.difference
    if d.kind == "status":
        ref = d.reference if isinstance(d.reference, int) else ref
        cand = d.candidate if isinstance(d.candidate, int) else cand
    return ref, cand


def _ok(status: int | None) -> bool:
    return status is not None and 200 <= status < 400


def _log(e: Evidence) -> str:
    return e.candidate_log or (getattr(e.candidate, "log", "") if e.candidate is not None else "") or ""


def _log_has(e: Evidence, pattern: str) -> bool:
    return re.search(pattern, _log(e)) is not None


def _live(e: Evidence) -> bool:
    return e.mode == "live"


def _pair_side(e: Evidence, index: int) -> str:
    parts = e.pair.lower().split("/")
    return parts[index] if len(parts) > index else ""


def _encoded_target_length(path: str) -> int:
    """Bytes of the request target on the wire (what a client cannot send raw is %-encoded)."""
    n = 0
    for ch in path:
        n += 1 if 0x21 <= ord(ch) < 0x7F else 3 * len(ch.encode("utf-8"))
    return n


def _request_line_length(e: Evidence) -> int | None:
    """``METHOD SP target SP HTTP/1.1`` without CRLF, as gunicorn measures it."""
    path = _req(e).get("path")
    if not isinstance(path, str):
        return None
    return len(_method(e) or "GET") + 1 + _encoded_target_length(path) + len(" HTTP/1.1")


def _header_line_lengths(e: Evidence) -> list[int]:
    """``Name: value`` + CRLF, as gunicorn's ``limit_request_field_size`` counts it."""
    return [len(k) + 2 + len(v.encode("utf-8")) + 2 for k, v in _req_headers(e)]


def _head_size(e: Evidence) -> int:
    line = _request_line_length(e) or 0
    return line + 2 + sum(_header_line_lengths(e)) + len("Host: 127.0.0.1:65535\r\n") + 2


# ---- session cookies (Flask's and Quart's SecureCookieSessionInterface: itsdangerous)


@dataclass(frozen=True)
class _SessionCookie:
    name: str
    payload: bytes | None  # the JSON, decompressed; None when not itsdangerous' form
    timestamp: str
    signature: str

    def data(self) -> Any:
        try:
            return json.loads(self.payload) if self.payload is not None else None
        except ValueError:
            return None


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _session_value(name: str, value: str) -> _SessionCookie | None:
    """A cookie value in itsdangerous' ``payload.timestamp.signature`` form, decoded if it is one."""
    value = value.strip().strip('"')
    if not value:
        return None
    compressed = value.startswith(".")
    parts = value[1:].split(".") if compressed else value.split(".")
    if len(parts) != 3 or not all(parts):
        return _SessionCookie(name, None, "", "")
    payload, timestamp, signature = parts
    try:
        raw = _b64(payload)
        if compressed:
            raw = zlib.decompress(raw)
        json.loads(raw)
    except (binascii.Error, ValueError, zlib.error):
        return _SessionCookie(name, None, timestamp, signature)
    return _SessionCookie(name, raw, timestamp, signature)


def _session_cookie(set_cookie: str) -> _SessionCookie | None:
    """The cookie of one ``Set-Cookie`` value (``name=value; attributes``)."""
    first = set_cookie.split(";", 1)[0].strip()
    if "=" not in first:
        return None
    name, _, value = first.partition("=")
    return _session_value(name.strip(), value)


def _cookie_pairs(e: Evidence) -> list[tuple[_SessionCookie | None, _SessionCookie | None]]:
    """The cookies of both sides that the difference is about, paired by name.

    Two forms of difference: ``header-*:set-cookie`` (whole Set-Cookie values, as lists) and
    the cookie-by-cookie kinds (``cookie-missing`` / ``cookie-extra`` with one raw Set-Cookie
    value, ``cookie-value`` with the two cookie values, ``where`` the cookie's name).
    """
    d = e.difference
    if d.kind == "cookie-value":
        name = d.where.split("#", 1)[0]
        r = _session_value(name, _text(d.reference)) if d.reference is not None else None
        c = _session_value(name, _text(d.candidate)) if d.candidate is not None else None
        return [(r, c)]
    if not (d.where == "set-cookie" or d.kind in ("cookie-missing", "cookie-extra")):
        return []
    ref = [c for c in (_session_cookie(v) for v in _values(d.reference)) if c]
    cand = [c for c in (_session_cookie(v) for v in _values(d.candidate)) if c]
    pairs: list[tuple[_SessionCookie | None, _SessionCookie | None]] = []
    for r in ref:
        pairs.append((r, next((c for c in cand if c.name == r.name), None)))
    for c in cand:
        if not any(r.name == c.name for r in ref):
            pairs.append((None, c))
    return pairs


def _cookie_missing(e: Evidence) -> bool:
    d = e.difference
    return d.kind == "cookie-missing" or (d.kind == "header-missing" and d.where == "set-cookie")


# ============================================================================ framework: Flask vs Quart


@_entry(
    id="vary-cookie",
    title="Vary: Cookie only on one side: Quart does not mark a session that is only read",
    layer="framework",
    cause=(
        "Flask 3.1.3 sets `session.accessed` whenever `RequestContext.session` is touched (any read, "
        "even `'x' in session`) and `SecureCookieSessionInterface.save_session` then adds `Vary: Cookie`. "
        "Quart 0.22 reuses Flask's `SecureCookieSession` but its request context never sets `accessed`, "
        "so its `save_session` adds `Vary: Cookie` only when it sets or deletes the cookie."
    ),
    fix=(
        "In the port, add the header wherever the session is read, e.g. an `after_request` hook doing "
        "`response.vary.add('Cookie')` when the view used `session`, or a session interface whose "
        "`open_session` returns a session that records reads."
    ),
    reference="https://github.com/pallets/flask/security/advisories/GHSA-68rp-wp8r-4726",
)
def _vary_cookie(e: Evidence) -> int:
    d = e.difference
    if d.where != "vary" or d.kind not in ("header-missing", "header-extra", "header-value"):
        return 0
    ref, cand = set(_tokens(d.reference)), set(_tokens(d.candidate))
    if ("cookie" in ref) == ("cookie" in cand):
        return 0
    return 2 if ref ^ cand == {"cookie"} else 1


@_entry(
    id="max-content-length-16mib",
    title="413 from the port only: Quart's default MAX_CONTENT_LENGTH is 16 MiB, Flask's None",
    layer="framework",
    cause=(
        "Quart's default config has `MAX_CONTENT_LENGTH = 16 * 1024 * 1024` and its request `Body` "
        "raises `RequestEntityTooLarge` (413) as soon as more bytes arrive (or `Content-Length` says so); "
        "Flask's default is `None`, so Werkzeug reads any body."
    ),
    fix=(
        "Set `MAX_CONTENT_LENGTH` explicitly in the port's config (`None` as Flask, or the same limit "
        "in both apps); per-route limits go on `request.max_content_length`."
    ),
    reference="https://github.com/pallets/quart/blob/main/docs/discussion/dos_mitigations.rst",
)
def _max_content_length(e: Evidence) -> int:
    ref, cand = _statuses(e)
    if cand != 413 or ref == 413:
        return 0
    n = _body_length(e)
    if n is None:
        return 1
    return 2 if n > 16 * MIB else 0


@_entry(
    id="get-json-silent",
    title="415 from Flask, something else from the port: Quart's get_json() returns None",
    layer="framework",
    cause=(
        "On a body whose Content-Type is not JSON, Flask's `request.get_json()` (Werkzeug >= 2.3) calls "
        "`on_json_loading_failed(None)`, which raises 415 Unsupported Media Type; Quart 0.22's "
        "`await request.get_json()` returns `None`, so the view goes on (often to its own 400)."
    ),
    fix=(
        "In the port, check `request.is_json` first and `abort(415)` (or raise `UnsupportedMediaType`) "
        "as Werkzeug does; keep `silent=True` where the Flask version used it."
    ),
    reference="https://github.com/pallets/werkzeug/issues/2550",
)
def _get_json_silent(e: Evidence) -> int:
    ref, cand = _statuses(e)
    if ref != 415 or cand == 415:
        return 0
    if e.request is None:
        return 1
    ctype = (_req_header(e, "content-type") or "").lower()
    return 0 if "json" in ctype else 2


@_entry(
    id="get-json-encoding",
    title="500 or 400 from the port on a JSON body that is not UTF-8: Quart decodes it as UTF-8 text",
    layer="framework",
    cause=(
        "Flask's `get_json()` hands the body's bytes to `json.loads`, which detects UTF-16 and UTF-32 and "
        "a byte-order mark, and answers 400 on bytes that are no JSON; Quart 0.22 decodes the body as "
        "UTF-8 text first, so invalid UTF-8 raises `UnicodeDecodeError` (500) and UTF-16 or a BOM gives "
        "400 where Flask parses the document."
    ),
    fix=(
        "In the port, read `await request.get_data()` and parse the bytes with the app's JSON provider "
        "(`current_app.json.loads(data)`), answering `BadRequest` on `ValueError` as Werkzeug does."
    ),
)
def _get_json_encoding(e: Evidence) -> int:
    return 3 if _log_has(e, r"UnicodeDecodeError") else 0  # the status alone says nothing of the cause


@_entry(
    id="sync-hook-thread",
    title="500 from the port: a thread-bound object (sqlite3) made in a sync hook, used elsewhere",
    layer="framework",
    cause=(
        "Quart runs every sync function (views, `before_request`/`after_request`/teardown hooks, error "
        "handlers, session interface) on a thread pool via `run_sync`, where Flask runs all of them on "
        "the request's one thread; a `sqlite3` connection opened in a sync hook and used in an async "
        "view (or another sync call) raises `ProgrammingError: SQLite objects created in a thread can "
        "only be used in that same thread`."
    ),
    fix=(
        "Make the hooks that create per-request resources `async def` (they then run on the loop "
        "thread with the async views), or open the resource where it is used, or pass "
        "`check_same_thread=False` with a lock."
    ),
    reference="https://github.com/pallets/quart/blob/main/docs/how_to_guides/sync_code.rst",
)
def _sync_hook_thread(e: Evidence) -> int:
    if _log_has(e, r"SQLite objects created in a thread|can only be used in that same thread"):
        return 3
    ref, cand = _statuses(e)
    if not _log(e).strip() and cand == 500 and _ok(ref):
        return 1  # no log to tell: one cause among many
    return 0


@_entry(
    id="send-file-conditional",
    title="Range / If-None-Match answered differently: Quart's send_file is not conditional by default",
    layer="framework",
    cause=(
        "Flask's `send_file` defaults to `conditional=True` (Werkzeug answers 304, 206, 416 with "
        "`Content-Range: bytes */size`, strips entity headers from a 304); Quart 0.22's defaults to "
        "`conditional=False` (always 200 with the whole file) and, with `conditional=True`, keeps "
        "Content-Type/Content-Length/Last-Modified/Expires on a 304, sends no Content-Range on a 416 "
        "and fails with 500 (`AssertionError: Bad range provided`) on a suffix range `bytes=-N`."
    ),
    fix=(
        "Call `await send_file(..., conditional=True)` in the port, and answer 304/416/suffix ranges "
        "yourself where they must match Werkzeug (`response.make_conditional` plus the missing "
        "headers), as `app/files.py` does."
    ),
    reference="https://github.com/pallets/quart/issues/349",
)
def _send_file_conditional(e: Evidence) -> int:
    d = e.difference
    ref, cand = _statuses(e)
    conditional = any(_req_header(e, h) is not None for h in CONDITIONAL_HEADERS)
    rng = (_req_header(e, "range") or "").replace(" ", "").lower()
    if cand == 500 and ref == 206 and rng.startswith("bytes=-"):
        return 3
    if (
        cand == 304
        and d.kind == "header-extra"
        and d.where in ("content-type", "content-length", "last-modified", "expires")
    ):
        return 2
    if ref == 416 and d.kind == "header-missing" and d.where == "content-range":
        return 2
    if ref != cand and ref in (200, 206, 304, 412, 416) and cand in (200, 206, 304, 412, 416, 500):
        if conditional:
            return 2
        if e.request is None and cand == 200 and ref in (206, 304, 416):
            return 1
    return 0


@_entry(
    id="send-file-cache",
    title="Cache-Control public, max-age=43200 and Expires on the port's files",
    layer="framework",
    cause=(
        "Quart's default `SEND_FILE_MAX_AGE_DEFAULT` is 12 hours and its `send_file` always sets "
        "`Cache-Control: public` plus `max-age` and an `Expires`; Flask's default is `None`, which "
        "Werkzeug sends as `Cache-Control: no-cache` with no `Expires`."
    ),
    fix=(
        "Set `SEND_FILE_MAX_AGE_DEFAULT = None` in the port, or set `response.cache_control` "
        "(`no_cache = True`, `public = False`, `max_age = None`) and `response.expires = None` after "
        "`send_file`."
    ),
    reference="https://flask.palletsprojects.com/en/stable/config/#SEND_FILE_MAX_AGE_DEFAULT",
)
def _send_file_cache(e: Evidence) -> int:
    d = e.difference
    if d.where == "cache-control" and d.kind in ("header-value", "header-extra"):
        cand = _tokens(d.candidate)
        if "public" in cand or any(t.startswith("max-age=") for t in cand):
            return 2 if "no-cache" in _tokens(d.reference) or d.kind == "header-extra" else 1
    if d.where == "expires" and d.kind == "header-extra":
        return 1 if _statuses(e)[1] == 304 else 2
    return 0


@_entry(
    id="send-file-headers",
    title="No Content-Disposition / Accept-Ranges on the port's files",
    layer="framework",
    cause=(
        "Werkzeug's `send_file` (Flask) sends `Content-Disposition: inline; filename=<name>` whenever it "
        "knows a name and `Accept-Ranges: bytes` on every conditional answer; Quart 0.22's `send_file` "
        "adds Content-Disposition only with `as_attachment=True` and Accept-Ranges only on a 206."
    ),
    fix=(
        "Add them in the port after `send_file`: `response.headers.set('Content-Disposition', 'inline', "
        "filename=name)` and `response.headers['Accept-Ranges'] = 'bytes'`."
    ),
    reference="https://github.com/pallets/quart/issues/349",
)
def _send_file_headers(e: Evidence) -> int:
    d = e.difference
    if d.kind != "header-missing":
        return 0
    ref = " ".join(_values(d.reference)).lower()
    if d.where == "content-disposition" and ref.startswith(("inline", "attachment")):
        return 2
    if d.where == "accept-ranges" and "bytes" in ref:
        return 2
    return 0


@_entry(
    id="content-length-204",
    title="Content-Length: 0 on the port's 204",
    layer="framework",
    cause=(
        "Quart's `Response` sets `Content-Length` from any bytes body, so an empty 204 carries "
        "`Content-Length: 0` (and Hypercorn sends it on); Werkzeug's WSGI response drops it for 1xx and "
        "204 (and entity headers for 304), as RFC 9110 asks, so Flask sends none."
    ),
    fix=(
        "Remove it in the port for bodiless statuses, e.g. in `after_request`: "
        "`if response.status_code in (204, 304): response.headers.pop('Content-Length', None)`."
    ),
    reference="https://www.rfc-editor.org/rfc/rfc9110#section-8.6",
)
def _content_length_204(e: Evidence) -> int:
    d = e.difference
    if d.where != "content-length":
        return 0
    ref, cand = _statuses(e)
    if d.kind == "header-extra" and cand == 204 and _values(d.candidate) == ["0"]:
        return 2
    if d.kind == "header-missing" and ref == 204:
        return 1
    return 0


@_entry(
    id="session-cookie-key-order",
    title="Same session, other cookie bytes: Quart serializes the session without sorted keys",
    layer="framework",
    cause=(
        "Both use Flask's `TaggedJSONSerializer`, which calls `flask.json.dumps`: under Flask that is "
        "`app.json.dumps` (`sort_keys=True`), under Quart there is no Flask `current_app`, so plain "
        "`json.dumps` keeps insertion order; a session with two keys set in another order (e.g. `user` "
        "then `_flashes`) gives another payload and signature."
    ),
    fix=(
        "Give the port a session serializer that sorts keys (a `SecureCookieSessionInterface` subclass "
        "whose `serializer` dumps with `sort_keys=True`), or compare sessions decoded, not byte for byte."
    ),
)
def _session_cookie_key_order(e: Evidence) -> int:
    d = e.difference
    if not (d.where == "set-cookie" and d.kind == "header-value" or d.kind == "cookie-value"):
        return 0
    for r, c in _cookie_pairs(e):
        if r and c and r.payload and c.payload and r.payload != c.payload:
            if r.data() == c.data() and isinstance(r.data(), dict):
                return 3
    return 0


@_entry(
    id="server-name-host",
    title="404 from the port for another Host: Quart still routes by SERVER_NAME",
    layer="framework",
    cause=(
        "Since Flask 3.1, `SERVER_NAME` no longer restricts routing unless `subdomain_matching` is on; "
        "Quart 0.22's `create_url_adapter` still binds the map to `SERVER_NAME`, so a request whose Host "
        "differs gets 404 and Werkzeug warns `Current server name ... doesn't match configured server "
        "name`."
    ),
    fix=(
        "Do not set `SERVER_NAME` in the port (use `PREFERRED_URL_SCHEME` and `url_for(..., "
        "_external=True)` from the request), or override `create_url_adapter` to bind without it."
    ),
    reference="https://github.com/pallets/flask/pull/5634",
)
def _server_name_host(e: Evidence) -> int:
    return 3 if _log_has(e, r"doesn't match configured server name") else 0


@_entry(
    id="allow-header-order",
    title="Allow lists the same methods in another order",
    layer="framework",
    cause=(
        "Werkzeug builds `Allow` (automatic OPTIONS, 405) from a `set` of methods, whose order follows "
        "the process's string hash seed (`PYTHONHASHSEED`); two processes, or two frameworks, list the "
        "same methods in different orders."
    ),
    fix=(
        "Nothing to fix in the port: compare `Allow` as a set, or run both servers with the same "
        "`PYTHONHASHSEED`; an app that must be stable sorts the header in `after_request`."
    ),
)
def _allow_header_order(e: Evidence) -> int:
    d = e.difference
    if d.where != "allow" or d.kind != "header-value":
        return 0
    ref, cand = _tokens(d.reference), _tokens(d.candidate)
    return 3 if ref != cand and sorted(ref) == sorted(cand) else 0


@_entry(
    id="repeated-request-header",
    title="A request header sent twice: WSGI joins the values, Quart's headers.get takes the first",
    layer="framework",
    cause=(
        "A WSGI server (gunicorn, and the suite's WSGI client) puts a repeated header into one environ "
        "key joined with `,`, so Flask's `request.headers.get` sees `a,b`; ASGI keeps both lines and "
        "Quart's `request.headers.get` returns the first."
    ),
    fix=(
        "Read such headers in the port as WSGI presents them, `','.join(request.headers.getlist(name))`, "
        "where the Flask version's behaviour is the contract."
    ),
)
def _repeated_request_header(e: Evidence) -> int:
    names = [k for k, _ in _req_headers(e)]
    repeated = {n for n in names if names.count(n) > 1 and n not in ("host", "content-length")}
    if not repeated:
        return 0
    d = e.difference
    # what a repeated header changes: the answer's status, or the header echoed back
    return 2 if d.kind == "status" or d.where in repeated else 1


@_entry(
    id="body-timeout-408",
    title="408 from the port: Quart's BODY_TIMEOUT (60 s) on a slow or short body",
    layer="framework",
    cause=(
        "Quart waits at most `BODY_TIMEOUT` (60 s by default) for the body in `get_data`, `get_json`, "
        "`form` and `files` and then raises `RequestTimeout` (408); Flask has no such timeout (gunicorn's "
        "worker `timeout` kills a sync worker instead)."
    ),
    fix=(
        "Set `BODY_TIMEOUT` in the port to what the deployment expects (`None` waits forever), or answer "
        "the timeout as the Flask version's server would."
    ),
    reference="https://github.com/pallets/quart/blob/main/docs/discussion/dos_mitigations.rst",
)
def _body_timeout(e: Evidence) -> int:
    ref, cand = _statuses(e)
    return 2 if cand == 408 and ref != 408 else 0


@_entry(
    id="redirect-location",
    title="Location absolute on one side, relative on the other",
    layer="framework",
    cause=(
        "Werkzeug >= 2.1 keeps a relative `Location` (`Response.autocorrect_location_header = False`) "
        "and Quart never rewrites it; a Flask app that sets `autocorrect_location_header = True` (the "
        "old default) or builds the URL with `url_for(..., _external=True)` sends an absolute URL where "
        "the port does not, or the reverse."
    ),
    fix=(
        "Build the same URL on both sides: `redirect(url_for(...))` relative in both, or `_external=True` "
        "in both; drop `autocorrect_location_header` from the Flask version."
    ),
    reference="https://github.com/pallets/werkzeug/issues/2352",
)
def _redirect_location(e: Evidence) -> int:
    d = e.difference
    if d.where != "location" or d.kind != "header-value":
        return 0
    ref, cand = _values(d.reference), _values(d.candidate)
    if len(ref) != 1 or len(cand) != 1:
        return 0
    a, b = urlsplit(ref[0]), urlsplit(cand[0])
    if bool(a.netloc) != bool(b.netloc) and (a.path or "/", a.query) == (b.path or "/", b.query):
        return 2
    return 0


# ============================================================================ server: gunicorn vs Hypercorn


@_entry(
    id="server-request-line-414",
    title="414 from gunicorn: request line over limit_request_line (4094 bytes)",
    layer="server",
    cause=(
        "gunicorn refuses a request line (`METHOD target HTTP/1.1`) longer than `limit_request_line` "
        "(default 4094, at most 8190) with 414 URI Too Long (400 in releases before the fix of "
        "benoitc/gunicorn#2487); Hypercorn has no request-line limit of its own, only h11's 16 KiB "
        "`h11_max_incomplete_size` for a head still incomplete (then 431), so it lets the request through."
    ),
    fix=(
        "Deployment config, not the port: give gunicorn `--limit-request-line 8190` (or 0), or limit "
        "URLs in both apps; keep such scenarios out of the live pair or allow them with this reason."
    ),
    reference="https://github.com/benoitc/gunicorn/issues/2487",
)
def _server_request_line(e: Evidence) -> int:
    if not _live(e):
        return 0
    ref, cand = _statuses(e)
    if ref == cand:
        return 0
    line = _request_line_length(e)
    if line is None or line <= 4094:
        return 0
    if 414 in (ref, cand):
        return 2
    return 1 if {400, 431} & {ref, cand} else 0


@_entry(
    id="server-header-431",
    title="431 from gunicorn: a header line over limit_request_field_size (8190) or over 100 fields",
    layer="server",
    cause=(
        "gunicorn answers 431 Request Header Fields Too Large when one header line (`Name: value` + CRLF) "
        "exceeds `limit_request_field_size` (8190) or there are more than `limit_request_fields` (100) "
        "(400 in old releases); Hypercorn 0.18 has neither limit: h11 answers 431 only when the head is "
        "still incomplete past `h11_max_incomplete_size` (16 KiB), so a head up to 64 KiB read at once passes."
    ),
    fix=(
        "Deployment config: raise gunicorn's `--limit-request-field_size` / `--limit-request-fields`, or "
        "lower Hypercorn's `h11_max_incomplete_size` and cap headers in both apps; allow such scenarios "
        "in the live pair with this reason."
    ),
    reference="https://github.com/benoitc/gunicorn/pull/2879",
)
def _server_header_431(e: Evidence) -> int:
    if not _live(e):
        return 0
    ref, cand = _statuses(e)
    if ref == cand or not ({431, 400} & {ref, cand}):
        return 0
    lines = _header_line_lengths(e)
    fields = len(lines) + 1 + (1 if (_body_length(e) or _chunked(e)) else 0)  # + Host, Content-Length
    line_ok = (_request_line_length(e) or 0) <= 4094
    if any(n > 8190 for n in lines) or fields > 100:
        return 2 if 431 in (ref, cand) else 1
    if line_ok and _head_size(e) > 16 * 1024 and 431 in (ref, cand):
        return 2
    return 0


@_entry(
    id="head-options",
    title="Empty 500 from Hypercorn's WSGI mode for HEAD, OPTIONS, 304 and other empty bodies",
    layer="server",
    cause=(
        "Hypercorn 0.18's `WSGIWrapper` sends `http.response.start` only with the first body chunk; a "
        "WSGI iterable with no chunk (Werkzeug's answer to HEAD, automatic OPTIONS, 304, a 0-byte file) "
        "never starts the response and Hypercorn answers an empty 500 (pgjones/hypercorn#331)."
    ),
    fix=(
        "Serve the Flask version with gunicorn (its deployment), not Hypercorn's WSGI mode; where WSGI "
        "under Hypercorn is needed, wrap the app so an empty iterable yields one `b''` chunk."
    ),
    reference="https://github.com/pgjones/hypercorn/issues/331",
)
def _head_options(e: Evidence) -> int:
    if "hypercorn-wsgi" not in _pair_side(e, 1):
        return 0
    ref, cand = _statuses(e)
    if cand != 500 or ref == 500 or (e.candidate is not None and e.candidate.body):
        return 0
    if _method(e) in ("HEAD", "OPTIONS") or ref in (204, 304) or (e.reference is not None and e.reference.body == b""):
        return 3
    return 1


@_entry(
    id="hypercorn-wsgi-body",
    title="Hypercorn's WSGI mode: 400 over 16 MiB, a chunked body read as empty",
    layer="server",
    cause=(
        "Hypercorn's `WSGIWrapper` buffers the whole body and answers an empty 400 past "
        "`wsgi_max_body_size` (16 MiB by default), and its environ has no `wsgi.input_terminated`, so "
        "Werkzeug reads a chunked request (no Content-Length) as empty; gunicorn streams the body and "
        "sets `wsgi.input_terminated`."
    ),
    fix=(
        "Serve the Flask version with gunicorn; under Hypercorn's WSGI mode raise `wsgi_max_body_size` "
        "and set `environ['wsgi.input_terminated'] = True` in a small WSGI middleware."
    ),
    reference="https://github.com/pgjones/hypercorn/issues/89",
)
def _hypercorn_wsgi_body(e: Evidence) -> int:
    if "hypercorn-wsgi" not in _pair_side(e, 1):
        return 0
    ref, cand = _statuses(e)
    n = _body_length(e)
    if cand == 400 and ref != 400 and n is not None and n > 16 * MIB:
        return 3
    if _chunked(e) and n:
        return 2
    return 0


@_entry(
    id="server-forwarded-proto",
    title="https vs http behind loopback: gunicorn trusts X-Forwarded-Proto from 127.0.0.1",
    layer="server",
    cause=(
        "gunicorn's `forwarded_allow_ips` defaults to `127.0.0.1,::1`, so from loopback it applies "
        "`secure_scheme_headers` (`X-Forwarded-Proto: https`, `X-Forwarded-Ssl: on`, "
        "`X-Forwarded-Protocol: ssl`) and `wsgi.url_scheme` becomes https; Hypercorn applies no proxy "
        "header unless the app is wrapped in its `ProxyFixMiddleware`."
    ),
    fix=(
        "Deployment config: configure both the same (gunicorn `--forwarded-allow-ips ''` or Hypercorn's "
        "`ProxyFixMiddleware(app, mode='legacy', trusted_hops=1)`); the apps are not at fault."
    ),
    reference="https://docs.gunicorn.org/en/stable/settings.html#forwarded-allow-ips",
)
def _server_forwarded_proto(e: Evidence) -> int:
    if not _live(e):
        return 0
    names = {k for k, _ in _req_headers(e)}
    if not names & {"x-forwarded-proto", "x-forwarded-ssl", "x-forwarded-protocol"}:
        return 0
    d = e.difference
    if d.where == "location" and d.kind == "header-value":
        ref, cand = _values(d.reference), _values(d.candidate)
        if len(ref) == 1 and len(cand) == 1:
            a, b = urlsplit(ref[0]), urlsplit(cand[0])
            if a.scheme != b.scheme and (a.netloc, a.path, a.query) == (b.netloc, b.path, b.query):
                return 3
    return 2 if d.kind in ("status", "header-value", "json", "body", "header-missing", "header-extra") else 0


_GUNICORN_ERROR_PAGE = b"<html>\n  <head>\n    <title>"


@_entry(
    id="server-error-page",
    title="An error the server answered itself: gunicorn's HTML page vs Hypercorn's empty body",
    layer="server",
    cause=(
        "When the server refuses a request before the app (bad request line, 414, 431, 400) gunicorn "
        "sends a small HTML page (`<html><head><title>...`, `Content-Type: text/html`), Hypercorn an "
        "empty body with `content-length: 0` and no Content-Type."
    ),
    fix=(
        "Nothing in the port: the body of a server-made error is the server's; compare only its status, "
        "or allow the body difference for such scenarios in the live pair."
    ),
)
def _server_error_page(e: Evidence) -> int:
    if not _live(e) or e.reference is None or e.candidate is None:
        return 0
    r, c = e.reference, e.candidate
    if r.status < 400 or c.status < 400:
        return 0
    bodies = (r.body, c.body)
    if any(b.startswith(_GUNICORN_ERROR_PAGE) for b in bodies) and b"" in bodies:
        return 2
    return 0


# ============================================================================ port: porting mistakes


@_entry(
    id="request-form-await",
    title="500 from the port: request.form / files / get_json() used without await",
    layer="port",
    cause=(
        "In Quart `request.form`, `request.files`, `request.values`, `request.data`, `request.json`, "
        "`request.get_data()` and `request.get_json()` are awaitables; without `await` the view gets a "
        "coroutine (`TypeError: 'coroutine' object is not subscriptable`, `... has no attribute 'get'`, "
        "`Object of type coroutine is not JSON serializable`) and the log says `coroutine 'Request.form' "
        "was never awaited`."
    ),
    fix="Await them in an `async def` view: `form = await request.form`, `data = await request.get_json()`.",
    reference="https://github.com/pallets/quart/blob/main/docs/how_to_guides/flask_migration.rst",
)
def _request_form_await(e: Evidence) -> int:
    if _log_has(e, r"coroutine 'Request\.\w+' was never awaited"):
        return 3
    if _log_has(
        e,
        r"'coroutine' object (is not subscriptable|has no attribute|is not iterable)"
        r"|Object of type coroutine is not JSON serializable",
    ):
        return 2
    return 0


@_entry(
    id="missing-await-render",
    title="500 from the port: render_template / make_response / send_file returned without await",
    layer="port",
    cause=(
        "Quart's `render_template`, `render_template_string`, `make_response`, `send_file` and "
        "`send_from_directory` are coroutine functions; a view that returns their result without "
        "`await` returns a coroutine and Quart fails with `TypeError: The response value type "
        "(coroutine) is not valid`."
    ),
    fix="`return await render_template(...)` (likewise `await make_response(...)`, `await send_file(...)`).",
    reference="https://github.com/pallets/quart/blob/main/docs/how_to_guides/flask_migration.rst",
)
def _missing_await_render(e: Evidence) -> int:
    if _log_has(
        e,
        r"coroutine '(render_template|render_template_string|stream_template|make_response"
        r"|send_file|send_from_directory)' was never awaited",
    ):
        return 3
    if _log_has(e, r"The response value type \(coroutine\) is not valid"):
        return 2
    return 0


@_entry(
    id="flash-session",
    title="No session cookie from the port after flash(): Quart's flash must be awaited",
    layer="port",
    cause=(
        "Flask's `flash()` writes the message into `session['_flashes']` at once; Quart's `flash` is a "
        "coroutine function, so `flash('...')` without `await` stores nothing (the log says `coroutine "
        "'flash' was never awaited`) and no `Set-Cookie` is sent."
    ),
    fix="`await flash('...')` in an `async def` view; read them with `get_flashed_messages()` as before.",
)
def _flash_session(e: Evidence) -> int:
    if _log_has(e, r"coroutine 'flash' was never awaited"):
        return 3
    if _cookie_missing(e):
        for r, _ in _cookie_pairs(e):
            data = r.data() if r else None
            if isinstance(data, dict) and "_flashes" in data:
                return 2
    return 0


@_entry(
    id="secret-key-session-cookie",
    title="Session cookie signed or encoded differently: another SECRET_KEY, salt or serializer",
    layer="port",
    cause=(
        "Flask's and Quart's `SecureCookieSessionInterface` both sign `payload.timestamp` with "
        "itsdangerous (`SECRET_KEY`, salt `cookie-session`, HMAC-SHA1); the same payload and timestamp "
        "with another signature means another key, salt or digest, another encoding another serializer, "
        "and no key at all makes Quart's `NullSession` fail (`The session is unavailable because no "
        "secret key was set`)."
    ),
    fix=(
        "Load the same `SECRET_KEY` (and `SECRET_KEY_FALLBACKS`) in the port from the same place, and keep "
        "the default `session_interface` (or the Flask version's custom salt/serializer) unchanged."
    ),
    reference="https://flask.palletsprojects.com/en/stable/config/#SECRET_KEY",
)
def _secret_key_session_cookie(e: Evidence) -> int:
    if _log_has(e, r"no secret key was set"):
        return 3
    d = e.difference
    if d.kind == "cookie-session" and d.where.endswith(":signature"):
        return 3  # the suite checked it with the reference's key: the candidate's does not verify
    for r, c in _cookie_pairs(e):
        if r and c and r.payload and c.payload is not None:
            if r.payload == c.payload and r.timestamp == c.timestamp and r.signature != c.signature:
                return 3
        if r and c and r.payload and c.payload is None:
            return 2  # a session cookie on the reference's side only: another serializer
        if r and r.payload and c is None and _cookie_missing(e):
            return 1
    return 0


@_entry(
    id="send-file-kwargs",
    title="500 from the port: send_file() called with Flask's argument names",
    layer="port",
    cause=(
        "Flask/Werkzeug >= 2.0 renamed `send_file` arguments to `download_name`, `max_age`, `etag` and "
        "`last_modified`; Quart 0.22 keeps `attachment_filename`, `cache_timeout` and `add_etags`, so "
        "the Flask call raises `TypeError: send_file() got an unexpected keyword argument`."
    ),
    fix=(
        "Translate the call: `download_name=` -> `attachment_filename=`, `max_age=` -> `cache_timeout=`, "
        "`etag=False` -> `add_etags=False`, and pass `conditional=True` explicitly."
    ),
    reference="https://github.com/pallets/werkzeug/pull/2007",
)
def _send_file_kwargs(e: Evidence) -> int:
    return 3 if _log_has(e, r"(send_file|send_from_directory)\(\) got an unexpected keyword argument") else 0


@_entry(
    id="json-provider",
    title="Same JSON values, other bytes: spacing, key order, escaping or trailing newline",
    layer="port",
    cause=(
        "Flask and Quart 0.22 share Flask's `DefaultJSONProvider` (`sort_keys=True`, compact "
        "separators unless debug, `ensure_ascii=True`, a trailing newline from `jsonify`), so the bytes "
        "differ only when one side serializes otherwise: `json.dumps` by hand (`', '`/`': '`, no sorting), "
        "another `app.json` provider or its settings, or `DEBUG` (indent 2) on one side."
    ),
    fix=(
        "Return dicts or `jsonify(...)` in the port as the Flask version does, and give both apps the same "
        "`app.json` settings (`sort_keys`, `compact`, `ensure_ascii`) and the same `DEBUG`."
    ),
    reference="https://github.com/pallets/quart/blob/main/docs/how_to_guides/json_encoding.rst",
)
def _json_provider(e: Evidence) -> int:
    d = e.difference
    if d.kind == "json-format":
        return 2
    if d.kind == "body" and isinstance(d.reference, bytes) and isinstance(d.candidate, bytes):
        try:
            if json.loads(d.reference) == json.loads(d.candidate):
                return 2
        except ValueError:
            return 0
    return 0


@_entry(
    id="content-type-charset",
    title="Content-Type with and without '; charset=utf-8'",
    layer="port",
    cause=(
        "Werkzeug (under both Flask and Quart) adds `; charset=utf-8` to a text type given as "
        "`mimetype=`, but keeps a `content_type=` or a `Content-Type` header value exactly as given; a port "
        "that switched between the two forms changes the header."
    ),
    fix=(
        "Build the response the same way as the Flask version: `mimetype='text/plain'` on both sides, or "
        "the full `content_type='text/plain; charset=utf-8'`."
    ),
)
def _content_type_charset(e: Evidence) -> int:
    d = e.difference
    if d.where != "content-type" or d.kind != "header-value":
        return 0
    ref, cand = _values(d.reference), _values(d.candidate)
    if len(ref) != 1 or len(cand) != 1:
        return 0

    def split(v: str) -> tuple[str, bool]:
        params = [p.strip().lower() for p in v.split(";")]
        return params[0], any(p.startswith("charset=") for p in params[1:])

    (rt, rc), (ct, cc) = split(ref[0]), split(cand[0])
    return 2 if rt == ct and rc != cc else 0


# ---------------------------------------------------------------------------- the catalogue

CATALOGUE: tuple[Known, ...] = tuple(k for k, _ in _RULES)


def explain_all(e: Evidence) -> list[tuple[Known, int]]:
    """Every entry that fits, with its strength (1 circumstantial .. 3 named), best first.

    A predicate that cannot read odd evidence (a request or value of another shape) counts as
    no fit: an explanation must never stop a report.
    """
    found = []
    for index, (known, predicate) in enumerate(_RULES):
        try:
            strength = int(predicate(e) or 0)
        except Exception:  # noqa: BLE001 - see the docstring
            strength = 0
        if strength > 0:
            found.append((strength, -index, known))
    found.sort(key=lambda t: (t[0], t[1]), reverse=True)
    return [(k, s) for s, _, k in found]


def explain(e: Evidence) -> Known | None:
    """The best matching entry, or None."""
    found = explain_all(e)
    return found[0][0] if found else None


def by_id(entry_id: str) -> Known:
    for k in CATALOGUE:
        if k.id == entry_id:
            return k
    raise KeyError(entry_id)


def as_dict(k: Known) -> dict:
    return asdict(k)
