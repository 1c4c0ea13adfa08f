"""Fuzz mode: hypothesis generates requests from the reference app's route table and the corpus.

The rules of the reference's ``url_map`` (Werkzeug's, in Flask and Quart alike, the
``static`` routes included) give the paths: every ``<converter>`` is filled with generated
text (percent-encoded, unicode, dots, slashes for ``path``) or, often, with a value the
corpus used there (a static file the corpus asks for, a user name, an id), and sometimes the
path is bent (trailing slash, double slash, other case, unknown suffix). Methods come from
the rule and beyond; headers (auth variants, content types, ``X-Request-ID``, conditional
and ``Range`` headers, the headers and cookie names the corpus sends) and bodies (JSON of
any shape, bad JSON, bytes, text, forms, multipart, chunked, now and then a body of up to a
few hundred KB) are generated too; the field names in JSON, form and urlencoded bodies and
the query parameter names are often those the corpus sends to that rule.

What the corpus teaches is a :class:`Hints` (:func:`learn_hints`): field, query, header and
cookie names, path values per rule and argument, static files, content types, and the
sequence that logs in. About half of the generated requests are marked ``session`` when
there is one: the fuzz run plays the login sequence first on each instance and sends them
with its cookies. The size edges (request line, header, body at each limit) are not left to
chance: :mod:`compat.edges` always tries them.

Generated requests become scenarios (``fuzz-00042-POST-api.exec.uuid``) and are played like
the corpus: on the primary reference and the candidate, then on the secondary reference for
noise, all in process, and compared the same way. Commands sent to ``exec`` never match an
allow-list entry (``x-`` prefix), so fuzzing starts no job. The run is reproducible from its
seed (``--fuzz-seed``).
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import string
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hyp_seed
from hypothesis import strategies as st

from .allow import AllowList
from .apps import AppSpec, InstanceSetup, Workdir
from .corpus import AUTH_HEADERS, BOUNDARY, Scenario, Step, build_request, multipart
from .hints import (  # noqa: F401 (part of fuzz's API)
    BoundHints,
    Hints,
    RuleHints,
    Rules,
    learn_hints,
    login_prefix,
    route_rules,
)
from .results import PairReport, compare_runs

METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
CONTENT_TYPES = [
    None,
    "application/json",
    "application/json; charset=utf-8",
    "text/plain",
    "application/octet-stream",
    "application/x-www-form-urlencoded",
    f"multipart/form-data; boundary={BOUNDARY}",
    "multipart/form-data",
    "application/vnd.api+json",
    "text/json",
    "nonsense",
    "",
]
SEGMENT_ALPHABET = string.ascii_letters + string.digits + "-_.~ %+@:;,'\"!$&()*=<>[]{}|\\^`" + "é✓文\u00a0"
QUERY_NAMES = ["id", "name", "list", "x", "token", "é"]
FORM_NAMES = ["id", "name", "list", "file"]
# header values and cookie values: no CR, LF or non-Latin-1 (a server refuses them before the app)
HEADER_ALPHABET = string.ascii_letters + string.digits + " -_.:/=;,\"'*()@"
# big bodies: up to a few hundred KB, sizes around common buffer and limit sizes among them
BIG_BODY_MAX = 400_000
BIG_SIZES = [4095, 4096, 4097, 65535, 65536, 65537, 131072, 262144, 262145, 300_000, BIG_BODY_MAX]
BIG_FILLS = ["a", " ", "0", "é", "{", "\x00", "ab\r\n"]


@functools.cache
def _segment(converter: str) -> st.SearchStrategy[str]:
    if converter in ("IntegerConverter",):
        return st.integers(min_value=-5, max_value=10**6).map(str)
    if converter in ("FloatConverter",):
        return st.floats(allow_nan=False, allow_infinity=False).map(repr)
    if converter in ("UUIDConverter",):
        return st.uuids().map(str)
    alphabet = SEGMENT_ALPHABET + ("/" if converter == "PathConverter" else "")
    return st.one_of(
        st.text(alphabet=alphabet, min_size=1, max_size=70),
        st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=1, max_size=70),
        st.sampled_from(["097aa543", "chad", "exec", "poll", "..", ".", "a.b", "0123456789abcdef-x.txt", "x" * 65]),
    )


@functools.cache
def _json_values() -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**20), max_value=10**20),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=30),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=10), inner, max_size=5)),
        max_leaves=15,
    )


def _safe_cmd(value: Any) -> Any:
    """No generated body may start a job: a ``cmd`` never names an allowed program."""
    if isinstance(value, dict) and isinstance(value.get("cmd"), str):
        value = dict(value)
        value["cmd"] = "x-" + value["cmd"]
    return value


def _learnt(*lists: list[str] | None) -> list[str]:
    """The names of several lists, each once, in order."""
    return list(dict.fromkeys(x for names in lists if names for x in names))


def _pick(learnt: list[Any], default: list[Any], weight: int = 2) -> st.SearchStrategy[Any]:
    """A learnt value ``weight`` times out of ``weight + 1`` (when there is one), else a default."""
    return _pick_cached(tuple(learnt), tuple(default), weight)


@functools.lru_cache(maxsize=4096)
def _pick_cached(learnt: tuple[Any, ...], default: tuple[Any, ...], weight: int) -> st.SearchStrategy[Any]:
    # strategies are immutable: made once, not validated again on every draw
    if not learnt:
        return st.sampled_from(default)
    if not default:
        return st.sampled_from(learnt)
    return st.one_of(*([st.sampled_from(learnt)] * weight), st.sampled_from(default))


def _value_pools(
    hints: Hints | None, bound: BoundHints | None, rh: RuleHints | None, name: str, conv: str
) -> list[list[str]]:
    """Learnt values for one argument, the most specific first: the rule's own, the static
    files for a ``filename``, the argument's name on any rule, the converter's."""
    pools = []
    if rh is not None and rh.values.get(name):
        pools.append(rh.values[name])
    if hints is not None and name == "filename" and hints.static_files:
        pools.append(hints.static_files)
    if bound is not None:
        for pool in (bound.by_argument.get(name), bound.by_converter.get(conv)):
            if pool:
                pools.append(pool)
    return pools


def _bend_value(draw: st.DrawFn, value: str) -> str:
    how = draw(st.sampled_from(["same"] * 6 + ["upper", "suffix", "dot", "dotdot", "trail"]))
    if how == "upper":
        return value.upper()
    if how == "suffix":
        return value + "x"
    if how == "dot":
        return "./" + value
    if how == "dotdot":
        return "../" + value
    if how == "trail":
        return value + "/"
    return value


def _fill_bytes(fill: str, size: int) -> bytes:
    """``size`` bytes of ``fill`` repeated, as the corpus's ``body_size`` + ``body_fill`` makes them."""
    unit = fill.encode("utf-8") or b"a"
    return (unit * (size // len(unit) + 1))[:size]


def requests(rules: Rules, hints: Hints | None = None) -> st.SearchStrategy[dict[str, Any]]:
    """Generated request dicts for ``rules``; with ``hints`` (what the corpus sends) about as
    often learnt values (path values, static files, field, query, header and cookie names,
    auth and content types used on the rule) as random ones."""
    bound = hints.for_rules(rules) if hints is not None else None
    return _requests(rules, hints, bound)


@st.composite
def _requests(draw: st.DrawFn, rules: Rules, hints: Hints | None, bound: BoundHints | None) -> dict[str, Any]:
    rule, methods, convs = draw(st.sampled_from(rules))
    rh = bound.rules.get(rule) if bound is not None else None
    path = rule
    for name, conv in convs.items():
        pools = _value_pools(hints, bound, rh, name, conv)
        if pools and draw(st.integers(min_value=0, max_value=9)) < 6:
            pool = draw(st.sampled_from(pools[:2]))
            value = _bend_value(draw, draw(st.sampled_from(pool)))
        else:
            value = draw(_segment(conv))
        safe = "/" if conv == "PathConverter" else ""
        encoded = (
            quote(value, safe=safe)
            if draw(st.booleans())
            else value.replace("/", "%2F").replace("?", "%3F").replace("#", "%23")
        )
        path = re.sub(r"<(?:[^:<>]+:)?" + re.escape(name) + r">", lambda _m: encoded, path, count=1)  # noqa: B023 -- called by re.sub here
    bend = draw(st.sampled_from(["none"] * 6 + ["slash", "unslash", "double", "upper", "suffix"]))
    if bend == "slash" and not path.endswith("/"):
        path += "/"
    elif bend == "unslash" and path.endswith("/") and len(path) > 1:
        path = path[:-1]
    elif bend == "double":
        path = "/" + path
    elif bend == "upper":
        path = path.upper()
    elif bend == "suffix":
        path = path.rstrip("/") + "/" + draw(st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=8))
    if draw(st.booleans()):
        qnames = _learnt(rh.query_params if rh else None, hints.query_params if hints else None)
        pairs = draw(
            st.lists(st.tuples(_pick(qnames, QUERY_NAMES), st.text(alphabet=SEGMENT_ALPHABET, max_size=12)), max_size=4)
        )
        if pairs:
            path += "?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in pairs)
    method = draw(st.sampled_from(methods + METHODS + (rh.methods if rh else [])))
    auth = draw(_pick([a for a in (rh.auths if rh else []) if a in AUTH_HEADERS], list(AUTH_HEADERS), weight=1))
    headers: list[tuple[str, str]] = []
    ctype = draw(
        _pick(
            _learnt(rh.content_types if rh else None, hints.content_types if hints else None), CONTENT_TYPES, weight=1
        )
    )
    jnames = _learnt(rh.json_fields if rh else None, hints.json_fields if hints else None)
    fnames = _learnt(rh.form_fields if rh else None, hints.form_fields if hints else None)
    file_fields = _learnt(rh.file_fields if rh else None, hints.file_fields if hints else None)
    kind = draw(
        st.sampled_from(["none", "none", "json", "json", "bad-json", "bytes", "text", "form", "urlencoded", "cmd"])
    )
    # about one request in 20 carries a big body: a draw of its own, away from the ends of the
    # range (Hypothesis favours a range's bounds and a list's first and last items)
    if draw(st.integers(min_value=0, max_value=19)) == 9:
        kind = "big"
    body: bytes | None = None
    body_spec: dict[str, Any] | None = None  # a compact spec of a big body (see to_scenarios)
    if kind == "json":
        if jnames and draw(st.integers(min_value=0, max_value=2)) > 0:
            keys = st.one_of(st.sampled_from(jnames), st.sampled_from(jnames), st.text(max_size=10))
            value = draw(st.dictionaries(keys, _json_values(), min_size=1, max_size=6))
        else:
            value = draw(_json_values())
        body = json.dumps(_safe_cmd(value)).encode()
    elif kind == "bad-json":
        body = draw(st.sampled_from([b"{", b"[1,", b"{'a': 1}", b"NaN", b"\xff\xfe", b'{"a": "\\ud800"}', b"[" * 50]))
    elif kind == "bytes":
        body = draw(st.binary(max_size=2000))
    elif kind == "text":
        body = draw(st.text(max_size=200)).encode("utf-8", "surrogatepass")
    elif kind == "form":
        fields = draw(st.lists(st.tuples(_pick(fnames, FORM_NAMES), st.text(max_size=20)), max_size=5))
        files = []
        if draw(st.booleans()):
            files.append(
                {
                    "field": draw(_pick(file_fields, ["file"])),
                    "filename": draw(st.text(alphabet=SEGMENT_ALPHABET + "/", max_size=30)),
                    "content": draw(st.text(max_size=200)),
                    "content_type": draw(st.sampled_from(["text/plain", "application/octet-stream", "image/png", ""])),
                }
            )
        body = multipart(fields, files)
        if ctype is None or draw(st.booleans()):
            ctype = f"multipart/form-data; boundary={BOUNDARY}"
    elif kind == "urlencoded":
        body = "&".join(
            f"{quote(k)}={quote(v)}"
            for k, v in draw(
                st.lists(st.tuples(_pick(fnames, ["id", "name", "list"]), st.text(max_size=20)), max_size=4)
            )
        ).encode()
    elif kind == "cmd":
        body = json.dumps({"cmd": "x-" + draw(st.text(max_size=40))}).encode()
        if ctype is None:
            ctype = "application/json"
    elif kind == "big":
        size = draw(st.one_of(st.integers(min_value=1, max_value=BIG_BODY_MAX), st.sampled_from(BIG_SIZES)))
        shape = draw(st.sampled_from(["fill", "fill", "json", "urlencoded", "multipart-file", "multipart-field"]))
        if shape == "fill":
            fill = draw(st.sampled_from(BIG_FILLS))
            body, body_spec = _fill_bytes(fill, size), {"body_size": size, "body_fill": fill}
        else:
            text = draw(st.sampled_from(["a", "0", " "])) * size
            if shape == "json":
                body = json.dumps(_safe_cmd({draw(_pick(jnames, ["data", "a"])): text})).encode()
                ctype = "application/json"
            elif shape == "urlencoded":
                body = f"{quote(draw(_pick(fnames, ['id', 'name'])))}={quote(text)}".encode()
                ctype = "application/x-www-form-urlencoded"
            elif shape == "multipart-file":
                body = multipart(
                    [],
                    [
                        {
                            "field": draw(_pick(file_fields, ["file"])),
                            "filename": "big.bin",
                            "size": size,
                            "fill": text[:1],
                            "content_type": "application/octet-stream",
                        }
                    ],
                )
                ctype = f"multipart/form-data; boundary={BOUNDARY}"
            else:
                body = multipart([(draw(_pick(fnames, FORM_NAMES)), text)], [])
                ctype = f"multipart/form-data; boundary={BOUNDARY}"
    if ctype is not None:
        headers.append(("Content-Type", ctype))
    extra = draw(
        st.lists(
            st.sampled_from(
                [
                    ("X-Request-ID", "fuzz-req-1"),
                    ("X-Request-ID", "bad id"),
                    ("If-None-Match", "*"),
                    ("If-None-Match", '"abc"'),
                    ("If-Modified-Since", "Fri, 01 Jan 2100 00:00:00 GMT"),
                    ("Range", "bytes=0-3"),
                    ("Range", "bytes=-1"),
                    ("Range", "bytes=9-1"),
                    ("Accept", "text/html"),
                    ("Accept-Encoding", "gzip"),
                    ("X-Forwarded-Proto", "https"),
                ]
            ),
            max_size=3,
            unique=True,
        )
    )
    headers.extend(extra)
    if hints is not None and hints.headers and draw(st.integers(min_value=0, max_value=3)) == 0:
        hname = draw(st.sampled_from(sorted(hints.headers)))
        headers.append(
            (
                hname,
                draw(st.one_of(st.sampled_from(hints.headers[hname]), st.text(alphabet=HEADER_ALPHABET, max_size=30))),
            )
        )
    if hints is not None and hints.cookies and draw(st.integers(min_value=0, max_value=3)) == 0:
        cookie_value = st.text(alphabet=HEADER_ALPHABET.replace(";", ""), max_size=20)
        cookies = draw(st.lists(st.tuples(st.sampled_from(hints.cookies), cookie_value), min_size=1, max_size=3))
        headers.append(("Cookie", "; ".join(f"{k}={v}" for k, v in cookies)))
    chunked = body is not None and draw(st.integers(min_value=0, max_value=9)) == 0
    # with the cookies of the corpus's login sequence (played first)
    session = draw(st.booleans()) and hints is not None and hints.login is not None
    req = {
        "rule": rule,
        "method": method,
        "path": path,
        "auth": auth,
        "headers": headers,
        "body": body,
        "chunked": chunked,
        "session": session,
    }
    if body_spec is not None:
        req["body_spec"] = body_spec
    return req


@contextlib.contextmanager
def _seed_alone() -> Iterator[None]:
    """Hypothesis (6.131 on) mixes into its draws the constants it finds in every local module
    loaded so far, so one seed gave other requests after another import (the suite's own
    modules, a test file): the draws here come from the seed alone."""
    try:
        from hypothesis.internal.conjecture import providers
        from hypothesis.internal.constants_ast import Constants
    except ImportError:  # an older Hypothesis: no local constants
        yield
        return
    saved = getattr(providers, "_get_local_constants", None)
    cache = getattr(getattr(providers, "CONSTANTS_CACHE", None), "cache", None)
    if saved is None:
        yield
        return
    empty = Constants()
    providers._get_local_constants = lambda: empty
    if cache is not None:
        cache.clear()
    try:
        yield
    finally:
        providers._get_local_constants = saved
        if cache is not None:
            cache.clear()


def generate(rules: Rules, n: int, seed: int, hints: Hints | None = None) -> list[dict[str, Any]]:
    """``n`` request dicts (``rule``, ``method``, ``path``, ``auth``, ``headers``, ``body``,
    ``chunked``, ``session``; ``body_spec`` for a big body of one repeated fill), the same
    for the same rules, seed and hints, whatever else the process imported."""
    out: list[dict[str, Any]] = []

    @hyp_seed(seed)
    @settings(
        max_examples=n, phases=[Phase.generate], database=None, deadline=None, suppress_health_check=list(HealthCheck)
    )
    @given(requests(rules, hints))
    def collect(req: dict[str, Any]) -> None:
        out.append(req)

    with _seed_alone():
        collect()
    return out[:n]


def _name(i: int, req: dict[str, Any]) -> str:
    rule = re.sub(r"[^A-Za-z0-9]+", ".", req["rule"]).strip(".") or "root"
    return f"fuzz-{i:05d}-{req['method']}-{rule}"


def _body_spec(req: dict[str, Any]) -> dict[str, Any]:
    """The body as a corpus spec: hex for a small one; a big one as ``body_size`` +
    ``body_fill`` or as text when that builds the very same bytes (half or less of hex)."""
    body = req["body"]
    if body is None:
        return {}
    if len(body) > 4096:
        candidates = [req["body_spec"]] if req.get("body_spec") else []
        try:
            candidates.append({"body": body.decode("utf-8")})
        except UnicodeDecodeError:
            pass
        for spec in candidates:
            if build_request(Step(name="body", body_spec=spec)).body == body:
                return dict(spec)
    return {"body_hex": body.hex()}


def to_scenarios(reqs: list[dict[str, Any]]) -> list[Scenario]:
    """Scenarios ``fuzz-00042-POST-api.exec.uuid`` tagged ``fuzz``, the rule, and ``session``
    for a request to send with the login sequence's cookies."""
    scenarios = []
    for i, req in enumerate(reqs, 1):
        body = req["body"]
        step = Step(
            name="request",
            method=req["method"],
            path=req["path"],
            auth=req["auth"],
            headers=list(req["headers"]),
            body_spec=_body_spec(req),
            chunked=req["chunked"],
            chunk_size=97 if body is None or len(body) < 65536 else 8192,
        )
        tags = ("fuzz", req["rule"]) + (("session",) if req.get("session") else ())
        scenarios.append(Scenario(name=_name(i, req), steps=[step], tags=tags, source="fuzz"))
    return scenarios


def run_fuzz(
    reference: AppSpec,
    candidate: AppSpec,
    setup: InstanceSetup,
    allow: AllowList,
    *,
    n: int = 2000,
    seed: int = 0,
    keep: bool = False,
    logs: Path | None = None,
    corpus: list[Scenario] | None = None,
    limits: list[int] = (),
) -> PairReport:
    """``n`` requests generated from the reference's routes and what the corpus shows (field
    names, path values, static files, a login sequence whose cookies about half of them
    carry), and the size edges; played on two references and the candidate."""
    from .edges import edge_scenarios
    from .inprocess import play_instances, start_instances

    workdir = Workdir(keep=keep, prefix="compat-fuzz-", logs=logs)
    try:
        instances = start_instances(reference, candidate, workdir, setup)
        try:
            rules = [tuple(r) for r in instances[0].client.routes()]
            cand_rules = {r for r, _m, _c in instances[2].client.routes()}
        except BaseException:
            for inst in instances:
                inst.close()
            raise
        ref_rules = {r for r, _m, _c in rules}
        # a rule only the reference has is a difference of its own (its requests show it);
        # a rule only the candidate has (the port-only routes) is not compared
        missing = sorted(ref_rules - cand_rules)
        only_candidate = sorted(cand_rules - ref_rules)
        hints = learn_hints(corpus or [])
        scenarios = to_scenarios(generate(rules, n, seed, hints))
        edges = edge_scenarios(rules, hints, list(limits))
        login = [login_prefix(s) for s in (corpus or []) if hints.login and s.name == hints.login]
        first = [replace(s, tags=tuple(s.tags) + ("login",)) for s in login]
        played = first + scenarios + edges
        runs = play_instances(played, instances)
        report = compare_runs(
            played,
            runs["reference"],
            runs["reference-2"],
            runs["candidate"],
            mode="fuzz",
            reference_label=str(reference),
            candidate_label=str(candidate),
            allow=allow,
            secret_key=reference.secret_key,
        )
        report.extra.update(
            {
                "seed": seed,
                "requests": len(scenarios),
                "edges": len(edges),
                "login": hints.login,
                "login_steps": sum(1 for s in first for st in s.steps if not st.action),
                "rules": [r for r, _m, _c in rules],
                "rules_missing_in_candidate": missing,
                "rules_only_in_candidate_not_compared": only_candidate,
            }
        )
        return report
    finally:
        workdir.close()
