"""Comparing two replies, and learning noise from two instances of the reference (Diffy).

Three replies take part for every request: ``primary`` (reference instance 1), ``secondary``
(reference instance 2, independent: its own instance folder) and ``candidate``. What differs
between primary and secondary changes by itself (noise): such headers, JSON fields, cookie
parts and bodies are compared between primary and candidate by *form* (below), everything
else byte for byte.

What a client cannot see is no difference: header names compare case-insensitively, the
reason phrase does not exist here, transport headers a server adds (``Date``, ``Server``; on
a live socket also the framing: ``Connection``, ``Keep-Alive``, ``Transfer-Encoding``) are
not compared, and a HEAD body is empty as the servers send it.

Noise neither invents nor hides differences: see :mod:`compat.forms`.

- Header noise learnt on one request applies to every request (as header noise, by form).
- ``Set-Cookie`` is compared cookie by cookie (by name, in order), never as text: a cookie
  missing or extra (``cookie-missing`` / ``cookie-extra``), the order of cookies
  (``header-value:set-cookie``), attribute *names* exactly, even where values are noisy (an
  attribute that appeared or vanished, or moved, is a ``cookie-attribute`` difference),
  attribute values exactly unless they differed between the references (``Expires``: then
  by form), and the value (``cookie-value``): exact, or by form when noisy. When both values
  are Flask/Quart session cookies (:func:`compat.cookies.decode_session`), their payloads are
  compared as JSON data (``cookie-session:<name>$.path``; noise learnt by path from the two
  references' payloads, such as ``$.csrf_token``) and only their timestamps and signatures
  are masked; with the app's secret key, a candidate cookie that does not verify where the
  reference's does is a difference (``cookie-session:<name>:signature``). Cookie noise is
  learnt per request (not global as header noise): a cookie attribute noisy on one answer
  says nothing about another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .clients import Reply
from .cookies import SetCookie, decode_session, parse_set_cookie
from .forms import (  # noqa: F401
    MISSING,
    forms_compatible,
    json_compatible,
    json_get,
    json_shape,
    text_form,
    text_shape,
    text_within_noise,
)
from .jsonbody import (  # noqa: F401
    _format_detail,
    first_difference,
    is_json_reply,
    json_diff,
    mask_json,
    parse_json,
)

# Headers a server adds or rewrites: never compared (listed in the report).
TRANSPORT_HEADERS = ("date", "server")
LIVE_TRANSPORT_HEADERS = ("date", "server", "connection", "keep-alive", "transfer-encoding")


@dataclass
class Difference:
    # status | header-missing | header-extra | header-value | body | json | json-format | accumulated
    # | error | cookie-missing | cookie-extra | cookie-attribute | cookie-value | cookie-session
    kind: str
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


# ---------------------------------------------------------------------------- headers


def header_map(reply: Reply, ignore: tuple[str, ...]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in reply.headers:
        lname = name.lower()
        if lname in ignore:
            continue
        out.setdefault(lname, []).append(value)
    return out


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
    # Set-Cookie parts that differ, per cookie ("<cookie> presence", "<cookie> attributes",
    # "<cookie>;<attribute>", "<cookie> value", "<cookie>$.<session path>", "order")
    cookies: set[str] = field(default_factory=set)
    # the secondary's answer: a noisy value may have its form as well as the primary's
    secondary: Reply | None = field(default=None, compare=False, repr=False)

    def empty(self) -> bool:
        return not (
            self.status
            or self.headers
            or self.header_presence
            or self.json_paths
            or self.body
            or self.accumulated
            or self.cookies
        )

    def merge(self, other: Noise) -> None:
        self.status |= other.status
        self.headers |= other.headers
        self.header_presence |= other.header_presence
        self.json_paths |= other.json_paths
        self.body |= other.body
        self.accumulated |= other.accumulated
        self.cookies |= other.cookies
        if other.secondary is not None:
            self.secondary = other.secondary

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
        out += [f"cookie:{c}" for c in sorted(self.cookies)]
        return out


def learn_noise(
    primary: Reply,
    secondary: Reply,
    ignore: tuple[str, ...],
    acc_p: dict[str, str] | None = None,
    acc_s: dict[str, str] | None = None,
    *,
    secret_key: str | None = None,
) -> Noise:
    noise = Noise(secondary=secondary)
    if primary.status != secondary.status:
        noise.status = True
    hp, hs = header_map(primary, ignore), header_map(secondary, ignore)
    # Set-Cookie: learnt cookie by cookie, for this request only
    noise.cookies = learn_cookie_noise(hp.pop("set-cookie", []), hs.pop("set-cookie", []), secret_key)
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


# ---------------------------------------------------------------------------- cookies


def cookie_list(values: list[str]) -> list[tuple[str, SetCookie]]:
    """``Set-Cookie`` values as (ident, cookie): the name, ``name#2`` for its second setting."""
    seen: dict[str, int] = {}
    out = []
    for v in values:
        c = parse_set_cookie(v)
        seen[c.name] = seen.get(c.name, 0) + 1
        out.append((c.name if seen[c.name] == 1 else f"{c.name}#{seen[c.name]}", c))
    return out


