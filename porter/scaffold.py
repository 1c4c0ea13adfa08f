"""What DEST needs to prove the port: a run file (the compat suite's format, reference = SRC,
candidate = DEST), a starter corpus made from the app's route table, an allow-list for what a
copy cannot change, and a setup hook when the app has a database to initialise.

The route table is the reference's own ``url_map``, read in the reference's interpreter by the
suite's worker (the setup hook first, as in a run). The corpus asks every GET route, HEAD and
OPTIONS once, a 404 and a 405, each static file (whole and a range), then every POST, PUT and
PATCH route with a form body and a JSON body, and every DELETE route last; path arguments get
a sample value per converter (``<int:id>`` -> 1). It is a start: sequences that log in, with
captured CSRF tokens, are for the team to add (``compat/README.md``).
"""

from __future__ import annotations

import importlib
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import libcst as cst

from .awaitables import dotted
from .port import PortResult
from .suite import DEFAULT_FUZZ, DEFAULT_MODES, compat_package

SAMPLES = {
    "IntegerConverter": "1",
    "FloatConverter": "1.5",
    "UUIDConverter": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
    "PathConverter": "sample/path",
    "UnicodeConverter": "sample",
    "NumberConverter": "1",
}
_ARG = re.compile(r"<(?:(?P<conv>\w+)(?P<args>\([^)]*\))?:)?(?P<name>\w+)>")
FORM = [["name", "porter"], ["value", "1"]]
JSON_BODY = {"name": "porter", "value": 1}
MAX_STATIC = 5


class ScaffoldError(Exception):
    """The reference cannot be read: one line saying why."""


@dataclass
class Side:
    path: Path
    app: str


@dataclass
class Scaffold:
    runfile: Path
    corpus: Path
    allow: Path | None
    hook: Path | None
    reference: Side
    candidate: Side
    routes: list[tuple[str, list[str], dict[str, str]]] = field(default_factory=list)
    secret_key: str | None = None
    scenarios: int = 0


def sides(result: PortResult) -> tuple[Side, Side]:
    project = result.project
    if result.app is None:
        raise ScaffoldError("no Flask app found: no function creating `Flask(...)` and no module-level app object")
    if project.kind == "package":
        assert project.import_root is not None
        reference = Side(project.import_root, project.import_prefix + result.app)
    elif project.kind == "folder":
        reference = Side(project.src, result.app)
    else:
        reference = Side(project.src.parent, result.app)
    return reference, Side(result.dest, result.app)


# ---------------------------------------------------------------------- what the sources say


class _SecretKey(cst.CSTVisitor):
    """A literal SECRET_KEY: ``SECRET_KEY="dev"`` (a keyword), ``config["SECRET_KEY"] = "dev"``,
    ``app.secret_key = "dev"``."""

    def __init__(self) -> None:
        super().__init__()
        self.value: str | None = None

    @staticmethod
    def _literal(node: cst.BaseExpression) -> str | None:
        if isinstance(node, cst.SimpleString) and isinstance(node.evaluated_value, str):
            return node.evaluated_value
        return None

    def visit_Arg(self, node: cst.Arg) -> None:
        if node.keyword is not None and node.keyword.value == "SECRET_KEY":
            self.value = self.value or self._literal(node.value)

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            t = target.target
            if isinstance(t, cst.Attribute) and t.attr.value == "secret_key":
                self.value = self.value or self._literal(node.value)
            if isinstance(t, cst.Subscript) and len(t.slice) == 1:
                index = t.slice[0].slice
                if isinstance(index, cst.Index) and self._literal(index.value) == "SECRET_KEY":
                    self.value = self.value or self._literal(node.value)


def secret_key(result: PortResult) -> str | None:
    finder = _SecretKey()
    for module in result.project.modules.values():
        module.tree.visit(finder)
        if finder.value:
            return finder.value
    return None


