"""Fuzz mode: hypothesis generates requests from the reference app's route table.

The rules of the reference's ``url_map`` (Werkzeug's, in Flask and Quart alike) give the
paths: every ``<converter>`` is filled with generated text (percent-encoded, unicode, dots,
slashes for ``path``), and sometimes the path is bent (trailing slash, double slash, other
case, unknown suffix). Methods come from the rule and beyond; headers (auth variants,
content types, ``X-Request-ID``, conditional and ``Range`` headers) and bodies (JSON of any
shape, bad JSON, bytes, text, forms, multipart, chunked) are generated too.

Generated requests become scenarios (``fuzz-00042-POST-api.exec.uuid``) and are played like
the corpus: on the primary reference and the candidate, then on the secondary reference for
noise, all in process, and compared the same way. Commands sent to ``exec`` never match an
allow-list entry (``x-`` prefix), so fuzzing starts no job. The run is reproducible from its
seed (``--fuzz-seed``).
"""

from __future__ import annotations

import json
import re
import string
from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, Phase, given, seed as hyp_seed, settings
from hypothesis import strategies as st

from compat.apps import AppSpec, InstanceSetup, Workdir, create_app
from compat.corpus import AUTH_HEADERS, BOUNDARY, Scenario, Step, multipart
from compat.runner import AllowList, PairReport, Target, compare_runs, play_all

METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
CONTENT_TYPES = [
    None, "application/json", "application/json; charset=utf-8", "text/plain", "application/octet-stream",
    "application/x-www-form-urlencoded", f"multipart/form-data; boundary={BOUNDARY}", "multipart/form-data",
    "application/vnd.api+json", "text/json", "nonsense", "",
]
SEGMENT_ALPHABET = string.ascii_letters + string.digits + "-_.~ %+@:;,'\"!$&()*=<>[]{}|\\^`" + "é✓文\u00a0"


def route_rules(app: Any) -> list[tuple[str, list[str], dict[str, str]]]:
    """(rule, methods, {argument: converter name}) of every rule but ``static``."""
    out = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.endswith(".static"):
            continue
        convs = {name: type(conv).__name__ for name, conv in rule._converters.items()}
        out.append((rule.rule, sorted(rule.methods or ()), convs))
    out.sort()
    return out


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


def _json_values() -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(min_value=-(10**20), max_value=10**20),
        st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30),
    )
    return st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=10), inner, max_size=5)), max_leaves=15)


def _safe_cmd(value: Any) -> Any:
    """No generated body may start a job: a ``cmd`` never names an allowed program."""
    if isinstance(value, dict) and isinstance(value.get("cmd"), str):
        value = dict(value)
        value["cmd"] = "x-" + value["cmd"]
    return value


@st.composite
def requests(draw: st.DrawFn, rules: list[tuple[str, list[str], dict[str, str]]]) -> dict[str, Any]:
    rule, methods, convs = draw(st.sampled_from(rules))
    path = rule
    for name, conv in convs.items():
        value = draw(_segment(conv))
        safe = "/" if conv == "PathConverter" else ""
        encoded = quote(value, safe=safe) if draw(st.booleans()) else value.replace("/", "%2F").replace("?", "%3F").replace("#", "%23")
        path = re.sub(r"<(?:[^:<>]+:)?" + re.escape(name) + r">", lambda _m: encoded, path, count=1)
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
        pairs = draw(st.lists(st.tuples(st.sampled_from(["id", "name", "list", "x", "token", "é"]),
                                        st.text(alphabet=SEGMENT_ALPHABET, max_size=12)), max_size=4))
        if pairs:
            path += "?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in pairs)
    method = draw(st.sampled_from(methods + METHODS))
    auth = draw(st.sampled_from(list(AUTH_HEADERS)))
    headers: list[tuple[str, str]] = []
    ctype = draw(st.sampled_from(CONTENT_TYPES))
    kind = draw(st.sampled_from(["none", "none", "json", "json", "bad-json", "bytes", "text", "form", "urlencoded", "cmd"]))
    body: bytes | None = None
    if kind == "json":
        body = json.dumps(_safe_cmd(draw(_json_values()))).encode()
    elif kind == "bad-json":
        body = draw(st.sampled_from([b"{", b"[1,", b"{'a': 1}", b"NaN", b"\xff\xfe", b"{\"a\": \"\\ud800\"}", b"[" * 50]))
    elif kind == "bytes":
        body = draw(st.binary(max_size=2000))
    elif kind == "text":
        body = draw(st.text(max_size=200)).encode("utf-8", "surrogatepass")
    elif kind == "form":
        fields = draw(st.lists(st.tuples(st.sampled_from(["id", "name", "list", "file"]), st.text(max_size=20)), max_size=5))
        files = []
        if draw(st.booleans()):
            files.append({"field": "file", "filename": draw(st.text(alphabet=SEGMENT_ALPHABET + "/", max_size=30)),
                          "content": draw(st.text(max_size=200)),
                          "content_type": draw(st.sampled_from(["text/plain", "application/octet-stream", "image/png", ""]))})
        body = multipart(fields, files)
        if ctype is None or draw(st.booleans()):
            ctype = f"multipart/form-data; boundary={BOUNDARY}"
    elif kind == "urlencoded":
        body = "&".join(f"{quote(k)}={quote(v)}" for k, v in draw(st.lists(
            st.tuples(st.sampled_from(["id", "name", "list"]), st.text(max_size=20)), max_size=4))).encode()
    elif kind == "cmd":
        body = json.dumps({"cmd": "x-" + draw(st.text(max_size=40))}).encode()
        if ctype is None:
            ctype = "application/json"
    if ctype is not None:
        headers.append(("Content-Type", ctype))
    extra = draw(st.lists(st.sampled_from([
        ("X-Request-ID", "fuzz-req-1"), ("X-Request-ID", "bad id"), ("If-None-Match", "*"),
        ("If-None-Match", '"abc"'), ("If-Modified-Since", "Fri, 01 Jan 2100 00:00:00 GMT"),
        ("Range", "bytes=0-3"), ("Range", "bytes=-1"), ("Range", "bytes=9-1"), ("Accept", "text/html"),
        ("Accept-Encoding", "gzip"), ("X-Forwarded-Proto", "https"),
    ]), max_size=3, unique=True))
    headers.extend(extra)
    chunked = body is not None and draw(st.integers(min_value=0, max_value=9)) == 0
    return {"rule": rule, "method": method, "path": path, "auth": auth, "headers": headers,
            "body": body, "chunked": chunked}