def _attr_values(c: SetCookie) -> dict[str, list[str | None]]:
    out: dict[str, list[str | None]] = {}
    for k, v in c.attributes:
        out.setdefault(k, []).append(v)
    return out


def _sessions(a: SetCookie, b: SetCookie, secret_key: str | None):
    sa, sb = decode_session(a.value, secret_key), decode_session(b.value, secret_key)
    return (sa, sb) if sa is not None and sb is not None else (None, None)


def learn_cookie_noise(vp: list[str], vs: list[str], secret_key: str | None = None) -> set[str]:
    """What differs between two references' ``Set-Cookie`` headers, cookie by cookie."""
    out: set[str] = set()
    lp, ls = dict(cookie_list(vp)), dict(cookie_list(vs))
    for ident in set(lp) ^ set(ls):
        out.add(f"{ident} presence")
    common_p = [i for i in lp if i in ls]
    if common_p != [i for i in ls if i in lp]:
        out.add("order")
    for ident in common_p:
        cp, cs = lp[ident], ls[ident]
        if cp.attr_names() != cs.attr_names():
            out.add(f"{ident} attributes")
        ap, as_ = _attr_values(cp), _attr_values(cs)
        for attr in set(ap) & set(as_):
            if ap[attr] != as_[attr]:
                out.add(f"{ident};{attr}")
        if cp.value != cs.value:
            sp, ss = _sessions(cp, cs, secret_key)
            if sp is not None:
                for path, _a, _b, _what in json_diff(sp.raw, ss.raw):
                    out.add(f"{ident}{path}")
            else:
                out.add(f"{ident} value")
    return out


def compare_cookies(vr: list[str], vc: list[str], noise: Noise, out: Outcome, secret_key: str | None = None) -> None:
    """Compare the ``Set-Cookie`` headers of reference and candidate (module docstring)."""
    diffs = out.differences
    lr, lc = dict(cookie_list(vr)), dict(cookie_list(vc))
    sec = noise.secondary
    ls = dict(cookie_list(sec.header_all("set-cookie"))) if sec is not None else {}
    for ident in lr:
        if ident not in lc:
            if f"{ident} presence" in noise.cookies:
                out.noise_hits.append(f"cookie:{ident} presence")
            else:
                diffs.append(Difference("cookie-missing", ident, _raw(vr, lr[ident]), None))
    for ident in lc:
        if ident not in lr:
            if f"{ident} presence" in noise.cookies:
                out.noise_hits.append(f"cookie:{ident} presence")
            else:
                diffs.append(Difference("cookie-extra", ident, None, _raw(vc, lc[ident])))
    common = [i for i in lr if i in lc]
    if common != [i for i in lc if i in lr]:
        if "order" in noise.cookies:
            out.noise_hits.append("cookie:order")
        else:
            diffs.append(
                Difference(
                    "header-value",
                    "set-cookie",
                    vr,
                    vc,
                    f"cookie order differs: {common} / {[i for i in lc if i in lr]}",
                )
            )
    for ident in common:
        _compare_cookie(ident, lr[ident], lc[ident], ls.get(ident), noise, out, secret_key)