def init_commands(result: PortResult) -> list[str]:
    """CLI commands that initialise a database (``init-db``, ``initdb``, ``create-db``...)."""
    names = []
    for s in result.plan.scans.values():
        for f in s.functions:
            if "cli" not in f.roles:
                continue
            name = f.name.replace("_command", "").replace("_", "-")
            for dec in f.node.decorators:
                expr = dec.decorator
                if isinstance(expr, cst.Call) and (dotted(expr.func) or "").endswith("command") and expr.args:
                    first = expr.args[0].value
                    if isinstance(first, cst.SimpleString) and isinstance(first.evaluated_value, str):
                        name = first.evaluated_value
            if re.search(r"(init|create|setup).*db|db.*(init|create)", name.replace("-", "").lower()):
                names.append(name)
    return names


HOOK = '''"""Written by hostpulse-port: the compat suite's setup hook (``[setup] hook`` in compat.toml).

It runs in each side's own interpreter (that side's package first on its path) and prepares
each instance folder by running the app's {commands} command(s) in an app context, as
``flask --app {app} {first}`` would; it returns the factory's keyword arguments.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
from pathlib import Path

FACTORY = {app!r}
COMMANDS = {command_list!r}


def _accepts_instance_path(factory) -> bool:
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
    return "instance_path" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _run(app, callback) -> None:
    context = app.app_context()
    if hasattr(context, "__aenter__"):  # Quart: an async app context, the command itself sync

        async def run() -> None:
            async with context:
                result = callback()
                if inspect.isawaitable(result):
                    await result

        asyncio.run(run())
    else:
        with context:
            callback()


def prepare(instance: Path, side: str) -> dict:
    module, _, attr = FACTORY.partition(":")
    factory = getattr(importlib.import_module(module), attr)
    Path(instance).mkdir(parents=True, exist_ok=True)
    kwargs = {{"instance_path": str(instance)}} if _accepts_instance_path(factory) else {{}}
    app = factory(**kwargs)
    for name in COMMANDS:
        command = app.cli.commands.get(name)
        if command is None:
            raise RuntimeError(f"{{side}}: no CLI command {{name!r}}")
        _run(app, inspect.unwrap(command.callback))
    return kwargs
'''


# ---------------------------------------------------------------------- the route table


def read_routes(reference: Side, hook: Path | None, dest: Path) -> list[tuple[str, list[str], dict[str, str]]]:
    """(rule, methods, {argument: converter}) of the reference's url_map, read in its own interpreter."""
    pkg = compat_package()
    apps = importlib.import_module(f"{pkg}.apps")
    sides_mod = importlib.import_module(f"{pkg}.sides")
    loading = importlib.import_module(f"{pkg}.loading")
    spec = apps.AppSpec(
        reference.app,
        path=reference.path,
        hook="compat_setup:prepare" if hook else None,
        hook_path=dest if hook else None,
    )
    with tempfile.TemporaryDirectory(prefix="porter-routes-") as tmp:
        folder = Path(tmp) / "instance"
        folder.mkdir()
        try:
            info = sides_mod.prepare(spec.side("reference"), folder, Path(tmp) / "reference.log", "reference")
        except loading.SetupError as exc:
            raise ScaffoldError(f"the Flask app does not start: {exc}") from None
    if info.get("routes_error"):
        raise ScaffoldError(f"cannot read the Flask app's routes: {info['routes_error']}")
    return [(r[0], list(r[1]), dict(r[2])) for r in info.get("routes", [])]


