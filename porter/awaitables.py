"""Which calls Quart makes awaitable, and the ``async``/``await`` they spread through the project.

One scan per module (:class:`ModuleScan`, a libcst visitor) records what the rewrite needs:

- the Flask names each module imports, so ``request.form`` or ``rt("x.html")`` (``from flask
  import render_template as rt``) is recognised whatever it is called;
- every expression Quart makes awaitable (:data:`AWAITABLE_CALLS`, :data:`AWAITABLE_ATTRIBUTES`,
  :data:`AWAITABLE_METHODS`, a test client's requests, an ``open_resource`` file's reads);
- the roles Quart gives functions: views (``@bp.route``, ``add_url_rule``, ``MethodView``
  methods), request hooks (``before_request``, ``before_app_request``, ``teardown_*``, error
  handlers, context processors: registered by decorator or by call), and the functions that
  must stay synchronous (template globals and filters, ``url_defaults``, CLI commands,
  properties, dunder methods, app factories);
- every call of the project's own functions (a name, ``module.func`` of an imported project
  module, ``self.method``), and every decorator put on a view.

:func:`analyse` then decides, for the whole project at once: a function becomes ``async def``
when Quart calls it (views, hooks) or when it awaits something, and so does every function
of the project that calls it, up to the views (propagation through helpers); a decorator that
wraps a view gets an ``async`` wrapper that awaits the view. What cannot follow (an awaitable
needed where the code must stay synchronous) is flagged instead of being rewritten.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import libcst as cst
from libcst.metadata import MetadataWrapper, ParentNodeProvider, PositionProvider

from .flags import Flag
from .imports import EXTENSIONS, MODULES, WERKZEUG, extension_of
from .project import Project

# -- what Quart makes awaitable (names qualified as the Flask project spells them)

AWAITABLE_CALLS = {
    "flask.render_template",
    "flask.render_template_string",
    "flask.stream_template",
    "flask.stream_template_string",
    "flask.send_file",
    "flask.send_from_directory",
    "flask.flash",
    "flask.make_response",
    "flask.make_push_promise",
    "flask.request.get_json",
    "flask.request.get_data",
    "flask.current_app.make_response",
    "flask.current_app.open_resource",
    "flask.current_app.open_instance_resource",
    "flask.current_app.send_static_file",
}
AWAITABLE_ATTRIBUTES = {
    "flask.request.form",
    "flask.request.files",
    "flask.request.values",
    "flask.request.json",
    "flask.request.data",
}
# methods of an app or a blueprint, whatever the receiver is called
AWAITABLE_METHODS = {"open_resource", "open_instance_resource", "send_static_file"}
FILE_READS = {"read", "readline", "readlines"}  # on an open_resource file (aiofiles)
CLIENT_METHODS = {"get", "post", "put", "delete", "patch", "head", "options", "open", "trace"}
# where Flask's own submodules keep the names Quart exports at the top
COLLAPSE = ("flask.globals.", "flask.helpers.", "flask.templating.", "flask.json.", "flask.wrappers.")

# -- the roles Quart gives functions

ROUTE_DECORATORS = {"route", "get", "post", "put", "delete", "patch", "websocket"}
HOOK_DECORATORS = {
    "before_request",
    "after_request",
    "teardown_request",
    "teardown_appcontext",
    "before_app_request",
    "after_app_request",
    "teardown_app_request",
    "errorhandler",
    "app_errorhandler",
    "context_processor",
    "app_context_processor",
    "before_first_request",
    "before_serving",
    "after_serving",
    "after_this_request",
    "before_websocket",
    "after_websocket",
}
# registration by call: method -> index of the function among the positional arguments
REGISTRATIONS = {name: 0 for name in HOOK_DECORATORS - {"errorhandler", "app_errorhandler"}}
REGISTRATIONS.update({"register_error_handler": 1, "add_url_rule": 2})
# Quart calls these synchronously (Jinja, url_for, routing, the CLI): they must stay sync
SYNC_DECORATORS = {
    "template_filter": "a template filter (Jinja calls it synchronously)",
    "app_template_filter": "a template filter (Jinja calls it synchronously)",
    "template_global": "a template global (Jinja calls it synchronously)",
    "app_template_global": "a template global (Jinja calls it synchronously)",
    "template_test": "a template test (Jinja calls it synchronously)",
    "app_template_test": "a template test (Jinja calls it synchronously)",
    "url_defaults": "a url_defaults function (url_for calls it synchronously)",
    "app_url_defaults": "a url_defaults function (url_for calls it synchronously)",
    "url_value_preprocessor": "a url_value_preprocessor (Quart calls it synchronously)",
    "app_url_value_preprocessor": "a url_value_preprocessor (Quart calls it synchronously)",
    "shell_context_processor": "a shell context processor (the CLI calls it synchronously)",
}
SYNC_REGISTRATIONS = {
    "add_template_filter": SYNC_DECORATORS["template_filter"],
    "add_app_template_filter": SYNC_DECORATORS["template_filter"],
    "add_template_global": SYNC_DECORATORS["template_global"],
    "add_app_template_global": SYNC_DECORATORS["template_global"],
    "add_template_test": SYNC_DECORATORS["template_test"],
    "add_app_template_test": SYNC_DECORATORS["template_test"],
    **{k: v for k, v in SYNC_DECORATORS.items() if "url" in k or "shell" in k},
}
CLI_DECORATORS = {"command", "group"}  # click.command, app.cli.command, bp.cli.command
VIEW_METHODS = {"get", "post", "put", "delete", "patch", "head", "options", "trace", "dispatch_request"}
VIEW_BASES = {"flask.views.MethodView", "flask.views.View", "flask.MethodView", "flask.View"}
SESSION_BASES = {"flask.sessions.SessionInterface", "flask.sessions.SecureCookieSessionInterface"}
SESSION_METHODS = {"open_session", "save_session"}


def _position(node: cst.CSTNode, positions: Any) -> int:
    try:
        return positions[node].start.line
    except KeyError:
        return 0


def dotted(node: cst.BaseExpression) -> str | None:
    """``a.b.c`` of a Name/Attribute chain, else None."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        left = dotted(node.value)
        return f"{left}.{node.attr.value}" if left else None
    return None