def _raw(values: list[str], cookie: SetCookie) -> str:
    for v in values:
        if parse_set_cookie(v) == cookie:
            return v
    return f"{cookie.name}={cookie.value}"


def _compare_cookie(
    ident: str, r: SetCookie, c: SetCookie, s: SetCookie | None, noise: Noise, out: Outcome, secret_key: str | None
) -> None:
    diffs = out.differences
    # attribute names: exactly (noisy only if the candidate's are the secondary's)
    nr, nc = r.attr_names(), c.attr_names()
    if nr != nc:
        if f"{ident} attributes" in noise.cookies and s is not None and s.attr_names() == nc:
            out.noise_hits.append(f"cookie:{ident} attributes")
        else:
            appeared = [a for a in dict.fromkeys(nc) if nc.count(a) > nr.count(a)]
            vanished = [a for a in dict.fromkeys(nr) if nr.count(a) > nc.count(a)]
            for a in appeared:
                diffs.append(Difference("cookie-attribute", f"{ident};{a}", None, c.attr(a), "attribute appeared"))
            for a in vanished:
                diffs.append(Difference("cookie-attribute", f"{ident};{a}", r.attr(a), None, "attribute vanished"))
            if not appeared and not vanished:
                diffs.append(Difference("cookie-attribute", f"{ident};order", nr, nc, "attribute order differs"))
    # attribute values
    ar, ac = _attr_values(r), _attr_values(c)
    as_ = _attr_values(s) if s is not None else {}
    for attr in [a for a in dict.fromkeys(nr) if a in ac]:
        if ar[attr] == ac[attr]:
            continue
        if f"{ident};{attr}" in noise.cookies and (
            _values_compatible(ar[attr], ac[attr]) or (attr in as_ and _values_compatible(as_[attr], ac[attr]))
        ):
            out.noise_hits.append(f"cookie:{ident};{attr}")
            continue
        detail = "noisy attribute: form differs too" if f"{ident};{attr}" in noise.cookies else ""
        diffs.append(Difference("cookie-attribute", f"{ident};{attr}", _one(ar[attr]), _one(ac[attr]), detail))
    # the value
    sr, sc = _sessions(r, c, secret_key)
    if sr is not None:
        _compare_session(ident, r, c, s, sr, sc, noise, out, secret_key)
        return
    if r.value == c.value:
        return
    if f"{ident} value" in noise.cookies and (
        forms_compatible(r.value, c.value) or (s is not None and forms_compatible(s.value, c.value))
    ):
        out.noise_hits.append(f"cookie:{ident} value")
        return
    rs, cs_ = decode_session(r.value, secret_key), decode_session(c.value, secret_key)
    if (rs is None) != (cs_ is None):
        detail = "a session cookie on one side only"
    elif f"{ident} value" in noise.cookies:
        detail = "noisy value: form differs too"
    else:
        detail = ""
    diffs.append(Difference("cookie-value", ident, r.value, c.value, detail))


def _one(values: list[str | None]) -> Any:
    return values[0] if len(values) == 1 else values


def _values_compatible(a: list[str | None], b: list[str | None]) -> bool:
    return len(a) == len(b) and all(
        x == y or (x is not None and y is not None and forms_compatible(x, y)) for x, y in zip(a, b)
    )