def _fill(rule: str, convs: dict[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        conv = convs.get(m.group("name"), "UnicodeConverter")
        if m.group("conv") == "any" and m.group("args"):
            return m.group("args").strip("()").split(",")[0].strip().strip("'\"")
        return SAMPLES.get(conv, "sample")

    return _ARG.sub(one, rule)


def _slug(path: str) -> str:
    s = re.sub(r"[^A-Za-z0-9]+", "-", path).strip("-").lower()
    return s or "root"


def _toml(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _scenario(name: str, path: str, method: str = "GET", **extra: Any) -> str:
    lines = ["[[scenario]]", f"name = {_toml(name)}"]
    if method != "GET":
        lines.append(f"method = {_toml(method)}")
    lines.append(f"path = {_toml(path)}")
    for key, value in extra.items():
        if key == "json":
            lines.append("json = { " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }")
        elif key == "headers":
            lines.append("headers = { " + ", ".join(f"{_toml(k)} = {_toml(v)}" for k, v in value.items()) + " }")
        else:
            lines.append(f"{key} = {_toml(value)}")
    return "\n".join(lines) + "\n"


def corpus_text(routes: list[tuple[str, list[str], dict[str, str]]], static: list[str], app: str) -> tuple[str, int]:
    """The starter corpus, and how many scenarios it has."""
    out = [
        f"# Starter corpus written by hostpulse-port from the route table of {app}.\n"
        "# Scenarios play in order on one instance: reads first, then writes, deletes last.\n"
        "# Add sequences that log in (captures, cookie jar): see the compat suite's README.\n"
    ]
    names: set[str] = set()
    n = 0

    def add(name: str, path: str, method: str = "GET", **extra: Any) -> None:
        nonlocal n
        base, i = name, 2
        while name in names:
            name, i = f"{base}-{i}", i + 1
        names.add(name)
        out.append(_scenario(name, path, method, **extra))
        n += 1

    plain = [(rule, methods, convs) for rule, methods, convs in routes if not rule.endswith("/static/<path:filename>")]
    statics = [rule for rule, _m, _c in routes if rule.endswith("/static/<path:filename>")]
    out.append("\n# ---- reads\n")
    first_get = None
    get_only = None
    for rule, methods, convs in plain:
        if "GET" in methods:
            path = _fill(rule, convs)
            add(f"get-{_slug(rule)}", path, tags=["smoke"])
            first_get = first_get or path
            if get_only is None and set(methods) <= {"GET", "HEAD", "OPTIONS"}:
                get_only = path
    if first_get is not None:
        add(f"head-{_slug(first_get)}", first_get, "HEAD")
        add(f"options-{_slug(first_get)}", first_get, "OPTIONS")
    add("not-found", "/porter-no-such-page")
    if get_only is not None:
        add(f"method-not-allowed-{_slug(get_only)}", get_only, "DELETE")
    if statics and static:
        out.append("\n# ---- static files (each side serves its own copy)\n")
        prefix = statics[0].removesuffix("<path:filename>")
        for i, file in enumerate(static[:MAX_STATIC]):
            add(f"static-{_slug(file)}", prefix + file)
            if i == 0:
                add(f"static-range-{_slug(file)}", prefix + file, headers={"Range": "bytes=0-9"})
        add("static-missing", prefix + "porter-no-such-file.css")
    writes = [(r, m, c) for r, m, c in plain if {"POST", "PUT", "PATCH"} & set(m)]
    if writes:
        out.append("\n# ---- writes: a form body and a JSON body\n")
    for rule, methods, convs in writes:
        path = _fill(rule, convs)
        for method in ("POST", "PUT", "PATCH"):
            if method in methods:
                add(f"{method.lower()}-form-{_slug(rule)}", path, method, urlencoded=FORM)
                add(f"{method.lower()}-json-{_slug(rule)}", path, method, json=JSON_BODY)
    deletes = [(r, m, c) for r, m, c in plain if "DELETE" in m]
    if deletes:
        out.append("\n# ---- deletes, last\n")
    for rule, _methods, convs in deletes:
        add(f"delete-{_slug(rule)}", _fill(rule, convs), "DELETE")
    return "\n".join(out), n


ALLOW_STATIC = """# Written by hostpulse-port: differences a copy cannot remove, each with its reason.
# Werkzeug's and Quart's send_file both make a file's ETag "{mtime}-{size}-{adler32(absolute path)}":
# the port's files are copies (mtime kept) at another path, so their ETag differs, and only it.

[[allow]]
scenario = "*"
difference = "header-value:etag"
reason = "another copy of the file: send_file's ETag hashes the file's absolute path (DEST's copy vs SRC's)"
"""


def _sends_files(result: PortResult) -> bool:
    """Whether the project sends files of its own (``send_file``, ``send_from_directory``)."""
    return any(
        name.rpartition(".")[2] in ("send_file", "send_from_directory")
        for s in result.plan.scans.values()
        for name in s.flask_names.values()
    )


def _rel(path: Path, start: Path) -> str:
    try:
        return os.path.relpath(path, start)
    except ValueError:
        return str(path)


def write(
    result: PortResult,
    *,
    modes: list[str] | None = None,
    fuzz: int = DEFAULT_FUZZ,
    corpus: Path | None = None,
    allow: Path | None = None,
) -> Scaffold:
    """Write DEST/compat.toml, DEST/corpus.toml (unless ``corpus`` is given), an allow-list
    and a setup hook when needed; read the reference's routes for the corpus."""
    dest = result.dest
    reference, candidate = sides(result)
    commands = init_commands(result)
    hook = None
    if commands:
        hook = dest / "compat_setup.py"
        hook.write_text(
            HOOK.format(app=result.app, commands=", ".join(commands), first=commands[0], command_list=commands),
            encoding="utf-8",
        )
    key = secret_key(result)
    routes = read_routes(reference, hook, dest)
    static_files: list[str] = []
    top = (result.app or "").split(":")[0].split(".")[0]
    for folder, files in result.project.static_files().items():
        if folder.split("/")[0] in (top, "") or result.project.kind == "module":
            static_files += sorted(files)
    scenarios = 0
    if corpus is None:
        text, scenarios = corpus_text(routes, static_files, result.app or "")
        corpus_path = dest / "corpus.toml"
        corpus_path.write_text(text, encoding="utf-8")
    else:
        corpus_path = Path(corpus).resolve()
    allow_path: Path | None = Path(allow).resolve() if allow else None
    if allow_path is None and corpus is None and (static_files or _sends_files(result)):
        allow_path = dest / "allowlist.toml"
        allow_path.write_text(ALLOW_STATIC, encoding="utf-8")
    modes = list(modes or DEFAULT_MODES)
    lines = [
        "# Run file written by hostpulse-port: the Flask app (SRC) against its Quart port (DEST).",
        "# Paths are relative to this file; each side runs in its own interpreter, its path first.",
        "[reference]",
        f"path = {_toml(_rel(reference.path, dest))}",
        f"app = {_toml(reference.app)}",
        'label = "flask"',
        "",
        "[candidate]",
        f"path = {_toml(_rel(candidate.path, dest))}",
        f"app = {_toml(candidate.app)}",
        'label = "port"',
        "",
    ]
    if hook is not None or key is not None:
        lines.append("[setup]")
        if hook is not None:
            lines.append(f'hook = "compat_setup:prepare"   # runs {", ".join(commands)} in each instance')
        if key is not None:
            lines.append(f"secret_key = {_toml(key)}   # the app's SECRET_KEY: session cookies decoded and verified")
        lines.append("")
    lines += ["[run]", f"corpus = {_toml(_rel(corpus_path, dest))}"]
    if allow_path is not None:
        lines.append(f"allow = {_toml(_rel(allow_path, dest))}")
    lines += [f"modes = {_toml(modes)}", f"fuzz = {fuzz}", ""]
    runfile = dest / "compat.toml"
    runfile.write_text("\n".join(lines), encoding="utf-8")
    return Scaffold(
        runfile=runfile,
        corpus=corpus_path,
        allow=allow_path,
        hook=hook,
        reference=reference,
        candidate=candidate,
        routes=routes,
        secret_key=key,
        scenarios=scenarios,
    )
