"""The small support module a port may need (``_porter.py``, written beside the package), and
what the project's templates read from ``request``.

Two Flask things have no one-line Quart spelling: ``send_file(..., etag="<value>")`` (Quart
0.22 takes only ``add_etags``), and templates reading ``request.form`` (an awaitable in Quart,
which Jinja cannot await: ``request.form['title']`` silently renders empty). For those the
rewrite calls ``_porter.send_file`` / ``_porter.send_from_directory`` (Flask's arguments on
Quart's function) and installs ``_porter.request_in_templates(app, "form", ...)``, a context
processor giving templates a ``request`` whose form is already read. Nothing else of Flask's
behaviour is imitated: what Quart answers otherwise is for the compat suite to report.
"""

from __future__ import annotations

import re
from pathlib import Path

import libcst as cst

from .project import Project

TEMPLATE_READS = ("form", "files", "values", "data", "json")
_TEMPLATE_RE = re.compile(r"\brequest\s*\.\s*(form|files|values|data|json|get_json)\b")
TEMPLATE_SUFFIXES = {".html", ".htm", ".jinja", ".jinja2", ".j2", ".txt", ".xml", ".svg"}

SUPPORT_SOURCE = '''"""Written by hostpulse-port: what the Quart port of this project needs that Quart 0.22 has no
one-line spelling for. Safe to edit; the porter rewrites nothing here.

- ``send_file`` / ``send_from_directory`` with Flask's arguments (``etag="<value>"``,
  ``download_name``, ``max_age``, ``conditional=True`` by default) on Quart's functions;
- ``request_in_templates(app, "form", ...)``: templates read ``request.form`` (and files,
  values, data, json) as in Flask, where Quart's are awaitables Jinja cannot await.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import quart
from quart import has_request_context, request
from werkzeug.exceptions import NotFound
from werkzeug.security import safe_join


async def send_file(path_or_file: Any, mimetype: str | None = None, as_attachment: bool = False,
                    download_name: str | None = None, conditional: bool = True, etag: bool | str = True,
                    last_modified: Any = None, max_age: Any = None) -> quart.Response:
    """Flask's ``send_file`` arguments, answered by Quart's ``send_file``."""
    if callable(max_age):
        max_age = max_age(str(path_or_file))
    response = await quart.send_file(path_or_file, mimetype=mimetype, as_attachment=as_attachment,
                                     attachment_filename=download_name, add_etags=etag is True,
                                     cache_timeout=max_age, conditional=False, last_modified=last_modified)
    if isinstance(etag, str):
        response.set_etag(etag)
    if conditional:
        await response.make_conditional(request, accept_ranges=True, complete_length=response.content_length)
    return response


async def send_from_directory(directory: Any, path: str, **kwargs: Any) -> quart.Response:
    """Flask's ``send_from_directory``: ``path`` inside ``directory`` or 404."""
    joined = safe_join(str(directory), str(path))
    if joined is None or not Path(joined).is_file():
        raise NotFound()
    return await send_file(joined, **kwargs)


class TemplateRequest:
    """The request as Flask's templates see it: the body's ``form``, ``files``, ``values``,
    ``data`` and ``json`` already read, everything else the request's own."""

    def __init__(self, real: Any, loaded: dict[str, Any]) -> None:
        self._real = real
        self._loaded = loaded

    def __getattr__(self, name: str) -> Any:
        if name in self._loaded:
            return self._loaded[name]
        return getattr(self._real, name)


def request_in_templates(app: Any, *names: str) -> None:
    """Give templates a ``request`` whose ``names`` (``"form"``, ...) are already awaited."""

    async def read_request() -> dict[str, Any]:
        if not has_request_context():
            return {}
        loaded: dict[str, Any] = {}
        for name in names:
            if name == "json":
                loaded[name] = await request.get_json(silent=True)
            else:
                loaded[name] = await getattr(request, name)
        return {"request": TemplateRequest(request._get_current_object(), loaded)}

    app.context_processor(read_request)
'''


def template_reads(project: Project) -> list[str]:
    """What the templates read from ``request`` that Quart makes awaitable, in a stable order."""
    found: set[str] = set()
    for rel in project.templates():
        if rel.suffix.lower() not in TEMPLATE_SUFFIXES:
            continue
        try:
            text = (project.base / rel).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        for m in _TEMPLATE_RE.finditer(text):
            found.add("json" if m.group(1) == "get_json" else m.group(1))
    return [n for n in TEMPLATE_READS if n in found]


def template_lines(project: Project) -> list[tuple[str, int, str]]:
    """(file, line, attribute) of each such read, for the report."""
    out = []
    for rel in project.templates():
        try:
            lines = (project.base / rel).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            continue
        for i, line in enumerate(lines, 1):
            for m in _TEMPLATE_RE.finditer(line):
                out.append((str(rel), i, m.group(1)))
    return out


class InstallTemplateRequest(cst.CSTTransformer):
    """After ``app = Quart(...)``: ``_porter.request_in_templates(app, "form")`` (once)."""

    def __init__(self, names: list[str], support: str) -> None:
        super().__init__()
        self.names = names
        self.support = support
        self.installed = False

    def _app_target(self, stmt: cst.BaseStatement) -> str | None:
        if not isinstance(stmt, cst.SimpleStatementLine) or len(stmt.body) != 1:
            return None
        small = stmt.body[0]
        if not isinstance(small, cst.Assign) or len(small.targets) != 1:
            return None
        target = small.targets[0].target
        value = small.value
        if not isinstance(target, cst.Name) or not isinstance(value, cst.Call):
            return None
        func = value.func
        name = func.value if isinstance(func, cst.Name) else func.attr.value if isinstance(func, cst.Attribute) else ""
        return target.value if name == "Quart" else None

    def _is_install(self, stmt: cst.BaseStatement) -> bool:
        return (
            isinstance(stmt, cst.SimpleStatementLine)
            and len(stmt.body) == 1
            and isinstance(stmt.body[0], cst.Expr)
            and isinstance(stmt.body[0].value, cst.Call)
            and isinstance(stmt.body[0].value.func, cst.Attribute)
            and stmt.body[0].value.func.attr.value == "request_in_templates"
        )

    def _insert(self, body: list[cst.BaseStatement]) -> list[cst.BaseStatement]:
        out: list[cst.BaseStatement] = []
        for stmt in body:
            out.append(stmt)
            app = self._app_target(stmt)
            if app is None:
                continue
            if any(self._is_install(s) for s in body):
                self.installed = True
                continue
            args = ", ".join([app] + [f'"{n}"' for n in self.names])
            comment = "  # templates read request." + "/".join(self.names) + " as in Flask (hostpulse-port)"
            out.append(cst.parse_statement(f"{self.support}.request_in_templates({args}){comment}\n"))
            self.installed = True
        return out

    def leave_IndentedBlock(self, original: cst.IndentedBlock, updated: cst.IndentedBlock) -> cst.IndentedBlock:
        return updated.with_changes(body=self._insert(list(updated.body)))

    def leave_Module(self, original: cst.Module, updated: cst.Module) -> cst.Module:
        return updated.with_changes(body=self._insert(list(updated.body)))


def write_support(folder: Path) -> Path:
    path = folder / "_porter.py"
    path.write_text(SUPPORT_SOURCE, encoding="utf-8")
    return path
