"""The suite tests itself: mutants of the candidate, each changing one observable thing.

A mutant is ASGI middleware around the candidate app. It buffers each answer, changes one
thing, fixes ``Content-Length`` if the body changed, and counts how many answers it
changed (a mutant that changed nothing in a run is "not applicable", never "caught").

The self-check plays the corpus on two reference instances once, then on the unmutated
candidate and on every mutant (each its own instance, all at once), and calls a mutant
*caught* when its comparison with the reference shows a difference that the unmutated
candidate's does not (no allow-list applies here: an allow-list must not hide a mutant).

The HEAD-body mutant is different by nature: servers drop a HEAD body, so no client can see
it. It is expected to give **no** wire difference and to show up as an app-level note.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from .allow import AllowList
from .apps import AppSpec, InstanceSetup, Workdir
from .clients import is_asgi_app
from .corpus import Scenario
from .inprocess import play_instances, start_instances
from .results import PairReport, compare_runs

Headers = list[tuple[bytes, bytes]]
Transform = Callable[[dict, int, Headers, bytes], "tuple[int, Headers, bytes] | None"]


def _get(headers: Headers, name: bytes) -> bytes | None:
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def _set(headers: Headers, name: bytes, value: bytes) -> Headers:
    out, done = [], False
    for k, v in headers:
        if k.lower() == name:
            if not done:
                out.append((k, value))
                done = True
            continue
        out.append((k, v))
    if not done:
        out.append((name, value))
    return out


def _drop(headers: Headers, name: bytes) -> Headers:
    return [(k, v) for k, v in headers if k.lower() != name]


def _is_json(headers: Headers) -> bool:
    return b"json" in (_get(headers, b"content-type") or b"").lower()


class Mutant:
    """ASGI middleware that applies ``transform`` to every buffered HTTP answer."""

    def __init__(self, app: Any, name: str, transform: Transform) -> None:
        self.app = app
        self.name = name
        self.transform = transform
        self.applied = 0

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: dict) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(bytes(message.get("body", b"")))
                if not message.get("more_body", False):
                    await flush()
            else:
                await send(message)

        async def flush() -> None:
            status = int(start["status"])
            headers = [(bytes(k), bytes(v)) for k, v in start.get("headers", [])]
            body = b"".join(chunks)
            result = self.transform(scope, status, headers, body)
            if result is not None:
                new_status, new_headers, new_body = result
                if (new_status, new_headers, new_body) != (status, headers, body):
                    self.applied += 1
                if new_body != body and _get(new_headers, b"content-length") is not None:
                    if scope.get("method") != "HEAD":
                        new_headers = _set(new_headers, b"content-length", str(len(new_body)).encode())
                status, headers, body = new_status, new_headers, new_body
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body, "more_body": False})

        await self.app(scope, receive, capture)


# ---------------------------------------------------------------------------- the mutations


def m_status(scope, status, headers, body):
    """Every 200 becomes 201."""
    return (201, headers, body) if status == 200 else None


def m_header(scope, status, headers, body):
    """One header: ``Content-Type: application/json`` gains ``; charset=utf-8``."""
    ctype = _get(headers, b"content-type")
    if ctype == b"application/json":
        return status, _set(headers, b"content-type", b"application/json; charset=utf-8"), body
    return None


def _reencode(body: bytes, **kwargs: Any) -> bytes | None:
    try:
        value = json.loads(body, object_pairs_hook=lambda pairs: dict(pairs))
    except ValueError:
        return None
    text = json.dumps(value, **kwargs)
    return text.encode() + (b"\n" if body.endswith(b"\n") else b"")


def m_json_spacing(scope, status, headers, body):
    """JSON bodies re-encoded with spaces after ``,`` and ``:`` (same key order)."""
    if not _is_json(headers) or not body:
        return None
    new = _reencode(body, separators=(", ", ": "))
    return (status, headers, new) if new is not None else None


def _reverse_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _reverse_keys(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reverse_keys(v) for v in value]
    return value


def m_json_key_order(scope, status, headers, body):
    """JSON objects with their keys in reverse order (same compact spacing)."""
    if not _is_json(headers) or not body:
        return None
    try:
        value = json.loads(body)
    except ValueError:
        return None
    new = json.dumps(_reverse_keys(value), separators=(",", ":")).encode() + (b"\n" if body.endswith(b"\n") else b"")
    return status, headers, new


def m_head_body(scope, status, headers, body):
    """A body sent for HEAD (servers drop it: no client can see it)."""
    if scope.get("method") == "HEAD":
        return status, headers, body + b"mutant: a body for HEAD"
    return None


def m_location(scope, status, headers, body):
    """A relative ``Location`` made absolute."""
    loc = _get(headers, b"location")
    if loc is not None and loc.startswith(b"/"):
        return status, _set(headers, b"location", b"http://localhost" + loc), body
    return None


def m_drop_request_id(scope, status, headers, body):
    """The after_request header ``X-Request-ID`` is missing."""
    if _get(headers, b"x-request-id") is not None:
        return status, _drop(headers, b"x-request-id"), body
    return None


def m_415_to_400(scope, status, headers, body):
    """415 answered as 400 (body unchanged)."""
    return (400, headers, body) if status == 415 else None


def m_content_disposition(scope, status, headers, body):
    """``Content-Disposition: inline`` becomes ``attachment`` (and back)."""
    cd = _get(headers, b"content-disposition")
    if cd is None:
        return None
    if cd.startswith(b"inline"):
        new = b"attachment" + cd[len(b"inline") :]
    elif cd.startswith(b"attachment"):
        new = b"inline" + cd[len(b"attachment") :]
    else:
        return None
    return status, _set(headers, b"content-disposition", new), body


# The reference's secret key, set by whoever builds the mutants (the worker): the
# session mutant re-signs what it changes with it, so that only the payload differs.
SESSION_SECRET_KEY: str | None = None


def _cookie_parts(value: bytes) -> tuple[bytes, bytes, bytes]:
    """``name=value; attrs`` -> (b"name=", value, b"; attrs")."""
    first, sep, rest = value.partition(b";")
    name, eq, val = first.partition(b"=")
    lead = len(val) - len(val.lstrip())
    trail = len(val.rstrip())
    return name + eq + val[:lead], val[lead:trail], val[trail:] + sep + rest


def _map_set_cookies(headers: Headers, change: Callable[[bytes], bytes | None]) -> Headers | None:
    out, changed = [], False
    for k, v in headers:
        if k.lower() == b"set-cookie":
            new = change(v)
            if new is not None and new != v:
                out.append((k, new))
                changed = True
                continue
        out.append((k, v))
    return out if changed else None


def _secure_or_not_httponly(value: bytes) -> bytes | None:
    attrs = [a.strip().lower() for a in value.split(b";")[1:]]
    names = [a.partition(b"=")[0].strip() for a in attrs]
    if b"secure" not in names:
        return value + b"; Secure"
    if b"httponly" in names:
        parts = value.split(b";")
        return b";".join([parts[0]] + [x for x in parts[1:] if x.strip().lower() != b"httponly"])
    return None


def m_cookie_attribute(scope, status, headers, body):
    """Every ``Set-Cookie`` gains ``; Secure`` (or, already secure, loses ``HttpOnly``)."""
    new = _map_set_cookies(headers, _secure_or_not_httponly)
    return (status, new, body) if new is not None else None


def m_vary(scope, status, headers, body):
    """``Vary`` gains ``, Accept``; a 200 HTML answer without one gets ``Vary: Accept-Encoding``."""
    vary = _get(headers, b"vary")
    if vary is not None:
        return status, _set(headers, b"vary", vary + b", Accept"), body
    ctype = (_get(headers, b"content-type") or b"").lower()
    if status == 200 and ctype.startswith(b"text/html"):
        return status, headers + [(b"vary", b"Accept-Encoding")], body
    return None


def m_cache_control(scope, status, headers, body):
    """200 answers get ``Cache-Control: no-store`` (one that had exactly that: ``no-cache``)."""
    if status != 200:
        return None
    cc = _get(headers, b"cache-control")
    new = b"no-cache" if cc is not None and cc.strip().lower() == b"no-store" else b"no-store"
    return status, _set(headers, b"cache-control", new), body


def _ints_to_str(value: Any) -> tuple[Any, bool]:
    if isinstance(value, bool):
        return value, False
    if isinstance(value, int):
        return str(value), True
    if isinstance(value, list):
        pairs = [_ints_to_str(v) for v in value]
        return [v for v, _ in pairs], any(c for _, c in pairs)
    if isinstance(value, dict):
        pairs = {k: _ints_to_str(v) for k, v in value.items()}
        return {k: v for k, (v, _) in pairs.items()}, any(c for _, c in pairs.values())
    return value, False


def _session_ints_to_str(value: bytes) -> bytes | None:
    from .cookies import decode_session, encode_session

    head, val, tail = _cookie_parts(value)
    try:
        text = val.decode("ascii")
    except UnicodeDecodeError:
        return None
    session = decode_session(text, SESSION_SECRET_KEY)
    if session is None:
        return None
    raw, changed = _ints_to_str(session.raw)
    if not changed:
        return None
    new = encode_session(raw, SESSION_SECRET_KEY, timestamp=session.timestamp, signature=session.signature)
    return head + new.encode("ascii") + tail


def m_session_value_type(scope, status, headers, body):
    """A Flask/Quart session cookie's integers become strings (``user_id: 1`` -> ``"1"``),
    re-signed with :data:`SESSION_SECRET_KEY` when known, else with the old signature."""
    new = _map_set_cookies(headers, _session_ints_to_str)
    return (status, new, body) if new is not None else None


def m_json_int_to_str(scope, status, headers, body):
    """A JSON body's first integer becomes a string of the same digits (every other byte kept)."""
    import re

    number = re.compile(rb"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
    if not _is_json(headers) or not body:
        return None
    try:
        json.loads(body)
    except ValueError:
        return None
    i, n, in_str = 0, len(body), False
    while i < n:
        ch = body[i : i + 1]
        if in_str:
            if ch == b"\\":
                i += 2
                continue
            if ch == b'"':
                in_str = False
        elif ch == b'"':
            in_str = True
        elif ch == b"-" or ch.isdigit():
            m = number.match(body, i)
            if m and not m.group(1) and not m.group(2):
                return status, headers, body[:i] + b'"' + m.group(0) + b'"' + body[m.end() :]
            i = m.end() if m else i + 1
            continue
        i += 1
    return None


MUTATIONS: dict[str, tuple[Transform, str]] = {
    "status-200-to-201": (m_status, "a status"),
    "content-type-charset": (m_header, "one header"),
    "json-spacing": (m_json_spacing, "JSON spacing"),
    "json-key-order": (m_json_key_order, "JSON key order"),
    "head-body": (m_head_body, "a HEAD body"),
    "location-absolute": (m_location, "the Location form"),
    "drop-x-request-id": (m_drop_request_id, "a missing after_request header"),
    "415-to-400": (m_415_to_400, "a 415 turned into a 400"),
    "content-disposition": (m_content_disposition, "a changed Content-Disposition"),
    "cookie-attribute": (m_cookie_attribute, "a Set-Cookie attribute (Secure added / HttpOnly dropped)"),
    "vary": (m_vary, "a Vary header (gains Accept / appears)"),
    "cache-control": (m_cache_control, "Cache-Control: no-store on 200 answers"),
    "session-value-type": (m_session_value_type, "a session value's type (int -> str)"),
    "json-int-to-str": (m_json_int_to_str, "a JSON integer turned into a string"),
}

# Mutants that no client can observe: expected to give no wire difference, only a note.
UNOBSERVABLE = {"head-body"}


def wrapper(name: str) -> Callable[[Any], Mutant]:
    transform = MUTATIONS[name][0]

    def wrap(app: Any) -> Mutant:
        if not is_asgi_app(app):
            raise TypeError("mutants wrap an ASGI candidate")
        return Mutant(app, name, transform)

    return wrap


# ---------------------------------------------------------------------------- the self-check


@dataclass
class Check:
    name: str
    what: str
    applied: int  # answers the mutant changed
    new_differences: list[tuple[str, str]] = field(default_factory=list)  # (request key, difference)
    new_notes: int = 0
    notes: int = 0

    @property
    def observable(self) -> bool:
        return self.name not in UNOBSERVABLE

    @property
    def verdict(self) -> str:
        if self.applied == 0:
            return "not applicable (changed nothing)"
        if self.observable:
            return "caught" if self.new_differences else "MISSED"
        if self.new_differences:
            return "WRONG: a wire difference for an unobservable change"
        return "no wire difference; app-level note" if self.notes else "MISSED (no app-level note)"

    @property
    def passed(self) -> bool:
        return self.applied == 0 or self.verdict in ("caught", "no wire difference; app-level note")


def _diff_set(report: PairReport) -> set[tuple[str, str]]:
    return {(r.key, d.key()) for r in report.results for d in r.differences}


def self_check(
    reference: AppSpec,
    candidate: AppSpec,
    scenarios: list[Scenario],
    setup: InstanceSetup,
    names: list[str] | None = None,
    keep: bool = False,
    logs: Path | None = None,
) -> list[Check]:
    """Every mutant in an interpreter of its own, beside the two references and the
    unmutated candidate, all playing the scenarios at once."""
    names = names or list(MUTATIONS)
    workdir = Workdir(keep=keep, prefix="compat-mutants-", logs=logs)
    none = AllowList([])
    stats: dict[str, dict] = {}
    try:
        wanted: dict[str, str | None] = {"candidate": None}
        wanted.update({f"mutant-{name}": name for name in names})
        instances = start_instances(reference, candidate, workdir, setup, wanted)
        runs = play_instances(scenarios, instances, stats=stats)
    finally:
        workdir.close()

    def report(label: str) -> PairReport:
        return compare_runs(
            scenarios,
            runs["reference"],
            runs["reference-2"],
            runs[label],
            mode="mutant",
            reference_label="reference",
            candidate_label=label,
            allow=none,
            secret_key=reference.secret_key,
        )

    baseline = report("candidate")
    base_diffs = _diff_set(baseline)
    base_notes = {r.key for r in baseline.results if r.notes}
    checks = []
    for name in names:
        rep = report(f"mutant-{name}")
        new = sorted(_diff_set(rep) - base_diffs)
        noted = {r.key for r in rep.results if r.notes}
        checks.append(
            Check(
                name=name,
                what=MUTATIONS[name][1],
                applied=stats[f"mutant-{name}"].get("applied", 0),
                new_differences=new,
                new_notes=len(noted - base_notes),
                notes=len(noted),
            )
        )
    return checks


def print_selfcheck(checks: list[Check], stream: TextIO) -> None:
    w = stream.write
    w("\nmutant self-check (each mutant changes one observable thing of the candidate)\n")
    width = max(len(c.name) for c in checks)
    for c in checks:
        example = f"  e.g. {c.new_differences[0][0]}: {c.new_differences[0][1]}" if c.new_differences else ""
        w(
            f"  {c.name.ljust(width)}  {c.verdict:<38} changed {c.applied:>4} answers, "
            f"{len(c.new_differences):>4} new differences{example}\n"
        )
    w("  " + selfcheck_summary(checks) + "\n")


def selfcheck_summary(checks: list[Check]) -> str:
    """One line: how many mutants were caught, missed, and could not apply to this app."""
    bad = [c.name for c in checks if not c.passed]
    na = [c.name for c in checks if c.applied == 0]
    caught = len(checks) - len(bad) - len(na)
    text = f"{caught} of {len(checks)} mutants caught"
    if na:
        text += f", {len(na)} not applicable to this app (changed no answer: {', '.join(na)})"
    if bad:
        text += f"; NOT CAUGHT: {', '.join(bad)}"
    return text
