"""What a corpus teaches about an app, for generating requests (:mod:`compat.fuzz`) and for
the size edges (:mod:`compat.edges`): the route table, the field, query, header and cookie
names each route is sent, path values per rule and argument, static files, content types, and
the sequence that logs in."""

from __future__ import annotations

import base64
import json
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, unquote

from .corpus import BOUNDARY, Scenario, Step, substitute_tokens

# what makes a corpus sequence a login
PASSWORD_FIELD = re.compile(r"pass|pwd", re.IGNORECASE)
LOGIN_PATH = re.compile(r"log-?in|sign-?in", re.IGNORECASE)
# corpus headers fuzz does not replay by name: auth, content type and cookies are generated
# apart, and framing headers that lie would hang a live client
UNLEARNT_HEADERS = {
    "authorization",
    "content-type",
    "content-length",
    "transfer-encoding",
    "host",
    "connection",
    "expect",
    "te",
    "trailer",
    "upgrade",
    "cookie",
}
Rules = list[tuple[str, list[str], dict[str, str]]]


def route_rules(app: Any) -> Rules:
    """(rule, methods, {argument: converter name}) of every rule, ``static`` ones included
    (Flask's and Quart's ``/static/<path:filename>``, a blueprint's ``bp.static``): their
    ``filename`` values come from the static files the corpus asks for (:class:`Hints`)."""
    out = []
    for rule in app.url_map.iter_rules():
        convs = {name: type(conv).__name__ for name, conv in rule._converters.items()}
        out.append((rule.rule, sorted(rule.methods or ()), convs))
    out.sort()
    return out


# ---------------------------------------------------------------------------- hints from the corpus


@dataclass
class Seen:
    """One request of the corpus, as far as fuzzing cares."""

    scenario: str
    method: str
    path: str  # tokens substituted, without the query string; may hold ``${var}``
    query: str
    auth: str | None
    content_type: str | None
    body: str  # "", "json", "form" (multipart), "urlencoded", "raw"
    fields: tuple[str, ...] = ()  # field names of the body
    files: tuple[str, ...] = ()  # multipart file field names

    @property
    def concrete(self) -> bool:
        """A path known before the run (no captured ``${var}`` in it)."""
        return "${" not in self.path


@dataclass
class RuleHints:
    """What the corpus sent to one rule."""

    values: dict[str, list[str]] = field(default_factory=dict)  # argument -> values seen
    paths: list[str] = field(default_factory=list)  # concrete paths seen
    methods: list[str] = field(default_factory=list)
    auths: list[str] = field(default_factory=list)  # most used first
    json_fields: list[str] = field(default_factory=list)
    form_fields: list[str] = field(default_factory=list)  # multipart and urlencoded fields
    file_fields: list[str] = field(default_factory=list)
    query_params: list[str] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)


@dataclass
class BoundHints:
    """:class:`Hints` matched against a route table (:meth:`Hints.for_rules`)."""

    rules: dict[str, RuleHints]
    by_argument: dict[str, list[str]]  # argument name -> values seen on any rule
    by_converter: dict[str, list[str]]  # converter class name -> values seen on any rule
    matched: list[tuple[Seen, str]]  # every concrete corpus request with the rule it matched