def _compare_session(
    ident: str,
    r: SetCookie,
    c: SetCookie,
    s: SetCookie | None,
    sr: Any,
    sc: Any,
    noise: Noise,
    out: Outcome,
    secret_key: str | None,
) -> None:
    diffs = out.differences
    if secret_key is not None and sr.verified and not sc.verified:
        diffs.append(
            Difference(
                "cookie-session",
                f"{ident}:signature",
                sr.signature,
                sc.signature,
                "the candidate's session cookie does not verify with the secret key",
            )
        )
    ss = decode_session(s.value, secret_key) if s is not None else None
    noisy = {n[len(ident) :] for n in noise.cookies if n.startswith(ident + "$")}
    groups: dict[str, list[tuple[str, Any, Any, str]]] = {}
    for path, a, b, what in json_diff(sr.raw, sc.raw):
        p = _noisy_path(path, noisy)
        if p is None:
            diffs.append(Difference("cookie-session", f"{ident}{path}", a, b, what))
        else:
            groups.setdefault(p, []).append((path, a, b, what))
    for p, items in sorted(groups.items()):
        vr, vc = json_get(sr.raw, p), json_get(sc.raw, p)
        vs = json_get(ss.raw, p) if ss is not None else MISSING
        if json_compatible(vr, vc) or (ss is not None and json_compatible(vs, vc)):
            out.noise_hits.append(f"cookie:{ident}{p}")
        else:
            diffs.append(
                Difference(
                    "cookie-session",
                    f"{ident}{p}",
                    _jsonish(vr),
                    _jsonish(vc),
                    f"noisy session field, form differs too ({items[0][3]})",
                )
            )
    if (sr.timestamp, sr.signature) != (sc.timestamp, sc.signature):
        out.noise_hits.append(f"cookie:{ident} timestamp/signature (masked)")


def _jsonish(v: Any) -> Any:
    return None if v is MISSING else v


# ---------------------------------------------------------------------------- comparison


@dataclass
class Outcome:
    differences: list[Difference] = field(default_factory=list)
    noise_hits: list[str] = field(default_factory=list)  # noisy items compared by shape
    notes: list[str] = field(default_factory=list)  # app-level, not on the wire


def _length_follows_masked_body(
    reference: Reply, candidate: Reply, hr: dict[str, list[str]], hc: dict[str, list[str]], noise: Noise
) -> bool:
    """Whether two Content-Lengths differ only because the JSON bodies differ in fields that
    are compared by shape (noise) or as accumulated values (a polled job's output): the
    bodies with those fields masked are equal byte for byte, so the length says nothing more."""
    masked = noise.json_paths | noise.covered
    if (
        not masked
        or "content-length" not in hr
        or "content-length" not in hc
        or hr["content-length"] == hc["content-length"]
    ):
        return False
    if not (is_json_reply(reference) and is_json_reply(candidate)):
        return False
    return mask_json(reference.body, masked) == mask_json(candidate.body, masked)


def compare(
    reference: Reply,
    candidate: Reply,
    noise: Noise,
    *,
    ignore: tuple[str, ...],
    live: bool = False,
    acc_ref: dict[str, str] | None = None,
    acc_cand: dict[str, str] | None = None,
    method: str = "GET",
    secret_key: str | None = None,
) -> Outcome:
    """What a client would see differ between the reference's answer and the candidate's."""
    out = Outcome()
    _compare_status(reference, candidate, noise, out)
    _compare_headers(reference, candidate, noise, out, ignore=ignore, live=live, secret_key=secret_key)
    if reference.body != candidate.body or noise.json_paths or noise.covered:
        _compare_body(reference, candidate, noise, out)
    _compare_accumulated(acc_ref or {}, acc_cand or {}, noise, out)
    # app-level: a HEAD body the client dropped (servers drop it too)
    if method.upper() == "HEAD" and candidate.app_head_body and not reference.app_head_body:
        out.notes.append(
            "the candidate app produces a body for HEAD (the reference app none); servers drop "
            "it, so a client sees no difference"
        )
    return out


def _compare_status(reference: Reply, candidate: Reply, noise: Noise, out: Outcome) -> None:
    if reference.status == candidate.status:
        return
    if noise.status:
        out.noise_hits.append("status")
    else:
        out.differences.append(Difference("status", "status", reference.status, candidate.status))