def _relative_module(package: str, level: int, module: str | None) -> str:
    parts = package.split(".") if package else []
    if level > 1:
        parts = parts[: len(parts) - (level - 1)]
    base = ".".join(parts)
    if module:
        return f"{base}.{module}" if base else module
    return base


@dataclass
class Func:
    """One function (or method) of the project."""

    key: str  # "flaskr.blog:create" / "todos:create_app.read_todo" / "flask_app.views.data:Data.get"
    module: str
    name: str
    node: cst.FunctionDef
    line: int
    parent: Func | None  # the enclosing function
    cls: str | None  # the enclosing class's qualified name, for methods
    params: set[str] = field(default_factory=set)
    originally_async: bool = False
    is_generator: bool = False
    local_defs: dict[str, Func] = field(default_factory=dict)
    roles: list[str] = field(default_factory=list)  # "view", "hook" (Quart calls it)
    stay_sync: str | None = None  # why it must stay synchronous
    makes_app: bool = False
    awaits: list[tuple[cst.CSTNode, str, int]] = field(default_factory=list)  # direct Quart awaitables
    calls: list[tuple[tuple, cst.Call, int, str | None]] = field(default_factory=list)  # (ref, node, line, barrier)
    param_calls: list[tuple[str, cst.Call]] = field(default_factory=list)  # calls of a parameter
    decorators: list[tuple[tuple, int]] = field(default_factory=list)  # other decorators (refs)
    async_withs: list[cst.With] = field(default_factory=list)

    @property
    def qualname(self) -> str:
        return self.key.split(":", 1)[1]