@dataclass
class Hints:
    """What the corpus teaches fuzzing (:func:`learn_hints`). Lists are sorted (a seed gives
    the same requests whatever the order of the corpus files)."""

    json_fields: list[str] = field(default_factory=list)  # keys of JSON object bodies
    form_fields: list[str] = field(default_factory=list)  # multipart text and urlencoded fields
    file_fields: list[str] = field(default_factory=list)  # multipart file fields
    query_params: list[str] = field(default_factory=list)
    headers: dict[str, list[str]] = field(default_factory=dict)  # name -> values as written
    cookies: list[str] = field(default_factory=list)  # cookie names sent in Cookie headers
    content_types: list[str] = field(default_factory=list)
    static_files: list[str] = field(default_factory=list)  # "style.css" of "/static/style.css"
    seen: list[Seen] = field(default_factory=list)  # every request of the corpus, in order
    login: str | None = None  # name of the corpus sequence that logs in
    _bound: tuple[tuple[str, ...], BoundHints] | None = field(default=None, init=False, repr=False, compare=False)

    def for_rules(self, rules: Rules) -> BoundHints:
        """Corpus requests matched against ``rules`` (Werkzeug's matcher; a regex from the
        rule for a rule whose converter a plain ``Map`` does not know): per-rule field
        names, methods, auth, and the path values seen for every argument."""
        key = tuple(r for r, _m, _c in rules)
        if self._bound is not None and self._bound[0] == key:
            return self._bound[1]
        match = _matcher(rules)
        convs = {r: c for r, _m, c in rules}
        per: dict[str, dict[str, dict[str, None]]] = {r: {} for r in key}
        auths: dict[str, Counter] = {r: Counter() for r in key}
        by_argument: dict[str, dict[str, None]] = {}
        by_converter: dict[str, dict[str, None]] = {}
        matched = []
        for seen in self.seen:
            if not seen.concrete:
                continue
            found = match(seen.path)
            if found is None:
                continue
            rule, args = found
            matched.append((seen, rule))
            p = per[rule]
            for name, value in args.items():
                p.setdefault("value:" + name, {})[value] = None
                by_argument.setdefault(name, {})[value] = None
                by_converter.setdefault(convs[rule].get(name, "UnicodeConverter"), {})[value] = None
            p.setdefault("paths", {})[seen.path] = None
            p.setdefault("methods", {})[seen.method] = None
            auths[rule][seen.auth or "none"] += 1
            kind = {"json": "json_fields", "form": "form_fields", "urlencoded": "form_fields"}.get(seen.body)
            if kind:
                p.setdefault(kind, {}).update(dict.fromkeys(f for f in seen.fields if "${" not in f))
            p.setdefault("file_fields", {}).update(dict.fromkeys(seen.files))
            p.setdefault("query_params", {}).update(dict.fromkeys(_query_names(seen.query)))
            if seen.content_type:
                p.setdefault("content_types", {})[seen.content_type] = None
        out: dict[str, RuleHints] = {}
        for rule in key:
            p = per[rule]
            values = {k[len("value:") :]: sorted(v) for k, v in p.items() if k.startswith("value:")}
            if "filename" in convs[rule] and self.static_files:
                values["filename"] = sorted(set(values.get("filename", [])) | set(self.static_files))
            out[rule] = RuleHints(
                values=values,
                paths=sorted(p.get("paths", {})),
                methods=sorted(p.get("methods", {})),
                auths=[a for a, _n in sorted(auths[rule].items(), key=lambda kv: (-kv[1], kv[0]))],
                **{
                    k: sorted(p.get(k, {}))
                    for k in ("json_fields", "form_fields", "file_fields", "query_params", "content_types")
                },
            )
        bound = BoundHints(
            rules=out,
            by_argument={k: sorted(v) for k, v in by_argument.items()},
            by_converter={k: sorted(v) for k, v in by_converter.items()},
            matched=matched,
        )
        self._bound = (key, bound)
        return bound


def _query_names(query: str) -> list[str]:
    return [k for k, _v in parse_qsl(query, keep_blank_values=True) if k and "${" not in k]


def _rule_regex(rule: str) -> re.Pattern[str]:
    out, pos = [], 0
    part = r"<(?:(?P<conv>[A-Za-z_]\w*)(?:\((?P<args>[^)]*)\))?:)?(?P<name>[A-Za-z_]\w*)>"
    for m in re.finditer(part, rule):
        out.append(re.escape(rule[pos : m.start()]))
        out.append(f"(?P<{m['name']}>.+)" if m["conv"] == "path" else f"(?P<{m['name']}>[^/]+)")
        pos = m.end()
    out.append(re.escape(rule[pos:]))
    return re.compile("".join(out))


def _matcher(rules: Rules):
    """``match(path) -> (rule, {argument: value}) | None`` for concrete (percent-encoded) paths."""
    from werkzeug.exceptions import HTTPException
    from werkzeug.routing import Map, Rule

    url_map = Map(strict_slashes=False, merge_slashes=False)
    fallback = []
    for rule in dict.fromkeys(r for r, _m, _c in rules):
        try:
            url_map.add(Rule(rule, endpoint=rule))
        except Exception:  # a converter only the app knows
            fallback.append((rule, _rule_regex(rule)))
    adapter = url_map.bind("localhost")

    def match(path: str) -> tuple[str, dict[str, str]] | None:
        decoded = unquote(path)
        try:
            rule, args = adapter.match(decoded, method="GET")
            return str(rule), {k: str(v) for k, v in args.items()}
        except HTTPException:  # no match (404, 405), or a redirect (RequestRedirect is one)
            pass
        for rule, rx in fallback:
            m = rx.fullmatch(decoded)
            if m:
                return rule, dict(m.groupdict())
        return None

    return match


def _step_content_type(step: Step) -> str | None:
    ctype = step.content_type
    for name, value in step.headers:
        if name.lower() == "content-type":
            ctype = value
    if ctype is None:
        spec = step.body_spec
        if "json" in spec:
            ctype = "application/json"
        elif "form" in spec or "files" in spec:
            ctype = f"multipart/form-data; boundary={BOUNDARY}"
        elif "urlencoded" in spec:
            ctype = "application/x-www-form-urlencoded"
    return substitute_tokens(ctype) if ctype is not None else None