def _compare_headers(
    reference: Reply,
    candidate: Reply,
    noise: Noise,
    out: Outcome,
    *,
    ignore: tuple[str, ...],
    live: bool,
    secret_key: str | None,
) -> None:
    sec = noise.secondary
    diffs = out.differences
    hr, hc = header_map(reference, ignore), header_map(candidate, ignore)
    hs = header_map(sec, ignore) if sec is not None else {}
    compare_cookies(hr.pop("set-cookie", []), hc.pop("set-cookie", []), noise, out, secret_key)
    if live and ("content-length" in hr) != ("content-length" in hc):
        # framing is the server's: a chunked answer has no Content-Length
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
        if name not in hc or name not in hr:
            if name in noise.header_presence:
                out.noise_hits.append(f"header-presence:{name}")
            elif name not in hc:
                diffs.append(Difference("header-missing", name, hr[name], None))
            else:
                diffs.append(Difference("header-extra", name, None, hc[name]))
        elif hr[name] != hc[name]:
            if name in noise.headers or name in noise.header_presence:
                if _values_compatible(hr[name], hc[name]) or (name in hs and _values_compatible(hs[name], hc[name])):
                    out.noise_hits.append(f"header:{name}")
                else:
                    diffs.append(Difference("header-value", name, hr[name], hc[name], "noisy header: forms differ too"))
            else:
                diffs.append(Difference("header-value", name, hr[name], hc[name]))
        elif name in noise.headers:
            out.noise_hits.append(f"header:{name}")


def _compare_body(reference: Reply, candidate: Reply, noise: Noise, out: Outcome) -> None:
    ok_r, jr = parse_json(reference.body) if is_json_reply(reference) else (False, None)
    ok_c, jc = parse_json(candidate.body) if is_json_reply(candidate) else (False, None)
    if ok_r and ok_c:
        _compare_json(reference, candidate, jr, jc, noise, out)
    elif reference.body != candidate.body:
        sec = noise.secondary
        if (
            noise.body
            and sec is not None
            and text_within_noise(*(r.body.decode("utf-8", "replace") for r in (reference, sec, candidate)))
        ):
            out.noise_hits.append("body")
        else:
            out.differences.append(
                Difference(
                    "body", "body", reference.body, candidate.body, first_difference(reference.body, candidate.body)
                )
            )


def _compare_json(reference: Reply, candidate: Reply, jr: Any, jc: Any, noise: Noise, out: Outcome) -> None:
    """By path, noisy paths by form; then, values alike, the bytes (noisy values masked)."""
    sec = noise.secondary
    diffs = out.differences
    groups: dict[str, list[str]] = {}
    for path, a, b, what in json_diff(jr, jc):
        if _noisy_path(path, noise.covered) is not None:
            out.noise_hits.append(f"json(accumulated):{path}")
            continue
        noisy = _noisy_path(path, noise.json_paths)
        if noisy is not None:
            groups.setdefault(noisy, []).append(what)
        else:
            diffs.append(Difference("json", path, a, b, what))
    if groups:
        ok_s, js = parse_json(sec.body) if sec is not None and is_json_reply(sec) else (False, None)
        for noisy, whats in sorted(groups.items()):
            vr, vc = json_get(jr, noisy), json_get(jc, noisy)
            if json_compatible(vr, vc) or (ok_s and json_compatible(json_get(js, noisy), vc)):
                out.noise_hits.append(f"json:{noisy}")
            else:
                diffs.append(
                    Difference("json", noisy, _jsonish(vr), _jsonish(vc), f"noisy field, form differs too ({whats[0]})")
                )
    if not any(d.kind == "json" for d in diffs):
        mr = mask_json(reference.body, noise.json_paths | noise.covered)
        mc = mask_json(candidate.body, noise.json_paths | noise.covered)
        if mr != mc:
            diffs.append(Difference("json-format", "body", reference.body, candidate.body, _format_detail(mr, mc)))


def _compare_accumulated(acc_ref: dict[str, str], acc_cand: dict[str, str], noise: Noise, out: Outcome) -> None:
    """The values a repeated step gathered over its tries (a polled job's output)."""
    for k in sorted(set(acc_ref) | set(acc_cand)):
        a, b = acc_ref.get(k), acc_cand.get(k)
        if a != b:
            if k in noise.accumulated:
                out.noise_hits.append(f"accumulated:{k}")
            else:
                out.differences.append(Difference("accumulated", k, a, b))


def _noisy_path(path: str, noisy: set[str]) -> str | None:
    """The noisy path that covers ``path`` (itself or an ancestor)."""
    if path in noisy:
        return path
    for p in noisy:
        if path.startswith(p) and path[len(p) : len(p) + 1] in (".", "["):
            return p
    return None