class ModuleScan(cst.CSTVisitor):
    """What one module holds, for :func:`analyse`."""

    METADATA_DEPENDENCIES = (PositionProvider, ParentNodeProvider)

    def __init__(self, module: str, package: str, project_modules: set[str], rel: str, test_file: bool) -> None:
        super().__init__()
        self.module = module
        self.package = package
        self.project_modules = project_modules
        self.rel = rel
        self.test_file = test_file
        self.flask_names: dict[str, str] = {}  # local name -> qualified flask name
        self.project_names: dict[str, str] = {}  # local name -> "pkg.mod" (module) or "pkg.mod:func"
        self.functions: list[Func] = []
        self.module_defs: dict[str, Func] = {}
        self.classes: dict[str, list[str]] = {}  # class qualname -> base dotted names
        self.class_methods: dict[str, dict[str, Func]] = {}
        self.class_decorators: dict[str, list[tuple[tuple, int]]] = {}
        self.flags: list[Flag] = []
        self.sync_refs: list[tuple[tuple, str, int]] = []  # (ref, why, line): registered as must-stay-sync
        self.role_refs: list[tuple[tuple, str, int]] = []  # (ref, role, line)
        self.cli_refs: list[tuple[tuple, int]] = []  # app.cli.add_command(ref)
        self.value_refs: list[tuple[tuple, int]] = []  # a project function used as a value
        self.top_calls: list[tuple[tuple, cst.Call, int, str]] = []  # calls outside any function
        self.top_awaits: list[tuple[cst.CSTNode, str, int]] = []
        self._stack: list[Any] = []  # Func, ("class", qualname), ("lambda",), ("genexp",)
        self._handled_refs: set[int] = set()  # Name nodes already read as a call/registration
        self.sqlite = False
        self.threading_local = False  # ``from threading import local``
        self._environ_flagged: list[Func | None] = []  # one wsgi-environ flag a method

    # ------------------------------------------------------------------ helpers

    def line(self, node: cst.CSTNode) -> int:
        return _position(node, self.metadata.get(PositionProvider, {}))

    def parent(self, node: cst.CSTNode) -> cst.CSTNode | None:
        return self.metadata.get(ParentNodeProvider, {}).get(node)

    def func(self) -> Func | None:
        for item in reversed(self._stack):
            if isinstance(item, Func):
                return item
        return None

    def barrier(self) -> str | None:
        """What stands between an expression and its function: a lambda or a generator expression."""
        for item in reversed(self._stack):
            if isinstance(item, Func):
                return None
            if item == ("lambda",):
                return "a lambda"
            if item == ("genexp",):
                return "a generator expression"
        return None

    def cls(self) -> str | None:
        if self._stack and isinstance(self._stack[-1], tuple) and self._stack[-1][0] == "class":
            return self._stack[-1][1]
        return None

    def qualify(self, node: cst.BaseExpression) -> str | None:
        """The qualified Flask name of a Name/Attribute chain (``request.form`` -> ``flask.request.form``)."""
        name = dotted(node)
        if name is None:
            return None
        head, _, rest = name.partition(".")
        q = self.flask_names.get(head)
        if q is None:
            return None
        full = f"{q}.{rest}" if rest else q
        for prefix in COLLAPSE:
            if full.startswith(prefix):
                full = "flask." + full[len(prefix) :]
                break
        return full

    def ref(self, node: cst.BaseExpression) -> tuple | None:
        """A reference to a project function, resolved later: ("name", n, scope) / ("mod", module, n)
        / ("self", class, n)."""
        if isinstance(node, cst.Name):
            return ("name", node.value, self.func(), self.cls_of_scope())
        if isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name):
            head = node.value.value
            target = self.project_names.get(head)
            if target and ":" not in target:
                return ("mod", target, node.attr.value)
            f = self.func()
            if head in ("self", "cls") and f is not None and f.cls:
                return ("self", f.cls, node.attr.value)
            if head in self.classes or f"{head}" in self.module_class_names():
                return ("self", self.class_key(head), node.attr.value)
        return None

    def module_class_names(self) -> set[str]:
        return {k.split(":", 1)[1] for k in self.classes}

    def class_key(self, name: str) -> str:
        return f"{self.module}:{name}"

    def cls_of_scope(self) -> str | None:
        f = self.func()
        return f.cls if f else None

    # ------------------------------------------------------------------ imports

    def visit_Import(self, node: cst.Import) -> None:
        for alias in node.names:
            name = dotted(alias.name) or ""
            local = (
                alias.asname.name.value
                if alias.asname and isinstance(alias.asname.name, cst.Name)
                else name.split(".")[0]
            )
            if name == "flask" or name.startswith("flask."):
                self.flask_names[local] = name if alias.asname else "flask"
            elif name in self.project_modules:
                self.project_names[local] = name if alias.asname else name.split(".")[0]
            self._extension(name, node)
            if name == "sqlite3":
                self.sqlite = True

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        level = len(node.relative)
        mod = dotted(node.module) if node.module is not None else None
        if level:
            full = _relative_module(self.package, level, mod)
        else:
            full = mod or ""
        if full == "sqlite3":
            self.sqlite = True
        if full == "threading" and not isinstance(node.names, cst.ImportStar):
            self.threading_local = any((dotted(a.name) or "") == "local" for a in node.names)
        self._extension(full, node)
        if isinstance(node.names, cst.ImportStar):
            if full.startswith("flask"):
                self.flags.append(
                    Flag(
                        "error",
                        self.rel,
                        self.line(node),
                        "import-star",
                        f"`from {full} import *`: the names it brings cannot be followed; import them by name",
                    )
                )
            return
        for alias in node.names:
            name = dotted(alias.name) or ""
            local = alias.asname.name.value if alias.asname and isinstance(alias.asname.name, cst.Name) else name
            if full == "flask" or full.startswith("flask."):
                self.flask_names[local] = f"{full}.{name}"
            elif (full, name) in WERKZEUG:
                self.flask_names[local] = "flask." + WERKZEUG[(full, name)][1]
            elif f"{full}.{name}" in self.project_modules:
                self.project_names[local] = f"{full}.{name}"
            elif full in self.project_modules:
                self.project_names[local] = f"{full}:{name}"

    def _extension(self, name: str, node: cst.CSTNode) -> None:
        ext = extension_of(name)
        if ext is None or name.split(".")[0] in {m.split(".")[0] for m in self.project_modules}:
            return  # a package of the project itself (``flask_app``) is no extension
        counterpart = EXTENSIONS.get(ext)
        hint = f"its Quart counterpart is {counterpart}" if counterpart else "no Quart counterpart is known"
        self.flags.append(
            Flag(
                "error",
                self.rel,
                self.line(node),
                "flask-extension",
                f"Flask extension `{ext}`: it hooks into Flask's WSGI, sync request cycle; {hint}",
            )
        )

    # ------------------------------------------------------------------ scopes

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        outer = self.cls()
        qual = f"{outer.split(':', 1)[1]}.{node.name.value}" if outer else node.name.value
        key = self.class_key(qual)
        self.classes[key] = [dotted(b.value) or "" for b in node.bases]
        self.class_methods.setdefault(key, {})
        self._stack.append(("class", key))
        # ``decorators = [login_required]`` in a view class
        for stmt in node.body.body:
            if isinstance(stmt, cst.SimpleStatementLine):
                for small in stmt.body:
                    if (
                        isinstance(small, cst.Assign)
                        and len(small.targets) == 1
                        and isinstance(small.targets[0].target, cst.Name)
                        and small.targets[0].target.value == "decorators"
                        and isinstance(small.value, (cst.List, cst.Tuple))
                    ):
                        refs = []
                        for el in small.value.elements:
                            r = self.ref(el.value.func if isinstance(el.value, cst.Call) else el.value)
                            if r is not None:
                                refs.append((r, self.line(el.value)))
                        self.class_decorators[key] = refs

    def leave_ClassDef(self, node: cst.ClassDef) -> None:
        self._stack.pop()

    def visit_Lambda(self, node: cst.Lambda) -> None:
        self._stack.append(("lambda",))

    def leave_Lambda(self, node: cst.Lambda) -> None:
        self._stack.pop()

    def visit_GeneratorExp(self, node: cst.GeneratorExp) -> None:
        self._stack.append(("genexp",))

    def leave_GeneratorExp(self, node: cst.GeneratorExp) -> None:
        self._stack.pop()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        parent = self.func()
        cls = self.cls()
        if cls:
            qual = f"{cls.split(':', 1)[1]}.{node.name.value}"
        elif parent:
            qual = f"{parent.qualname}.{node.name.value}"
        else:
            qual = node.name.value
        f = Func(
            key=f"{self.module}:{qual}",
            module=self.module,
            name=node.name.value,
            node=node,
            line=self.line(node),
            parent=parent if not cls else None,
            cls=cls,
            originally_async=node.asynchronous is not None,
        )
        params = node.params
        for p in [*params.posonly_params, *params.params, *params.kwonly_params]:
            f.params.add(p.name.value)
        for star in (params.star_arg, params.star_kwarg):
            if isinstance(star, cst.Param):
                f.params.add(star.name.value)
        if cls:
            self.class_methods[cls][node.name.value] = f
            if node.name.value.startswith("__") and node.name.value.endswith("__"):
                f.stay_sync = f"the special method {node.name.value}"
        elif parent:
            parent.local_defs[node.name.value] = f
        elif not self._stack:
            self.module_defs[node.name.value] = f
        self.functions.append(f)
        self._decorators(f, node)
        self._stack.append(f)

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._stack.pop()

    def _decorators(self, f: Func, node: cst.FunctionDef) -> None:
        for dec in node.decorators:
            expr = dec.decorator
            call = expr if isinstance(expr, cst.Call) else None
            target = call.func if call else expr
            name = dotted(target) or ""
            last = name.rpartition(".")[2]
            line = self.line(dec)
            if name in ("property", "functools.cached_property", "cached_property") or last == "setter":
                f.stay_sync = "a property"
            elif (
                isinstance(target, cst.Attribute)
                and last in ROUTE_DECORATORS
                and call is not None
                and (last == "route" or last == "websocket" or self._looks_like_rule(call))
            ):
                f.roles.append("view")
            elif isinstance(target, cst.Attribute) and last in HOOK_DECORATORS:
                f.roles.append("hook")
            elif isinstance(target, cst.Attribute) and last in SYNC_DECORATORS:
                f.stay_sync = SYNC_DECORATORS[last]
            elif last in CLI_DECORATORS and (
                name.startswith("click.")
                or ".cli." in f".{name}"
                or self.flask_names.get(name.split(".")[0], "").startswith("flask.cli")
            ):
                f.stay_sync = "a CLI command (click calls it synchronously)"
                f.roles.append("cli")
            elif name in ("with_appcontext",) or self.qualify(target) == "flask.cli.with_appcontext":
                pass  # kept as written: Quart has the same decorator, and the command stays sync
            elif self.qualify(target) == "flask.stream_with_context":
                self.flags.append(
                    Flag(
                        "error",
                        self.rel,
                        line,
                        "stream-with-context",
                        "`stream_with_context`: Quart's wraps only an async generator; make the "
                        "generator `async def` (its body runs on a thread pool otherwise)",
                    )
                )
            elif self.qualify(target) == "flask.copy_current_request_context":
                self.flags.append(
                    Flag(
                        "error",
                        self.rel,
                        line,
                        "copy-request-context",
                        "`copy_current_request_context`: Quart's needs an `async def` function, "
                        "awaited or scheduled with `asyncio.create_task`, not a thread",
                    )
                )
            else:
                r = self.ref(target)
                if r is not None:
                    f.decorators.append((r, line))
                    if isinstance(target, cst.Name):
                        self._handled_refs.add(id(target))

    @staticmethod
    def _looks_like_rule(call: cst.Call) -> bool:
        if not call.args:
            return False
        first = call.args[0].value
        if isinstance(first, cst.SimpleString):
            return first.evaluated_value.startswith("/") if isinstance(first.evaluated_value, str) else False
        return isinstance(first, (cst.FormattedString, cst.ConcatenatedString))

    # ------------------------------------------------------------------ expressions

    def visit_Yield(self, node: cst.Yield) -> None:
        f = self.func()
        if f is not None and self.barrier() is None:
            f.is_generator = True

    def visit_Call(self, node: cst.Call) -> None:
        f = self.func()
        q = self.qualify(node.func)
        name = dotted(node.func) or ""
        last = (
            name.rpartition(".")[2] if name else (node.func.attr.value if isinstance(node.func, cst.Attribute) else "")
        )
        line = self.line(node)
        if q in ("flask.Flask",) or name in ("Quart", "quart.Quart"):  # (a port of a port finds its app too)
            if f is not None:
                f.makes_app = True
        # what Quart makes awaitable
        why = None
        if q in AWAITABLE_CALLS:
            why = f"`{q.removeprefix('flask.')}()` is a coroutine in Quart"
        elif isinstance(node.func, cst.Attribute) and node.func.attr.value in AWAITABLE_METHODS:
            why = f"`{node.func.attr.value}()` is a coroutine in Quart"
        elif isinstance(node.func, cst.Attribute) and self._is_client(node.func.value) and last in CLIENT_METHODS:
            why = "a Quart test client's request is a coroutine"
        elif (
            isinstance(node.func, cst.Attribute)
            and node.func.attr.value in FILE_READS
            and isinstance(node.func.value, cst.Name)
            and f is not None
            and node.func.value.value in getattr(f, "_aio_files", set())
        ):
            why = "a file of Quart's `open_resource` (aiofiles) reads with `await`"
        if why:
            self._await(node, why, line)
        # registrations: app.before_request(f), bp.add_url_rule(..., view_func=f), ...
        if isinstance(node.func, cst.Attribute):
            method = node.func.attr.value
            fn_arg = None
            if method in REGISTRATIONS:
                fn_arg = self._arg(node, REGISTRATIONS[method], "view_func" if method == "add_url_rule" else "f")
                if fn_arg is not None:
                    self._role(fn_arg, "view" if method == "add_url_rule" else "hook", line)
            elif method in SYNC_REGISTRATIONS:
                fn_arg = self._arg(node, 0, "f")
                if fn_arg is not None:
                    r = self.ref(fn_arg)
                    if r is not None:
                        self.sync_refs.append((r, SYNC_REGISTRATIONS[method], line))
                        self._mark_handled(fn_arg)
            elif method == "add_command" and "cli" in name:
                fn_arg = self._arg(node, 0, "cmd")
                if fn_arg is not None:
                    r = self.ref(fn_arg)
                    if r is not None:
                        self.cli_refs.append((r, line))
                        self._mark_handled(fn_arg)
        # app.errorhandler(404)(f)
        if isinstance(node.func, cst.Call) and isinstance(node.func.func, cst.Attribute):
            inner = node.func.func.attr.value
            if inner in HOOK_DECORATORS | ROUTE_DECORATORS and node.args:
                self._role(node.args[0].value, "view" if inner in ROUTE_DECORATORS else "hook", line)
        # the project's own functions
        r = self.ref(node.func)
        if r is not None:
            self._mark_handled(node.func)
            if f is None:
                self.top_calls.append((r, node, line, "module level code" if self.cls() is None else "a class body"))
            elif not isinstance(self.parent(node), cst.Await):  # an awaited call is ported already
                f.calls.append((r, node, line, self.barrier()))
                # a parameter called: a decorator's wrapped view
                if isinstance(node.func, cst.Name):
                    for outer in self._enclosing():
                        if outer is not f and node.func.value in outer.params:
                            if not isinstance(self.parent(node), cst.Await):
                                f.param_calls.append((node.func.value, node))
                            break
        # request.stream, generators as responses, threading.local, ...
        if q == "flask.stream_with_context":
            self.flags.append(
                Flag(
                    "error",
                    self.rel,
                    line,
                    "stream-with-context",
                    "`stream_with_context(...)`: Quart's wraps only an async generator; make the "
                    "generator `async def` (its body runs on a thread pool otherwise)",
                )
            )
        if name == "threading.local" or (name == "local" and self.threading_local):
            self.flags.append(
                Flag(
                    "error",
                    self.rel,
                    line,
                    "thread-local",
                    "a thread-local: under Quart every request runs on the event loop's one thread, "
                    "so it is shared by concurrent requests; use `g` or a `contextvars.ContextVar`",
                )
            )

    def _in_request_class(self) -> bool:
        f = self.func()
        if f is None or f.cls is None:
            return False
        for base in self.classes.get(f.cls, []):
            head, _, rest = base.partition(".")
            q = self.flask_names.get(head)
            if q and (f"{q}.{rest}" if rest else q) in ("flask.Request", "flask.wrappers.Request"):
                return True
        return False

    def _enclosing(self) -> list[Func]:
        return [item for item in self._stack if isinstance(item, Func)]

    def _is_client(self, node: cst.BaseExpression) -> bool:
        if (
            isinstance(node, cst.Call)
            and isinstance(node.func, cst.Attribute)
            and node.func.attr.value == "test_client"
        ):
            return True
        if isinstance(node, cst.Name):
            f = self.func()
            while f is not None:
                if node.value in getattr(f, "_clients", set()):
                    return True
                f = f.parent
            return self.test_file and node.value == "client"
        return False

    def _arg(self, call: cst.Call, index: int, keyword: str) -> cst.BaseExpression | None:
        positional = [a for a in call.args if a.keyword is None and not a.star]
        for a in call.args:
            if a.keyword is not None and a.keyword.value == keyword:
                return a.value
        if len(positional) > index:
            return positional[index].value
        return None

    def _mark_handled(self, node: cst.BaseExpression) -> None:
        if isinstance(node, cst.Name):
            self._handled_refs.add(id(node))
        elif isinstance(node, cst.Attribute):
            self._handled_refs.add(id(node.attr))
            self._handled_refs.add(id(node))

    def _role(self, node: cst.BaseExpression, role: str, line: int) -> None:
        target = node
        # Data.as_view("data"): the class's methods are views already (MethodView)
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and node.func.attr.value == "as_view":
            return
        r = self.ref(target)
        if r is not None:
            self.role_refs.append((r, role, line))
            self._mark_handled(target)
        elif isinstance(node, cst.Lambda):
            self.flags.append(
                Flag(
                    "warning",
                    self.rel,
                    line,
                    "sync-hook",
                    f"a lambda registered as a {role}: it stays synchronous (Quart runs it on a "
                    "thread pool); write it as an `async def`",
                )
            )

    def _await(self, node: cst.CSTNode, why: str, line: int) -> None:
        parent = self.parent(node)
        if isinstance(parent, cst.Await):
            return  # already awaited (a Quart source: the rewrite is idempotent)
        f = self.func()
        if f is None:
            self.top_awaits.append((node, why, line))
            return
        barrier = self.barrier()
        if barrier:
            self.flags.append(
                Flag(
                    "error",
                    self.rel,
                    line,
                    "await-in-sync",
                    f"{why}, but it is inside {barrier}, which cannot await: rewrite it as a loop "
                    "or a helper `async def`",
                )
            )
            return
        f.awaits.append((node, why, line))

    def visit_Attribute(self, node: cst.Attribute) -> None:
        q = self.qualify(node)
        line = self.line(node)
        if q in AWAITABLE_ATTRIBUTES:
            parent = self.parent(node)
            if isinstance(parent, cst.Call) and parent.func is node:
                return
            if isinstance(parent, (cst.AssignTarget, cst.Del)):
                return
            self._await(node, f"`{q.removeprefix('flask.')}` is awaitable in Quart", line)
        elif q == "flask.request.stream":
            self.flags.append(
                Flag(
                    "error",
                    self.rel,
                    line,
                    "request-stream",
                    "`request.stream`: Quart has no synchronous body stream; read it with "
                    "`async for chunk in request.body` (or `await request.get_data()`)",
                )
            )
        elif q in ("flask.request.max_content_length",):
            parent = self.parent(node)
            if isinstance(parent, cst.AssignTarget):
                self.flags.append(
                    Flag(
                        "warning",
                        self.rel,
                        line,
                        "body-limit",
                        "`request.max_content_length = ...`: Quart sizes the request body when the "
                        "request is made (MAX_CONTENT_LENGTH); setting it in a view or hook changes "
                        "nothing for the body: count the bytes yourself or set the config",
                    )
                )
        elif q in ("flask.request.environ", "flask.request.input_stream"):
            self.flags.append(
                Flag(
                    "error",
                    self.rel,
                    line,
                    "wsgi-environ",
                    f"`{q.removeprefix('flask.')}`: a Quart request has no WSGI environ; use "
                    "`request.scope` (ASGI) or the request's own attributes",
                )
            )
        elif (
            isinstance(node.value, cst.Name)
            and node.value.value == "self"
            and node.attr.value == "environ"
            and self._in_request_class()
            and self.func() not in self._environ_flagged
        ):
            self._environ_flagged.append(self.func())
            self.flags.append(
                Flag(
                    "warning",
                    self.rel,
                    line,
                    "wsgi-environ",
                    "a Request subclass reads the WSGI environ: Quart's request has none and never "
                    "calls this code (what it adds to Flask's request, e.g. a body stream, is lost)",
                )
            )
        elif (
            isinstance(node.value, cst.Name)
            and node.value.value in ("app", "application")
            and node.attr.value == "wsgi_app"
        ):
            parent = self.parent(node)
            if isinstance(parent, cst.AssignTarget):
                self.flags.append(
                    Flag(
                        "error",
                        self.rel,
                        line,
                        "wsgi-middleware",
                        "`app.wsgi_app = ...`: WSGI middleware cannot wrap an ASGI app; use "
                        "`app.asgi_app = ...` with ASGI middleware",
                    )
                )

    def visit_Name(self, node: cst.Name) -> None:
        if id(node) in self._handled_refs:
            return
        parent = self.parent(node)
        if isinstance(
            parent,
            (cst.FunctionDef, cst.ClassDef, cst.Param, cst.ImportAlias, cst.Attribute, cst.AssignTarget, cst.Arg),
        ) and not (isinstance(parent, cst.Arg) and parent.value is node):
            return
        if isinstance(parent, cst.Attribute) and parent.value is not node:
            return
        if isinstance(parent, cst.Attribute):
            return
        f = self.func()
        if f is None:
            return
        # a function of the project passed as a value (a callback, a thread target)
        self.value_refs.append((("name", node.value, f, f.cls), self.line(node)))

    def visit_With(self, node: cst.With) -> None:
        f = self.func()
        if f is None:
            return
        for item in node.items:
            expr = item.item
            if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute):
                method = expr.func.attr.value
                target = item.asname.name if item.asname else None
                if method in ("open_resource", "open_instance_resource"):
                    f.async_withs.append(node)
                    if isinstance(target, cst.Name):
                        f.__dict__.setdefault("_aio_files", set()).add(target.value)
                elif method == "test_client":
                    f.async_withs.append(node)
                    if isinstance(target, cst.Name):
                        f.__dict__.setdefault("_clients", set()).add(target.value)

    def visit_Assign(self, node: cst.Assign) -> None:
        f = self.func()
        if f is None or len(node.targets) != 1 or not isinstance(node.targets[0].target, cst.Name):
            return
        value = node.value
        if (
            isinstance(value, cst.Call)
            and isinstance(value.func, cst.Attribute)
            and value.func.attr.value == "test_client"
        ):
            f.__dict__.setdefault("_clients", set()).add(node.targets[0].target.value)


