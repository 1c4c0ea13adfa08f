"""Size edges: the requests that find server and framework limits, tried on every run.

Random generation seldom lands on a limit, so these are always played (tagged ``edge``,
named ``edge-...``, the same names whatever the app):

- a request line of 4,090, 4,094, 4,095 and 4,100 bytes (gunicorn's ``limit_request_line``
  is 4,094: 414 above it, Hypercorn has none) and of 8,200 bytes, on a GET route that
  exists (its path padded with a query string);
- one header line (``name: value``, CRLF not counted) of 8,100, 8,200 and 16,384 bytes
  (gunicorn's ``limit_request_field_size`` is 8,190 with the CRLF; h11, under Hypercorn,
  refuses a request head over 16 KiB) and 120 headers (gunicorn's ``limit_request_fields``
  is 100);
- a body of exactly 16 MiB and of 16 MiB + 1 (Quart's default ``MAX_CONTENT_LENGTH``;
  Flask has none), and 16 MiB + 1 sent chunked (no ``Content-Length`` to refuse early),
  on a route that takes a body: the rule the corpus sends most JSON or raw bodies to (else
  most bodies), with the path, auth and content type it uses there (a multipart content type
  becomes ``application/octet-stream``: a body of one repeated byte is no multipart);
- for every configured body limit (``limits``), a body at the limit and one byte over.

Bodies are ``body_size`` + ``body_fill`` specs: the bytes are made when the request is built.
Every edge runs in both modes: a framework limit shows in process and live, a server limit
only live.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from .corpus import MODES, Scenario, Step
from .hints import Hints, Rules

MIB = 1024 * 1024
HTTP_VERSION = "HTTP/1.1"
REQUEST_LINES = (4090, 4094, 4095, 4100, 8200)
HEADER_LINES = (8100, 8200, 16384)
HEADER_COUNT = 120
QUART_DEFAULT_MAX = 16 * MIB
PAD_HEADER = "X-Compat-Pad"
BODY_FILL = "a"
BODY_METHODS = ("POST", "PUT", "PATCH")
# a path used as is in an edge: printable ASCII (so characters are bytes), no token or
# variable to substitute, no query string or fragment
PLAIN_PATH = re.compile(r"/[!-~]*")
PLACEHOLDERS = {
    "IntegerConverter": "1",
    "FloatConverter": "1.0",
    "UUIDConverter": "00000000-0000-0000-0000-000000000000",
    "PathConverter": "x",
    "UnicodeConverter": "x",
}


@dataclass
class Target:
    """Where an edge goes."""

    rule: str
    method: str
    path: str
    auth: str | None = None
    content_type: str | None = None


def request_line(method: str, path: str) -> str:
    """The request line as sent, without its CRLF."""
    return f"{method} {path} {HTTP_VERSION}"


def header_line(name: str, value: str) -> str:
    """A header line as sent, without its CRLF."""
    return f"{name}: {value}"


def _plain(path: str) -> bool:
    return bool(PLAIN_PATH.fullmatch(path)) and not any(c in path for c in "{}$?#")


def _fill_rule(rule: str, convs: dict[str, str], values: dict[str, list[str]]) -> str:
    path = rule
    for name, conv in convs.items():
        known = [v for v in values.get(name, []) if _plain("/" + v)]
        value = known[0] if known else PLACEHOLDERS.get(conv, "x")
        path = re.sub(r"<(?:[^:<>]+:)?" + re.escape(name) + r">", lambda _m: value, path, count=1)  # noqa: B023 -- called by re.sub here
    return path if _plain(path) else "/"


def _most(counter: Counter) -> str | None:
    if not counter:
        return None
    return sorted(counter.items(), key=lambda kv: (-kv[1], str(kv[0])))[0][0]


def _target(rules: Rules, hints: Hints | None, body: bool) -> Target:
    """The GET route (``body`` false) or the route taking a body (``body`` true) for the edges:
    one the corpus uses (for bodies: the one it sends most bodies to), with a concrete path,
    the auth and the content type the corpus uses there."""
    wanted = BODY_METHODS if body else ("GET",)
    methods: dict[str, set[str]] = {}
    convs: dict[str, dict[str, str]] = {}
    for rule, rule_methods, rule_convs in rules:
        if set(rule_methods) & set(wanted):
            methods.setdefault(rule, set()).update(rule_methods)
            convs[rule] = rule_convs
    if not methods:
        return Target(rule="/", method=wanted[0], path="/")
    uses: dict[str, Counter] = {rule: Counter() for rule in methods}
    raw: Counter = Counter()  # bodies that are not multipart: read as bytes, not parsed as a form first
    paths: dict[str, Counter] = {rule: Counter() for rule in methods}
    auths: dict[str, Counter] = {rule: Counter() for rule in methods}
    ctypes: dict[str, Counter] = {rule: Counter() for rule in methods}
    values: dict[str, dict[str, list[str]]] = {}
    if hints is not None:
        bound = hints.for_rules(rules)
        values = {rule: rh.values for rule, rh in bound.rules.items()}
        for seen, rule in bound.matched:
            if rule not in methods or seen.method not in wanted or seen.method not in methods[rule]:
                continue
            if body and not seen.body:
                continue
            uses[rule][seen.method] += 1
            raw[rule] += seen.body != "form"
            if _plain(seen.path):
                paths[rule][seen.path] += 1
            auths[rule][seen.auth or "none"] += 1
            if seen.content_type:
                ctypes[rule][seen.content_type] += 1
    if body:  # the rule the corpus sends most bodies to, JSON or raw ones first
        rule = sorted(methods, key=lambda r: (-raw[r], -sum(uses[r].values()), len(convs[r]), len(r), r))[0]
    else:  # a simple one the corpus uses: no converter, "/" first
        rule = sorted(methods, key=lambda r: (not uses[r], len(convs[r]), r != "/", len(r), r))[0]
    method = _most(uses[rule]) or next(m for m in wanted if m in methods[rule])
    path = _most(paths[rule]) or _fill_rule(rule, convs[rule], values.get(rule, {}))
    auth = _most(auths[rule])
    ctype = _most(ctypes[rule]) if body else None
    if body and (ctype is None or ctype.lower().startswith("multipart/")):
        ctype = "application/octet-stream"
    return Target(rule=rule, method=method, path=path, auth=None if auth == "none" else auth, content_type=ctype)


def _padded_path(method: str, path: str, length: int) -> str:
    """``path`` with a query string that makes the request line exactly ``length`` bytes."""
    prefix = f"{path}{'&' if '?' in path else '?'}pad="
    pad = length - len(request_line(method, prefix))
    if pad < 0:
        raise ValueError(f"a request line of {length} bytes cannot hold {path!r}")
    return prefix + "a" * pad


def _scenario(name: str, kind: str, target: Target, note: str, **step: object) -> Scenario:
    fields: dict[str, object] = {"method": target.method, "path": target.path, "auth": target.auth}
    fields.update(step)
    request = Step(name="request", **fields)  # type: ignore[arg-type]
    return Scenario(
        name=name,
        steps=[request],
        tags=("edge", kind),
        modes=MODES,
        note=f"{note} ({target.method} {target.rule})",
        source="edges",
    )


def edge_scenarios(rules: Rules, hints: Hints | None, limits: list[int]) -> list[Scenario]:
    """The size edges (see the module docstring) for a route table, what the corpus teaches
    (to pick routes, paths, auth and content types) and the configured body limits."""
    get = _target(rules, hints, body=False)
    if len(request_line(get.method, get.path)) + len("?pad=") > min(REQUEST_LINES):
        get = Target(rule="/", method="GET", path="/", auth=get.auth)
    post = _target(rules, hints, body=True)
    out: list[Scenario] = []
    for length in REQUEST_LINES:
        out.append(
            _scenario(
                f"edge-request-line-{length}",
                "request-line",
                get,
                f"a request line of {length} bytes",
                path=_padded_path(get.method, get.path, length),
            )
        )
    for length in HEADER_LINES:
        value = "a" * (length - len(header_line(PAD_HEADER, "")))
        out.append(
            _scenario(
                f"edge-header-{length}",
                "header",
                get,
                f"a header line of {length} bytes",
                headers=[(PAD_HEADER, value)],
            )
        )
    out.append(
        _scenario(
            f"edge-header-count-{HEADER_COUNT}",
            "header",
            get,
            f"{HEADER_COUNT} more headers",
            headers=[(f"{PAD_HEADER}-{i:03d}", "a") for i in range(HEADER_COUNT)],
        )
    )

    def body(name: str, size: int, note: str, kind: str = "body", chunked: bool = False) -> Scenario:
        return _scenario(
            name,
            kind,
            post,
            note,
            content_type=post.content_type,
            body_spec={"body_size": size, "body_fill": BODY_FILL},
            chunked=chunked,
        )

    out.append(body("edge-body-16mib", QUART_DEFAULT_MAX, "a body of 16 MiB, Quart's default MAX_CONTENT_LENGTH"))
    out.append(body("edge-body-16mib-plus-1", QUART_DEFAULT_MAX + 1, "a body of 16 MiB + 1"))
    out.append(
        body("edge-body-16mib-plus-1-chunked", QUART_DEFAULT_MAX + 1, "a chunked body of 16 MiB + 1", chunked=True)
    )
    for limit in sorted({int(x) for x in limits if int(x) > 0}):
        out.append(body(f"edge-body-limit-{limit}", limit, f"a body at the configured limit {limit}", "limit"))
        out.append(
            body(f"edge-body-limit-{limit}-plus-1", limit + 1, f"a body one byte over the limit {limit}", "limit")
        )
    return out
