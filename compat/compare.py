"""Comparing two replies, and learning noise from two instances of the reference (Diffy).

Three replies take part for every request: ``primary`` (reference instance 1), ``secondary``
(reference instance 2, independent: its own instance folder) and ``candidate``. What differs
between primary and secondary changes by itself (noise): such headers and JSON fields are
compared between primary and candidate by *shape* (``2026-01-13`` and ``2027-02-14`` have the
same shape, ``1.5`` and ``"1.5"`` do not), everything else byte for byte.

What a client cannot see is no difference: header names compare case-insensitively, the
reason phrase does not exist here, transport headers a server adds (``Date``, ``Server``; on
a live socket also the framing: ``Connection``, ``Keep-Alive``, ``Transfer-Encoding``) are
not compared, and a HEAD body is empty as the servers send it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from compat.clients import Reply

# Headers a server adds or rewrites: never compared (listed in the report).
TRANSPORT_HEADERS = ("date", "server")
LIVE_TRANSPORT_HEADERS = ("date", "server", "connection", "keep-alive", "transfer-encoding")


@dataclass
class Difference:
    kind: str  # status | header-missing | header-extra | header-value | body | json | json-format | accumulated | error
    where: str  # header name, JSON path, "status", "body"
    reference: Any
    candidate: Any
    detail: str = ""

    def key(self) -> str:
        return f"{self.kind}:{self.where}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "where": self.where,
            "reference": _jsonable(self.reference),
            "candidate": _jsonable(self.candidate),
            "detail": self.detail,
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value[:2000].decode("utf-8", "replace") + ("..." if len(value) > 2000 else "")
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


# ---------------------------------------------------------------------------- shapes


def _run_shape(m: re.Match) -> str:
    run = m.group(0)
    if run.isdigit():
        return "9"
    if run.isalpha():
        return "a"
    return "x"


def text_shape(text: str) -> str:
    """Runs of digits become ``9``, of letters ``a``, of both ``x``.

    ``Tue, 13 Jan 2026 10:00:00 GMT`` -> ``a, 9 a 9 9:9:9 a``; ``0.731`` -> ``9.9``; a
    hex id -> ``x``; ``first`` -> ``a`` (so an echoed id is not a generated one).
    """
    return re.sub(r"[A-Za-z0-9]+", _run_shape, text)


def json_shape(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return type(value).__name__
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str:" + text_shape(value)
    if isinstance(value, list):
        return ["list", [json_shape(v) for v in value]]
    if isinstance(value, dict):
        return {k: json_shape(v) for k, v in sorted(value.items())}
    return repr(type(value))


# ---------------------------------------------------------------------------- headers


def header_map(reply: Reply, ignore: tuple[str, ...]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in reply.headers:
        lname = name.lower()
        if lname in ignore:
            continue
        out.setdefault(lname, []).append(value)
    return out


# ---------------------------------------------------------------------------- JSON


def is_json_reply(reply: Reply) -> bool:
    ctype = (reply.header("content-type") or "").lower()
    return "json" in ctype


def parse_json(body: bytes) -> tuple[bool, Any]:
    try:
        return True, json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return False, None


def _child(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key)}]"


def json_diff(a: Any, b: Any, path: str = "$") -> list[tuple[str, Any, Any, str]]:
    """Structural differences: (path, a value, b value, what)."""
    if type(a) is not type(b) and not (isinstance(a, (int, float)) and isinstance(b, (int, float)) and type(a) is type(b)):
        return [(path, a, b, f"type {type(a).__name__} != {type(b).__name__}")]
    if isinstance(a, dict):
        out = []
        for k in a:
            if k not in b:
                out.append((_child(path, k), a[k], None, "missing in candidate"))
            else:
                out.extend(json_diff(a[k], b[k], _child(path, k)))
        for k in b:
            if k not in a:
                out.append((_child(path, k), None, b[k], "extra in candidate"))
        return out
    if isinstance(a, list):
        if len(a) != len(b):
            return [(path, a, b, f"list length {len(a)} != {len(b)}")]
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            out.extend(json_diff(x, y, _child(path, i)))
        return out
    if a != b:
        return [(path, a, b, "value")]
    return []


class _Masker:
    """Rewrites JSON text with the values at given paths replaced by ``<noise>``.

    Keeps every other byte (spacing, key order, escapes), so two bodies that differ only at
    noisy paths give equal masked texts, and any formatting difference survives.
    """

    _ws = re.compile(r"[ \t\n\r]*")
    _str = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
    _scalar = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null|NaN|-?Infinity")

    def __init__(self, text: str, paths: set[str]) -> None:
        self.text = text
        self.paths = paths
        self.pos = 0
        self.out: list[str] = []

    def ws(self) -> None:
        m = self._ws.match(self.text, self.pos)
        self.out.append(m.group(0))
        self.pos = m.end()

    def value(self, path: str) -> None:
        start = self.pos
        masked = path in self.paths
        mark = len(self.out)
        ch = self.text[self.pos : self.pos + 1]
        if ch == "{":
            self.pos += 1
            self.out.append("{")
            self.ws()
            if self.text[self.pos : self.pos + 1] == "}":
                self.pos += 1
                self.out.append("}")
            else:
                while True:
                    m = self._str.match(self.text, self.pos)
                    if not m:
                        raise ValueError("key expected")
                    key = json.loads(m.group(0))
                    self.out.append(m.group(0))
                    self.pos = m.end()
                    self.ws()
                    if self.text[self.pos] != ":":
                        raise ValueError(": expected")
                    self.out.append(":")
                    self.pos += 1
                    self.ws()
                    self.value(_child(path, key))
                    self.ws()
                    c = self.text[self.pos]
                    self.pos += 1
                    self.out.append(c)
                    if c == "}":
                        break
                    if c != ",":
                        raise ValueError(", expected")
                    self.ws()
        elif ch == "[":
            self.pos += 1
            self.out.append("[")
            self.ws()
            if self.text[self.pos : self.pos + 1] == "]":
                self.pos += 1
                self.out.append("]")
            else:
                i = 0
                while True:
                    self.value(_child(path, i))
                    i += 1
                    self.ws()
                    c = self.text[self.pos]
                    self.pos += 1
                    self.out.append(c)
                    if c == "]":
                        break
                    if c != ",":
                        raise ValueError(", expected")
                    self.ws()
        elif ch == '"':
            m = self._str.match(self.text, self.pos)
            if not m:
                raise ValueError("bad string")
            self.out.append(m.group(0))
            self.pos = m.end()
        else:
            m = self._scalar.match(self.text, self.pos)
            if not m:
                raise ValueError("bad value")
            self.out.append(m.group(0))
            self.pos = m.end()
        if masked:
            del self.out[mark:]
            self.out.append("<noise>")
        _ = start

    def run(self) -> str:
        self.ws()
        self.value("$")
        self.ws()
        self.out.append(self.text[self.pos :])
        return "".join(self.out)


def mask_json(body: bytes, paths: set[str]) -> bytes:
    if not paths:
        return body
    try:
        return _Masker(body.decode("utf-8"), paths).run().encode("utf-8")
    except (ValueError, IndexError, UnicodeDecodeError):
        return body


def first_difference(a: bytes, b: bytes) -> str:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    if i == n and len(a) == len(b):
        return ""
    lo = max(0, i - 30)
    return (
        f"lengths {len(a)} / {len(b)}, first difference at byte {i}: "
        f"{a[lo:i + 30]!r} / {b[lo:i + 30]!r}"
    )


# ---------------------------------------------------------------------------- noise


@dataclass
class Noise:
    """What differed between the two reference instances for one request."""

    status: bool = False
    headers: set[str] = field(default_factory=set)  # value differs
    header_presence: set[str] = field(default_factory=set)  # present in one only
    json_paths: set[str] = field(default_factory=set)
    body: bool = False  # a non-JSON body differs
    accumulated: set[str] = field(default_factory=set)
    # JSON paths compared elsewhere (a repeated step's field, compared as accumulated)
    covered: set[str] = field(default_factory=set)

    def empty(self) -> bool:
        return not (self.status or self.headers or self.header_presence or self.json_paths
                    or self.body or self.accumulated)

    def merge(self, other: "Noise") -> None:
        self.status |= other.status
        self.headers |= other.headers
        self.header_presence |= other.header_presence
        self.json_paths |= other.json_paths
        self.body |= other.body
        self.accumulated |= other.accumulated

    def items(self) -> list[str]:
        out = []
        if self.status:
            out.append("status")
        out += [f"header:{h}" for h in sorted(self.headers)]
        out += [f"header-presence:{h}" for h in sorted(self.header_presence)]
        out += [f"json:{p}" for p in sorted(self.json_paths)]
        if self.body:
            out.append("body")
        out += [f"accumulated:{a}" for a in sorted(self.accumulated)]
        return out


def learn_noise(primary: Reply, secondary: Reply, ignore: tuple[str, ...],
                acc_p: dict[str, str] | None = None, acc_s: dict[str, str] | None = None) -> Noise:
    noise = Noise()
    if primary.status != secondary.status:
        noise.status = True
    hp, hs = header_map(primary, ignore), header_map(secondary, ignore)
    for name in set(hp) | set(hs):
        if name not in hp or name not in hs:
            noise.header_presence.add(name)
        elif hp[name] != hs[name]:
            noise.headers.add(name)
    if primary.body != secondary.body:
        ok_p, jp = parse_json(primary.body) if is_json_reply(primary) else (False, None)
        ok_s, js = parse_json(secondary.body) if is_json_reply(secondary) else (False, None)
        if ok_p and ok_s:
            for path, _a, _b, _what in json_diff(jp, js):
                noise.json_paths.add(path)
            if not noise.json_paths:  # same values, other bytes: formatting itself varies
                noise.body = True
        else:
            noise.body = True
    for k in set(acc_p or {}) | set(acc_s or {}):
        if (acc_p or {}).get(k) != (acc_s or {}).get(k):
            noise.accumulated.add(k)
    return noise


# ---------------------------------------------------------------------------- comparison


@dataclass
class Outcome:
    differences: list[Difference] = field(default_factory=list)
    noise_hits: list[str] = field(default_factory=list)  # noisy items compared by shape
    notes: list[str] = field(default_factory=list)  # app-level, not on the wire


def _length_follows_masked_body(reference: Reply, candidate: Reply, hr: dict[str, list[str]],
                                hc: dict[str, list[str]], noise: Noise) -> bool:
    """Whether two Content-Lengths differ only because the JSON bodies differ in fields that
    are compared by shape (noise) or as accumulated values (a polled job's output): the
    bodies with those fields masked are equal byte for byte, so the length says nothing more."""
    masked = noise.json_paths | noise.covered
    if not masked or "content-length" not in hr or "content-length" not in hc or hr["content-length"] == hc["content-length"]:
        return False
    if not (is_json_reply(reference) and is_json_reply(candidate)):
        return False
    return mask_json(reference.body, masked) == mask_json(candidate.body, masked)


def compare(reference: Reply, candidate: Reply, noise: Noise, *, ignore: tuple[str, ...],
            live: bool = False, acc_ref: dict[str, str] | None = None,
            acc_cand: dict[str, str] | None = None, method: str = "GET") -> Outcome:
    out = Outcome()
    diffs = out.differences
    # status
    if reference.status != candidate.status:
        if noise.status:
            out.noise_hits.append("status")
        else:
            diffs.append(Difference("status", "status", reference.status, candidate.status))
    # headers
    hr, hc = header_map(reference, ignore), header_map(candidate, ignore)
    if live:
        # framing is the server's: a chunked answer has no Content-Length
        if "content-length" in hr and "content-length" not in hc or "content-length" in hc and "content-length" not in hr:
            te_r = any("chunked" in v.lower() for v in reference.header_all("transfer-encoding"))
            te_c = any("chunked" in v.lower() for v in candidate.header_all("transfer-encoding"))
            if te_r or te_c:
                hr.pop("content-length", None)
                hc.pop("content-length", None)
                out.noise_hits.append("framing:content-length/chunked")
    if _length_follows_masked_body(reference, candidate, hr, hc, noise):
        hr.pop("content-length")
        hc.pop("content-length")
        out.noise_hits.append("header:content-length (follows a noisy or accumulated field)")
    for name in sorted(set(hr) | set(hc)):
        if name not in hc:
            if name in noise.header_presence:
                out.noise_hits.append(f"header-presence:{name}")
            else:
                diffs.append(Difference("header-missing", name, hr[name], None))
        elif name not in hr:
            if name in noise.header_presence:
                out.noise_hits.append(f"header-presence:{name}")
            else:
                diffs.append(Difference("header-extra", name, None, hc[name]))
        elif hr[name] != hc[name]:
            if name in noise.headers or name in noise.header_presence:
                if [text_shape(v) for v in hr[name]] == [text_shape(v) for v in hc[name]]:
                    out.noise_hits.append(f"header:{name}")
                else:
                    diffs.append(Difference("header-value", name, hr[name], hc[name],
                                            "noisy header: shapes differ too"))
            else:
                diffs.append(Difference("header-value", name, hr[name], hc[name]))
        elif name in noise.headers:
            out.noise_hits.append(f"header:{name}")
    # body
    if reference.body != candidate.body or noise.json_paths or noise.covered:
        ok_r, jr = parse_json(reference.body) if is_json_reply(reference) else (False, None)
        ok_c, jc = parse_json(candidate.body) if is_json_reply(candidate) else (False, None)
        if ok_r and ok_c:
            structural = json_diff(jr, jc)
            covered = set()
            for path, a, b, what in structural:
                if _noisy_path(path, noise.covered) is not None:
                    out.noise_hits.append(f"json(accumulated):{path}")
                    continue
                noisy = _noisy_path(path, noise.json_paths)
                if noisy is not None:
                    if json_shape(a) == json_shape(b):
                        out.noise_hits.append(f"json:{noisy}")
                        covered.add(path)
                        continue
                    diffs.append(Difference("json", path, a, b, f"noisy field, shapes differ too ({what})"))
                else:
                    diffs.append(Difference("json", path, a, b, what))
            if not any(d.kind == "json" for d in diffs):
                # same values (up to noise): the bytes must still be the same
                mr = mask_json(reference.body, noise.json_paths | noise.covered)
                mc = mask_json(candidate.body, noise.json_paths | noise.covered)
                if mr != mc:
                    diffs.append(Difference("json-format", "body", reference.body, candidate.body,
                                            _format_detail(mr, mc)))
        elif reference.body != candidate.body:
            if noise.body and text_shape(reference.body.decode("utf-8", "replace")) == text_shape(
                candidate.body.decode("utf-8", "replace")
            ):
                out.noise_hits.append("body")
            else:
                diffs.append(Difference("body", "body", reference.body, candidate.body,
                                        first_difference(reference.body, candidate.body)))
    # accumulated values of repeated steps
    for k in sorted(set(acc_ref or {}) | set(acc_cand or {})):
        a, b = (acc_ref or {}).get(k), (acc_cand or {}).get(k)
        if a != b:
            if k in noise.accumulated:
                out.noise_hits.append(f"accumulated:{k}")
            else:
                diffs.append(Difference("accumulated", k, a, b))
    # app-level: a HEAD body the client dropped (servers drop it too)
    if method.upper() == "HEAD" and candidate.app_head_body and not reference.app_head_body:
        out.notes.append(
            "the candidate app produces a body for HEAD (the reference app none); servers drop "
            "it, so a client sees no difference"
        )
    return out


def _noisy_path(path: str, noisy: set[str]) -> str | None:
    """The noisy path that covers ``path`` (itself or an ancestor)."""
    if path in noisy:
        return path
    for p in noisy:
        if path.startswith(p) and path[len(p) : len(p) + 1] in (".", "["):
            return p
    return None


def _format_detail(a: bytes, b: bytes) -> str:
    what = []
    try:
        ja, jb = json.loads(a.replace(b"<noise>", b"0")), json.loads(b.replace(b"<noise>", b"0"))
        if ja == jb:
            if a.replace(b" ", b"").replace(b"\n", b"") == b.replace(b" ", b"").replace(b"\n", b""):
                what.append("whitespace differs")
            ka, kb = _key_order(a), _key_order(b)
            if ka != kb and sorted(ka) == sorted(kb):
                what.append("key order differs")
            if (b"\\u" in a) != (b"\\u" in b):
                what.append("non-ASCII escaping differs")
    except ValueError:
        pass
    return "; ".join(what + [first_difference(a, b)])


def _key_order(text: bytes) -> list[str]:
    return re.findall(r'"((?:[^"\\]|\\.)*)"\s*:', text.decode("utf-8", "replace"))