def _body_fields(step: Step, ctype: str | None) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """(kind, field names, file field names) of a corpus step's body."""
    spec = step.body_spec

    def names(pairs: Any) -> tuple[str, ...]:
        try:
            return tuple(substitute_tokens(str(k)) for k, _v in pairs)
        except (TypeError, ValueError):
            return ()

    if "json" in spec:
        value = spec["json"]
        return "json", tuple(substitute_tokens(str(k)) for k in value) if isinstance(value, dict) else (), ()
    if "form" in spec or "files" in spec:
        files = tuple(
            substitute_tokens(str(f.get("field", "file"))) for f in spec.get("files", []) if isinstance(f, dict)
        )
        return "form", names(spec.get("form", [])), files
    if "urlencoded" in spec:
        return "urlencoded", names(spec["urlencoded"]), ()
    text = None
    try:
        if "body" in spec:
            text = substitute_tokens(str(spec["body"]))
        elif "body_hex" in spec and len(spec["body_hex"]) <= 131072:
            text = bytes.fromhex(spec["body_hex"]).decode("utf-8")
        elif "body_b64" in spec and len(spec["body_b64"]) <= 87384:
            text = base64.b64decode(spec["body_b64"]).decode("utf-8")
    except ValueError:  # not hex, not base64, not UTF-8
        text = None
    if text is not None:
        if "x-www-form-urlencoded" in (ctype or "").lower():
            return "urlencoded", tuple(_query_names(text)), ()
        if text.lstrip().startswith("{"):
            try:
                value = json.loads(text)
            except ValueError:
                value = None
            if isinstance(value, dict):
                return "json", tuple(str(k) for k in value), ()
        return "raw", (), ()
    if any(k in spec for k in ("body_hex", "body_b64", "body_size", "body_gen")):
        return "raw", (), ()
    return "", (), ()


def _seen(scenario: str, step: Step) -> Seen:
    target = substitute_tokens(step.path).split("#", 1)[0]
    path, _sep, query = target.partition("?")
    ctype = _step_content_type(step)
    kind, fields, files = _body_fields(step, ctype)
    return Seen(
        scenario=scenario,
        method=step.method.upper(),
        path=path or "/",
        query=query,
        auth=step.auth,
        content_type=ctype,
        body=kind,
        fields=fields,
        files=files,
    )


def _logs_in(seen: Seen) -> bool:
    if seen.method != "POST":
        return False
    if seen.body in ("form", "urlencoded", "json") and any(PASSWORD_FIELD.search(f) for f in seen.fields):
        return True
    return bool(LOGIN_PATH.search(seen.path))


LOGOUT_PATH = re.compile(r"log-?out|sign-?out", re.IGNORECASE)


def login_prefix(scenario: Scenario) -> Scenario:
    """The login sequence up to its last logging-in step before any logout: played first on
    each instance, it leaves the cookies of a logged-in user (a sequence that registers,
    logs in, works and logs out must not leave a logged-out jar)."""
    last = None
    for i, step in enumerate(scenario.steps):
        if step.action:
            continue
        seen = _seen(scenario.name, step)
        if LOGOUT_PATH.search(seen.path):
            break
        if _logs_in(seen):
            last = i
    return scenario if last is None else replace(scenario, steps=scenario.steps[: last + 1])


def learn_hints(scenarios: list[Scenario]) -> Hints:
    """What the corpus sends: field, query, header and cookie names, content types, static
    files (paths under ``/static/``), every request (matched against a route table later,
    :meth:`Hints.for_rules`), and ``login``: the first sequence one of whose steps POSTs a
    password field (form, urlencoded or JSON) or POSTs to a path with login/signin in it."""
    sets: dict[str, dict[str, None]] = {k: {} for k in ("json", "form", "file", "query", "cookie", "ctype", "static")}
    headers: dict[str, dict[str, None]] = {}
    seen_all: list[Seen] = []
    login = None
    for scenario in scenarios:
        for step in scenario.steps:
            if step.action:
                continue
            seen = _seen(scenario.name, step)
            seen_all.append(seen)
            if login is None and scenario.is_sequence and _logs_in(seen):
                login = scenario.name
            kind = {"json": "json", "form": "form", "urlencoded": "form"}.get(seen.body)
            if kind:
                sets[kind].update(dict.fromkeys(f for f in seen.fields if "${" not in f))
            sets["file"].update(dict.fromkeys(seen.files))
            sets["query"].update(dict.fromkeys(_query_names(seen.query)))
            if seen.content_type:
                sets["ctype"][seen.content_type] = None
            static = unquote(seen.path).removeprefix("/static/") if seen.concrete else ""
            if static and static != unquote(seen.path):
                sets["static"][static] = None
            for name, value in step.headers:
                low = name.lower()
                if low == "cookie":
                    for part in value.split(";"):
                        cookie = part.split("=", 1)[0].strip()
                        if cookie:
                            sets["cookie"][cookie] = None
                elif low not in UNLEARNT_HEADERS and "${" not in name + value and not re.search(r"[\r\n]", value):
                    headers.setdefault(name, {})[value] = None
    return Hints(
        json_fields=sorted(sets["json"]),
        form_fields=sorted(sets["form"]),
        file_fields=sorted(sets["file"]),
        query_params=sorted(sets["query"]),
        headers={k: sorted(v)[:8] for k, v in sorted(headers.items())},
        cookies=sorted(sets["cookie"]),
        content_types=sorted(sets["ctype"]),
        static_files=sorted(sets["static"]),
        seen=seen_all,
        login=login,
    )