def generate(rules: list[tuple[str, list[str], dict[str, str]]], n: int, seed: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    @hyp_seed(seed)
    @settings(max_examples=n, phases=[Phase.generate], database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(requests(rules))
    def collect(req: dict[str, Any]) -> None:
        out.append(req)

    collect()
    return out[:n]


def _name(i: int, req: dict[str, Any]) -> str:
    rule = re.sub(r"[^A-Za-z0-9]+", ".", req["rule"]).strip(".") or "root"
    return f"fuzz-{i:05d}-{req['method']}-{rule}"


def to_scenarios(reqs: list[dict[str, Any]]) -> list[Scenario]:
    scenarios = []
    for i, req in enumerate(reqs, 1):
        spec = {"body_hex": req["body"].hex()} if req["body"] is not None else {}
        step = Step(name="request", method=req["method"], path=req["path"], auth=req["auth"],
                    headers=list(req["headers"]), body_spec=spec, chunked=req["chunked"], chunk_size=97)
        scenarios.append(Scenario(name=_name(i, req), steps=[step], tags=("fuzz", req["rule"]), source="fuzz"))
    return scenarios


def run_fuzz(reference: AppSpec, candidate: AppSpec, setup: InstanceSetup, allow: AllowList, *, n: int = 2000,
             seed: int = 0, keep: bool = False) -> PairReport:
    from compat.apps import start_inprocess

    workdir = Workdir(keep=keep, prefix="compat-fuzz-")
    try:
        probe_dir = workdir.new_instance_dir("probe")
        setup.prepare(probe_dir)
        rules = route_rules(create_app(reference, probe_dir))
        try:
            cand_rules = {r for r, _m, _c in route_rules(create_app(candidate, workdir.new_instance_dir("probe-2")))}
        except Exception:
            cand_rules = None
        ref_rules = {r for r, _m, _c in rules}
        # a rule only the reference has is a difference of its own (its requests show it);
        # a rule only the candidate has (the port-only routes) is not compared
        missing = sorted(ref_rules - cand_rules) if cand_rules is not None else []
        only_candidate = sorted(cand_rules - ref_rules) if cand_rules is not None else []
        scenarios = to_scenarios(generate(rules, n, seed))
        a = start_inprocess(reference, workdir, setup, "reference")
        b = start_inprocess(reference, workdir, setup, "reference-2")
        c = start_inprocess(candidate, workdir, setup, "candidate")
        try:
            runs = play_all(scenarios, [Target("reference", a.client, a.folder), Target("candidate", c.client, c.folder)],
                            later=[Target("reference-2", b.client, b.folder)])
        finally:
            for inst in (a, b, c):
                inst.close()
        report = compare_runs(scenarios, runs["reference"], runs["reference-2"], runs["candidate"], mode="fuzz",
                              reference_label=str(reference), candidate_label=str(candidate), allow=allow)
        report.extra.update({"seed": seed, "requests": len(scenarios), "rules": [r for r, _m, _c in rules],
                             "rules_missing_in_candidate": missing,
                             "rules_only_in_candidate_not_compared": only_candidate})
        return report
    finally:
        workdir.close()
