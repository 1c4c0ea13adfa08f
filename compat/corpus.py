"""The corpus: scenarios of requests, read from TOML files a person can read and extend.

A corpus is a directory of ``*.toml`` files (or one file). Each file may hold:

``[defaults]``
    keys applied to every scenario, matrix and sequence step of that file (``tags`` add up).

``[[scenario]]``
    one request. Keys: ``name`` (unique), ``method`` (GET), ``path`` (may carry a query string),
    ``auth`` (``none``, ``admin``, ``viewer``, ``agent``, ``unknown``, ``malformed``, ``basic``,
    ``empty``, ``lowercase``), ``headers`` (a table, or a list of ``[name, value]`` pairs for
    repeats), ``content_type``, one body: ``body`` (text), ``body_hex``, ``body_b64``,
    ``json`` (any TOML value, sent compact), ``body_size`` (+ ``body_fill``), ``body_gen``
    (``seed001``: seed 001's 100,000-entry payload), ``form`` (multipart text fields
    ``[[name, value], ...]``) with ``files`` (``[{field, filename, content | content_b64 |
    size + fill, content_type}]``), ``urlencoded`` (``[[name, value], ...]``); ``chunked = true``
    sends the body chunked (``chunk_size``); ``tags``; ``modes`` (default: every mode);
    ``note`` (free text).

``[[matrix]]``
    a template for many scenarios: the keys of ``[matrix.vary]`` are lists, and every
    combination gives one scenario in which ``${key}`` (or ``${key.sub}`` for tables) is
    replaced in every string, the name included.

``[[sequence]]``
    stateful steps played in order on every instance, each ``[[sequence.step]]`` a request
    (keys as a scenario) or an action: ``action = "touch"`` (``file``: relative to the
    instance folder), ``action = "sleep"`` (``seconds``). A request step may ``capture`` values
    for later steps (``capture = {stored = "header:Content-Location", job = "json:id"}``, used
    as ``${stored}``), repeat ``until`` a JSON field has a value
    (``until = {field = "status", equals = "finished"}``, ``max_tries``, ``interval``),
    ``accumulate`` a JSON field over its tries (compared as one more value), and be left out
    of the comparison (``compare = false``). Captures: ``header:NAME``, ``json:a.b``,
    ``status``, ``html:SELECTOR`` / ``html:SELECTOR@attr`` (a CSS subset: tag, ``#id``,
    ``.class``, ``[attr=value]``, descendants) and ``regex:PATTERN`` (group 1) on the body,
    e.g. ``capture = {csrf = "html:input[name=csrf_token]@value"}``. A sequence has a cookie
    jar: every ``Set-Cookie`` is sent back on its later steps, as a browser would
    (``cookies = false`` turns it off; a step's own ``Cookie`` header wins).

Strings may use ``{admin}``, ``{viewer}``, ``{agent}``, ``{unknown}`` for the known tokens.
``instance.toml`` beside the corpus files says how an instance folder is prepared
(see :class:`compat.apps.InstanceSetup`).
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .instance import TOKENS, UNKNOWN_TOKEN, InstanceSetup

MODES = ("inprocess", "live")
BOUNDARY = "compatboundary7MA4YWxkTrZu0gW"

REQUEST_KEYS = {
    "name",
    "method",
    "path",
    "auth",
    "headers",
    "content_type",
    "body",
    "body_hex",
    "body_b64",
    "json",
    "body_size",
    "body_fill",
    "body_gen",
    "form",
    "files",
    "urlencoded",
    "chunked",
    "chunk_size",
    "tags",
    "modes",
    "note",
    "capture",
    "until",
    "max_tries",
    "interval",
    "accumulate",
    "compare",
    "action",
    "file",
    "seconds",
}


class CorpusError(ValueError):
    pass


@dataclass
class Step:
    """One request (or action) of a scenario."""

    name: str
    method: str = "GET"
    path: str = "/"
    auth: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str | None = None
    body_spec: dict[str, Any] = field(default_factory=dict)
    chunked: bool = False
    chunk_size: int = 65536
    capture: dict[str, str] = field(default_factory=dict)
    until: dict[str, Any] | None = None
    max_tries: int = 1
    interval: float = 0.05
    accumulate: str | None = None
    compare: bool = True
    action: str | None = None
    file: str | None = None
    seconds: float = 0.0

    def describe(self) -> str:
        if self.action:
            return f"[{self.action} {self.file or self.seconds}]"
        return f"{self.method} {self.path}"


@dataclass
class Scenario:
    name: str
    steps: list[Step]
    tags: tuple[str, ...] = ()
    modes: tuple[str, ...] = MODES
    note: str = ""
    source: str = ""
    cookies: bool = True  # a cookie jar for the scenario's steps

    @property
    def is_sequence(self) -> bool:
        return len(self.steps) > 1 or bool(self.steps and self.steps[0].action)

    def describe(self) -> str:
        return " ; ".join(s.describe() for s in self.steps)


# ---------------------------------------------------------------------------- building requests


def substitute_tokens(text: str) -> str:
    for role, token in TOKENS.items():
        text = text.replace("{" + role + "}", token)
    return text.replace("{unknown}", UNKNOWN_TOKEN)


def substitute_vars(text: str, variables: dict[str, Any]) -> str:
    def repl(m: re.Match) -> str:
        key = m.group(1)
        value: Any = variables
        for part in key.split("."):
            if isinstance(value, dict) and part in value:
                value = value[part]
            else:
                return m.group(0)
        return str(value)

    return re.sub(r"\$\{([A-Za-z0-9_.]+)\}", repl, text)


def _deep(value: Any, fn) -> Any:
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, list):
        return [_deep(v, fn) for v in value]
    if isinstance(value, tuple):
        return tuple(_deep(v, fn) for v in value)
    if isinstance(value, dict):
        return {k: _deep(v, fn) for k, v in value.items()}
    return value


AUTH_HEADERS = {
    "none": None,
    "admin": "Bearer {admin}",
    "viewer": "Bearer {viewer}",
    "agent": "Bearer {agent}",
    "unknown": "Bearer {unknown}",
    "malformed": "Bearer",
    "basic": "Basic YWRtaW46YWRtaW4=",
    "empty": "",
    "lowercase": "bearer {admin}",
    "doublespace": "Bearer  {admin}",
    "token-only": "{admin}",
}


def seed001_payload() -> bytes:
    """Seed 001's client payload: 100,000 entries, 3,188,890 bytes."""
    return json.dumps({i: {"name": "tigerrose"} for i in range(100000)}).encode()