# ====================================================================== the whole project


@dataclass
class Plan:
    """What the rewrite does, node by node (keyed by ``id()`` of the parsed nodes)."""

    make_async: dict[int, list[str]] = field(default_factory=dict)  # FunctionDef id -> reasons
    await_nodes: dict[int, str] = field(default_factory=dict)  # Call/Attribute id -> reason
    async_withs: set[int] = field(default_factory=set)
    add_appcontext: set[int] = field(default_factory=set)  # FunctionDef ids of CLI commands
    flags: list[Flag] = field(default_factory=list)
    functions: dict[str, Func] = field(default_factory=dict)
    async_keys: dict[str, list[str]] = field(default_factory=dict)  # func key -> reasons, for the report
    scans: dict[str, ModuleScan] = field(default_factory=dict)


def scan(project: Project) -> dict[str, ModuleScan]:
    scans = {}
    names = set(project.modules)
    for name, module in project.modules.items():
        wrapper = MetadataWrapper(module.tree, unsafe_skip_copy=True)
        test_file = module.rel.name.startswith("test_") or module.rel.name == "conftest.py"
        s = ModuleScan(name, module.package, names, str(module.rel), test_file)
        wrapper.visit(s)
        scans[name] = s
    return scans


def analyse(project: Project) -> Plan:
    scans = scan(project)
    plan = Plan(scans=scans)
    funcs: dict[str, Func] = {}
    for s in scans.values():
        plan.flags.extend(s.flags)
        for f in s.functions:
            funcs[f.key] = f
    plan.functions = funcs
    classes: dict[str, list[str]] = {}
    methods: dict[str, dict[str, Func]] = {}
    for s in scans.values():
        classes.update(s.classes)
        methods.update(s.class_methods)

    def resolve(r: tuple, scan_: ModuleScan) -> Func | None:
        kind = r[0]
        if kind == "name":
            _, n, scope, cls = r
            f = scope
            while f is not None:
                if n in f.local_defs:
                    return f.local_defs[n]
                f = f.parent
            if n in scan_.module_defs:
                return scan_.module_defs[n]
            target = scan_.project_names.get(n)
            if target and ":" in target:
                mod, _, fn = target.partition(":")
                other = scans.get(mod)
                if other is not None:
                    if fn in other.module_defs:
                        return other.module_defs[fn]
                    return resolve(("name", fn, None, None), other) if fn in other.project_names else None
            return None
        if kind == "mod":
            _, mod, n = r
            other = scans.get(mod)
            return other.module_defs.get(n) if other else None
        if kind == "self":
            _, cls, n = r
            seen = set()
            while cls and cls not in seen:
                seen.add(cls)
                if n in methods.get(cls, {}):
                    return methods[cls][n]
                cls = _project_base(cls)
            return None
        return None

    def _project_base(cls_key: str) -> str | None:
        mod = cls_key.split(":", 1)[0]
        s = scans.get(mod)
        for base in classes.get(cls_key, []):
            if s is None:
                continue
            cand = f"{mod}:{base}"
            if cand in classes:
                return cand
            target = s.project_names.get(base)
            if target and ":" in target:
                cand = target
                if cand in classes:
                    return cand
        return None

    def class_is(cls_key: str, bases: set[str], seen: set[str] | None = None) -> bool:
        seen = seen or set()
        if cls_key in seen:
            return False
        seen.add(cls_key)
        mod = cls_key.split(":", 1)[0]
        s = scans[mod]
        for base in classes.get(cls_key, []):
            head, _, rest = base.partition(".")
            q = s.flask_names.get(head)
            if q is not None:
                full = f"{q}.{rest}" if rest else q
                if full in bases:
                    return True
        parent = _project_base(cls_key)
        return parent is not None and class_is(parent, bases, seen)

    reasons: dict[str, list[str]] = {}
    sync_why: dict[str, tuple[str, int]] = {}

    def want(f: Func, why: str) -> None:
        reasons.setdefault(f.key, [])
        if why not in reasons[f.key]:
            reasons[f.key].append(why)

    for s in scans.values():
        for f in s.functions:
            if f.stay_sync:
                sync_why[f.key] = (f.stay_sync, f.line)
            if f.originally_async:
                want(f, "already async")
            for role in f.roles:
                if role == "view":
                    want(f, "a view (Quart awaits it)")
                elif role == "hook":
                    want(f, "a request hook or error handler (Quart awaits it; a sync one runs on a thread pool)")
            if f.awaits:
                want(f, f.awaits[0][1])
            if f.makes_app:
                sync_why.setdefault(f.key, ("the app factory (called synchronously by the server)", f.line))
        for r, role, line in s.role_refs:
            f = resolve(r, s)
            if f is None:
                s.flags.append(
                    Flag(
                        "warning",
                        s.rel,
                        line,
                        "sync-hook",
                        f"a {role} registered here is not a function of the project: it stays as it is "
                        "(a sync one runs on Quart's thread pool)",
                    )
                )
                plan.flags.append(s.flags[-1])
                continue
            want(
                f,
                "a view (Quart awaits it)"
                if role == "view"
                else "a request hook or error handler (Quart awaits it; a sync one runs on a thread pool)",
            )
        for r, why, line in s.sync_refs:
            f = resolve(r, s)
            if f is not None:
                sync_why.setdefault(f.key, (why, line))
        for r, _line in s.cli_refs:
            f = resolve(r, s)
            if f is not None and "cli" in f.roles:
                f.roles.append("cli-registered")
        # view and session classes
        for cls_key, meths in s.class_methods.items():
            if class_is(cls_key, VIEW_BASES):
                for n, f in meths.items():
                    if n in VIEW_METHODS:
                        want(f, "a view method of a MethodView (Quart awaits it)")
                        f.decorators.extend(s.class_decorators.get(cls_key, []))
            if class_is(cls_key, SESSION_BASES):
                for n, f in meths.items():
                    if n in SESSION_METHODS:
                        want(f, "a session interface method (Quart awaits it)")

    # decorators that wrap a view: their wrapper becomes async and awaits the view
    wrapper_of: dict[str, str] = {}
    changed = True
    while changed:
        changed = False
        for s in scans.values():
            for f in s.functions:
                if f.key not in reasons or f.stay_sync and f.key in sync_why:
                    continue
                for r, _line in f.decorators:
                    d = resolve(r, s)
                    if d is None:
                        continue
                    for w in _wrappers(d):
                        if w.key not in wrapper_of:
                            wrapper_of[w.key] = f.key
                            want(w, f"the wrapper `{d.name}` puts around a view (it must await the view)")
                            changed = True

    # propagation: a function that calls an async function of the project awaits it
    callers: dict[str, list[tuple[Func | None, cst.Call, int, str | None, ModuleScan]]] = {}
    for s in scans.values():
        for f in s.functions:
            for r, node, line, barrier in f.calls:
                g = resolve(r, s)
                if g is not None:
                    callers.setdefault(g.key, []).append((f, node, line, barrier, s))
        for r, node, line, where in s.top_calls:
            g = resolve(r, s)
            if g is not None:
                callers.setdefault(g.key, []).append((None, node, line, where, s))
    queue = list(reasons)
    seen_q = set()
    call_awaits: list[tuple[str, int, str]] = []  # (caller, call node id, why): applied if the caller is async
    while queue:
        key = queue.pop()
        if key in seen_q:
            continue
        seen_q.add(key)
        g = funcs[key]
        if key in sync_why and not g.originally_async:
            continue  # flagged below, not spread
        if g.originally_async:
            continue  # the source calls it as it wants: awaited, or its coroutine handed on
        for caller, node, line, barrier, s in callers.get(key, []):
            if key in wrapper_of and caller is not None and caller.key == wrapper_of[key]:
                continue
            if caller is None:
                plan.flags.append(
                    Flag(
                        "error",
                        s.rel,
                        line,
                        "await-in-sync",
                        f"`{g.name}()` becomes a coroutine ({reasons[key][0]}) but {barrier} calls it; "
                        "call it from an async function (or `asyncio.run` it)",
                    )
                )
                continue
            if barrier:
                plan.flags.append(
                    Flag(
                        "error",
                        s.rel,
                        line,
                        "await-in-sync",
                        f"`{g.name}()` becomes a coroutine but is called inside {barrier}, which cannot await",
                    )
                )
                continue
            call_awaits.append((caller.key, id(node), f"`{g.name}()` is async ({reasons[key][0]})"))
            if caller.key not in reasons:
                want(caller, f"calls `{g.name}()`, which is async")
                queue.append(caller.key)
            elif caller.key not in seen_q:
                queue.append(caller.key)

    # what must stay sync but would have to await: flagged, left as it is
    for key, (why, _line) in sync_why.items():
        f = funcs[key]
        if key in reasons and not f.originally_async:
            s = scans[f.module]
            real = [r for r in reasons[key] if not r.startswith("a view") and not r.startswith("a request hook")]
            roles = [r for r in reasons[key] if r not in real]
            if real or roles:
                plan.flags.append(
                    Flag(
                        "error",
                        s.rel,
                        f.line,
                        "await-in-sync",
                        f"`{f.name}` is {why} but would have to be async ({(real or roles)[0]}): left synchronous",
                    )
                )
            reasons.pop(key)

    # direct awaitables of the async functions, and their calls of the project's async functions
    for caller_key, node_id, why in call_awaits:
        if caller_key in reasons:
            plan.await_nodes[node_id] = why
    for key, why in reasons.items():
        f = funcs[key]
        plan.make_async[id(f.node)] = why
        plan.async_keys[key] = why
        for node, reason, _line in f.awaits:
            plan.await_nodes[id(node)] = reason
        for w in f.async_withs:
            plan.async_withs.add(id(w))
        for name, node in f.param_calls:
            if key in wrapper_of:
                plan.await_nodes[id(node)] = f"the wrapped view `{name}` is async"
        if f.is_generator and not f.originally_async:
            s = scans[f.module]
            plan.flags.append(
                Flag(
                    "error",
                    s.rel,
                    f.line,
                    "generator-response",
                    f"`{f.name}` is a generator that must become async ({why[0]}): an async "
                    "generator is iterated with `async for`; port the streaming by hand",
                )
            )
    # functions that keep awaitables but stay sync (flagged above), and awaitables at module level
    for key, f in funcs.items():
        if key not in reasons and f.awaits:
            s = scans[f.module]
            for _node, why, line in f.awaits:
                plan.flags.append(
                    Flag(
                        "error",
                        s.rel,
                        line,
                        "await-in-sync",
                        f"{why}, but `{f.name}` stays synchronous ({sync_why.get(key, ('?',))[0]})",
                    )
                )
    for s in scans.values():
        for _node, why, line in s.top_awaits:
            plan.flags.append(Flag("error", s.rel, line, "await-in-sync", f"{why}, at module level: cannot await"))
        # generators returned as responses from views (their body runs on a thread pool in Quart)
        for f in s.functions:
            if f.is_generator and f.parent is not None and f.parent.key in reasons and f.key not in reasons:
                plan.flags.append(
                    Flag(
                        "error",
                        s.rel,
                        f.line,
                        "generator-response",
                        f"`{f.name}` is a generator inside the view `{f.parent.name}`: as a response "
                        "body Quart iterates it on a thread pool (no request context); make it an "
                        "`async def` generator",
                    )
                )
        # CLI commands: Quart's need @with_appcontext to reach current_app / g
        for f in s.functions:
            if "cli-registered" in f.roles and not _has_appcontext(f.node):
                plan.add_appcontext.add(id(f.node))
        # a project function passed as a value that became async
        for r, line in s.value_refs:
            g = resolve(r, s)
            if g is not None and g.key in reasons and not g.originally_async and g.key not in wrapper_of:
                if any(g.key == resolve(rr, s).key if resolve(rr, s) else False for rr, _, _ in s.role_refs):
                    continue
                plan.flags.append(
                    Flag(
                        "warning",
                        s.rel,
                        line,
                        "async-callback",
                        f"`{g.name}` becomes async and is passed here as a value: whatever calls it "
                        "gets a coroutine; check that it awaits it",
                    )
                )
        tests = [
            f
            for f in s.functions
            if s.test_file and f.name.startswith("test") and f.key in reasons and not f.originally_async
        ]
        if tests:
            plan.flags.append(
                Flag(
                    "warning",
                    s.rel,
                    tests[0].line,
                    "async-tests",
                    f"{len(tests)} test function(s) become async: run them with pytest-asyncio "
                    '(`asyncio_mode = "auto"`) and Quart\'s test client',
                )
            )
        if s.sqlite:
            for f in s.functions:
                if f.key in sync_why and "hook" in f.roles:
                    plan.flags.append(
                        Flag(
                            "error",
                            s.rel,
                            f.line,
                            "thread-bound",
                            f"`{f.name}` stays a sync hook in a module using sqlite3: Quart runs it "
                            "on a thread pool and a connection made there cannot be used elsewhere",
                        )
                    )
    plan.flags = _dedupe(plan.flags)
    return plan


def _wrappers(d: Func) -> list[Func]:
    """The nested functions of decorator ``d`` that call what ``d`` (or its inner decorator) wraps."""
    out = []

    def walk(f: Func) -> None:
        for inner in f.local_defs.values():
            if inner.param_calls:
                out.append(inner)
            walk(inner)

    walk(d)
    return out


def _has_appcontext(node: cst.FunctionDef) -> bool:
    for dec in node.decorators:
        expr = dec.decorator.func if isinstance(dec.decorator, cst.Call) else dec.decorator
        name = dotted(expr) or ""
        if name.endswith("with_appcontext"):
            return True
    return False


def _dedupe(flags: list[Flag]) -> list[Flag]:
    seen = set()
    out = []
    for f in flags:
        k = (f.file, f.line, f.code, f.message)
        if k not in seen:
            seen.add(k)
            out.append(f)
    return sorted(out, key=lambda f: (f.file, f.line, f.code))


__all__ = ["Plan", "Func", "ModuleScan", "analyse", "scan", "MODULES", "dotted"]