_GENERATED: dict[str, bytes] = {}


def _content_bytes(spec: dict[str, Any], prefix: str = "") -> bytes | None:
    """Bytes from ``content``/``content_hex``/``content_b64``/``size``+``fill`` style keys."""

    def key(k: str) -> str:
        return prefix + k

    if key("hex") in spec:
        return bytes.fromhex(spec[key("hex")])
    if key("b64") in spec:
        return base64.b64decode(spec[key("b64")])
    if key("size") in spec:
        fill = str(spec.get(key("fill"), "a")).encode("utf-8") or b"a"
        size = int(spec[key("size")])
        return (fill * (size // len(fill) + 1))[:size]
    return None


def multipart(fields: list[tuple[str, str]], files: list[dict[str, Any]]) -> bytes:
    out = bytearray()
    for name, value in fields:
        out += f"--{BOUNDARY}\r\n".encode()
        out += f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += str(value).encode("utf-8") + b"\r\n"
    for f in files:
        content = f.get("content")
        data = content.encode("utf-8") if isinstance(content, str) else None
        if data is None:
            data = (
                _content_bytes(f, "content_")
                if any(k.startswith("content_") and k != "content_type" for k in f)
                else None
            )
        if data is None:
            data = _content_bytes(f) or b""
        out += f"--{BOUNDARY}\r\n".encode()
        disp = f'Content-Disposition: form-data; name="{f.get("field", "file")}"'
        if f.get("filename") is not None:
            disp += f'; filename="{f["filename"]}"'
        if f.get("filename_star"):
            disp += f"; filename*=UTF-8''{f['filename_star']}"
        out += disp.encode("utf-8") + b"\r\n"
        ctype = f.get("content_type", "application/octet-stream")
        if ctype:
            out += f"Content-Type: {ctype}\r\n".encode()
        out += b"\r\n" + data + b"\r\n"
    out += f"--{BOUNDARY}--\r\n".encode()
    return bytes(out)


@dataclass
class BuiltRequest:
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes | None
    chunked: bool
    chunk_size: int

    def body_arg(self) -> bytes | list[bytes] | None:
        if self.body is None:
            return [] if self.chunked else None
        if self.chunked:
            n = max(1, self.chunk_size)
            return [self.body[i : i + n] for i in range(0, len(self.body), n)] or []
        return self.body

    def describe(self) -> dict[str, Any]:
        body = self.body or b""
        return {
            "method": self.method,
            "path": self.path,
            "headers": [list(h) for h in self.headers],
            "body_length": len(body),
            "body_preview": body[:200].decode("utf-8", "replace"),
            "chunked": self.chunked,
        }


def build_request(step: Step, variables: dict[str, Any] | None = None) -> BuiltRequest:
    variables = variables or {}

    def sub(text: str) -> str:
        return substitute_tokens(substitute_vars(text, variables))

    headers: list[tuple[str, str]] = []
    if step.auth and step.auth != "none":
        if step.auth not in AUTH_HEADERS:
            raise CorpusError(f"{step.name}: unknown auth {step.auth!r}")
        headers.append(("Authorization", sub(AUTH_HEADERS[step.auth])))
    spec = step.body_spec
    body: bytes | None = None
    ctype = step.content_type
    if "body" in spec:
        body = sub(spec["body"]).encode("utf-8")
    elif "body_hex" in spec:
        body = bytes.fromhex(spec["body_hex"])
    elif "body_b64" in spec:
        body = base64.b64decode(spec["body_b64"])
    elif "json" in spec:
        body = json.dumps(_deep(spec["json"], sub), separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        if ctype is None:
            ctype = "application/json"
    elif "body_size" in spec:
        body = _content_bytes({"size": spec["body_size"], "fill": spec.get("body_fill", "a")})
    elif "body_gen" in spec:
        gen = spec["body_gen"]
        if gen not in _GENERATED:
            if gen == "seed001":
                _GENERATED[gen] = seed001_payload()
            else:
                raise CorpusError(f"{step.name}: unknown body_gen {gen!r}")
        body = _GENERATED[gen]
    elif "form" in spec or "files" in spec:
        fields = [(sub(str(k)), sub(str(v))) for k, v in spec.get("form", [])]
        files = [_deep(f, sub) for f in spec.get("files", [])]
        body = multipart(fields, files)
        if ctype is None:
            ctype = f"multipart/form-data; boundary={BOUNDARY}"
    elif "urlencoded" in spec:
        from urllib.parse import urlencode

        body = urlencode([(sub(str(k)), sub(str(v))) for k, v in spec["urlencoded"]]).encode()
        if ctype is None:
            ctype = "application/x-www-form-urlencoded"
    if ctype is not None:
        headers.append(("Content-Type", sub(ctype)))
    for name, value in step.headers:
        headers.append((sub(name), sub(value)))
    return BuiltRequest(
        method=sub(step.method).upper(),
        path=sub(step.path),
        headers=headers,
        body=body,
        chunked=step.chunked,
        chunk_size=step.chunk_size,
    )


# ---------------------------------------------------------------------------- loading


def _headers(value: Any, where: str) -> list[tuple[str, str]]:
    if value is None:
        return []
    if isinstance(value, dict):
        return [(str(k), str(v)) for k, v in value.items()]
    if isinstance(value, list):
        out = []
        for item in value:
            if not (isinstance(item, list) and len(item) == 2):
                raise CorpusError(f"{where}: headers must be a table or a list of [name, value]")
            out.append((str(item[0]), str(item[1])))
        return out
    raise CorpusError(f"{where}: bad headers")


BODY_KEYS = (
    "body",
    "body_hex",
    "body_b64",
    "json",
    "body_size",
    "body_fill",
    "body_gen",
    "form",
    "files",
    "urlencoded",
)


def _step(data: dict[str, Any], where: str, default_name: str) -> Step:
    unknown = set(data) - REQUEST_KEYS - {"vary"}
    if unknown:
        raise CorpusError(f"{where}: unknown key(s) {sorted(unknown)}")
    body_spec = {k: data[k] for k in BODY_KEYS if k in data}
    kinds = [k for k in body_spec if k not in ("body_fill", "files")]
    if "files" in body_spec and "form" not in body_spec:
        kinds.append("files")
    if len(kinds) > 1 and not (set(kinds) <= {"form", "files"}):
        raise CorpusError(f"{where}: more than one body given: {kinds}")
    until = data.get("until")
    step = Step(
        name=str(data.get("name", default_name)),
        method=str(data.get("method", "GET")),
        path=str(data.get("path", "/")),
        auth=data.get("auth"),
        headers=_headers(data.get("headers"), where),
        content_type=data.get("content_type"),
        body_spec=body_spec,
        chunked=bool(data.get("chunked", False)),
        chunk_size=int(data.get("chunk_size", 65536)),
        capture=dict(data.get("capture", {})),
        until=until,
        max_tries=int(data.get("max_tries", 200 if until else 1)),
        interval=float(data.get("interval", 0.05)),
        accumulate=data.get("accumulate"),
        compare=bool(data.get("compare", True)),
        action=data.get("action"),
        file=data.get("file"),
        seconds=float(data.get("seconds", 0.0)),
    )
    if step.action not in (None, "touch", "sleep", "remove"):
        raise CorpusError(f"{where}: unknown action {step.action!r}")
    return step


def _merge(defaults: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    merged = dict(defaults)
    for k, v in data.items():
        if k == "tags":
            merged["tags"] = list(defaults.get("tags", [])) + list(v)
        elif k == "headers" and isinstance(v, dict) and isinstance(defaults.get("headers"), dict):
            merged["headers"] = {**defaults["headers"], **v}
        else:
            merged[k] = v
    # a body in the scenario replaces a body from the defaults
    if any(k in data for k in BODY_KEYS):
        for k in BODY_KEYS:
            if k not in data:
                merged.pop(k, None)
    return merged


def _scenario(data: dict[str, Any], where: str, source: str) -> Scenario:
    if "name" not in data:
        raise CorpusError(f"{where}: a scenario needs a name")
    modes = tuple(data.get("modes", MODES))
    for m in modes:
        if m not in MODES:
            raise CorpusError(f"{where}: unknown mode {m!r}")
    step = _step(data, where, data["name"])
    return Scenario(
        name=data["name"],
        steps=[step],
        tags=tuple(data.get("tags", ())),
        modes=modes,
        note=str(data.get("note", "")),
        source=source,
    )


def _expand(matrix: dict[str, Any], where: str) -> Iterator[dict[str, Any]]:
    vary = matrix.get("vary")
    if not isinstance(vary, dict) or not vary:
        raise CorpusError(f"{where}: a matrix needs a [vary] table of lists")
    keys = list(vary)
    for k in keys:
        if not isinstance(vary[k], list) or not vary[k]:
            raise CorpusError(f"{where}: vary.{k} must be a non-empty list")
    base = {k: v for k, v in matrix.items() if k != "vary"}
    for combo in itertools.product(*(vary[k] for k in keys)):
        variables = dict(zip(keys, combo))
        yield _deep(base, lambda s: substitute_vars(s, variables))  # noqa: B023 -- _deep calls it at once


def _sequence(item: dict[str, Any], defaults: dict[str, Any], where: str, src: str) -> Scenario:
    if "name" not in item:
        raise CorpusError(f"{where}: a sequence needs a name")
    unknown = set(item) - {"name", "step", "tags", "modes", "note", "cookies"}
    if unknown:
        raise CorpusError(
            f"{where}: unknown key(s) {sorted(unknown)} (a sequence has name, tags, modes, note, cookies, step)"
        )
    steps_data = item.get("step", [])
    if not steps_data:
        raise CorpusError(f"{where}: a sequence needs [[sequence.step]]s")
    step_defaults = {k: v for k, v in defaults.items() if k not in ("tags", "modes")}
    steps = []
    for i, sd in enumerate(steps_data):
        sd = sd if "action" in sd else _merge(step_defaults, sd)
        steps.append(_step(sd, f"{where} step[{i}]", f"step{i + 1}"))
    names = [s.name for s in steps if not s.action]
    if len(set(names)) != len(names):
        raise CorpusError(f"{where}: step names must be unique: {names}")
    modes = tuple(item.get("modes", defaults.get("modes", MODES)))
    return Scenario(
        name=item["name"],
        steps=steps,
        tags=tuple(defaults.get("tags", [])) + tuple(item.get("tags", [])),
        modes=modes,
        note=str(item.get("note", "")),
        source=src,
        cookies=bool(item.get("cookies", True)),
    )


def load_file(path: Path) -> tuple[list[Scenario], dict[str, Any]]:
    """Scenarios of one file, and its ``[instance]`` table if any."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise CorpusError(f"{path}: {exc}") from None
    unknown = set(data) - {"defaults", "scenario", "matrix", "sequence", "instance"}
    if unknown:
        raise CorpusError(f"{path}: unknown table(s) {sorted(unknown)}")
    defaults = data.get("defaults", {})
    src = path.name
    scenarios: list[Scenario] = []
    for n, item in enumerate(data.get("scenario", [])):
        scenarios.append(_scenario(_merge(defaults, item), f"{src} scenario[{n}]", src))
    for n, item in enumerate(data.get("matrix", [])):
        where = f"{src} matrix[{n}]"
        if "step" in item:  # a matrix of sequences
            for expanded in _expand(item, where):
                scenarios.append(_sequence(expanded, defaults, where, src))
            continue
        for expanded in _expand(_merge(defaults, item), where):
            scenarios.append(_scenario(expanded, where, src))
    for n, item in enumerate(data.get("sequence", [])):
        scenarios.append(_sequence(item, defaults, f"{src} sequence[{n}]", src))
    return scenarios, data.get("instance", {})


@dataclass
class Corpus:
    scenarios: list[Scenario]
    root: Path
    instance_file: Path | None
    instance: dict[str, Any] = field(default_factory=dict)  # an [instance] table in a corpus file

    def setup(self):
        if self.instance_file is not None:
            return InstanceSetup.load(self.instance_file)
        base = self.root if self.root.is_dir() else self.root.parent
        return InstanceSetup.from_dict(self.instance, base)

    def select(
        self, *, mode: str | None = None, tags: set[str] | None = None, names: set[str] | None = None
    ) -> list[Scenario]:
        out = []
        for s in self.scenarios:
            if mode and mode not in s.modes:
                continue
            if tags and not (set(s.tags) & tags):
                continue
            if names and s.name not in names:
                continue
            out.append(s)
        return out


def load(path: str | Path) -> Corpus:
    root = Path(path)
    if root.is_dir():
        files = sorted(p for p in root.glob("*.toml") if p.name != "instance.toml")
        instance_file = root / "instance.toml"
    elif root.is_file():
        files = [root]
        instance_file = root.parent / "instance.toml"
    else:
        raise CorpusError(f"no corpus at {root}")
    scenarios: list[Scenario] = []
    instance: dict[str, Any] = {}
    for f in files:
        found, inst = load_file(f)
        scenarios.extend(found)
        instance.update(inst)
    seen: dict[str, str] = {}
    for s in scenarios:
        if s.name in seen:
            raise CorpusError(f"duplicate scenario name {s.name!r} ({seen[s.name]} and {s.source})")
        seen[s.name] = s.source
    return Corpus(
        scenarios=scenarios,
        root=root,
        instance_file=instance_file if instance_file.exists() else None,
        instance=instance,
    )


DEFAULT_CORPUS = Path(__file__).resolve().parent / "corpus"
