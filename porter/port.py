"""The port of a whole project: analyse it, rewrite every module, copy the other files, and
write the result into DEST (nothing else is written)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import libcst as cst

from . import support
from .awaitables import Plan, analyse, dotted
from .flags import Flag
from .project import Module, Project, copy_others, load
from .transform import SUPPORT, rewrite


class PortError(Exception):
    """The port cannot be written: one line saying why."""


@dataclass
class PortResult:
    project: Project
    plan: Plan
    dest: Path
    flags: list[Flag] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # modules whose source changed
    support: Path | None = None
    template_reads: list[str] = field(default_factory=list)
    app: str | None = None  # "module:attr" of the app (factory or object), as DEST imports it

    @property
    def errors(self) -> list[Flag]:
        return [f for f in self.flags if f.severity == "error"]


def find_app(project: Project, plan: Plan) -> str | None:
    """``module:factory`` of the function that makes the app, else ``module:name`` of a
    module-level app object; ``create_app`` and the package's ``__init__`` first."""
    factories: list[tuple[int, str]] = []
    for module in project.modules.values():
        for f in plan.scans[module.name].functions:
            if f.makes_app and f.parent is None and f.cls is None:
                rank = (0 if f.name in ("create_app", "make_app") else 1) * 10 + (0 if module.is_package else 1)
                factories.append((rank, f"{module.name}:{f.name}"))
        for name in _app_objects(module):
            factories.append((20 + (0 if module.is_package else 1), f"{module.name}:{name}"))
    return min(factories)[1] if factories else None


def _app_objects(module: Module) -> list[str]:
    """Names bound at module level to ``Flask(...)`` / ``Quart(...)``."""
    out = []
    for stmt in module.tree.body:
        if isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                if (
                    isinstance(small, cst.Assign)
                    and isinstance(small.value, cst.Call)
                    and len(small.targets) == 1
                    and isinstance(small.targets[0].target, cst.Name)
                ):
                    name = (dotted(small.value.func) or "").rpartition(".")[2]
                    if name in ("Flask", "Quart"):
                        out.append(small.targets[0].target.value)
    return out


def _support_home(project: Project, app: str | None) -> tuple[Path, str | None]:
    """Where ``_porter.py`` goes (relative to DEST) and the top package that imports it
    relatively (None: imported as a top-level module)."""
    top = (app or "").split(":")[0].split(".")[0]
    if top and top in project.modules and project.modules[top].is_package:
        return Path(top), top
    return Path("."), None


def _support_level(module: Module, top: str | None) -> int | None:
    if top is None or not (module.name == top or module.name.startswith(top + ".")):
        return None
    return len(module.package.split("."))


def port(src: str | Path, dest: str | Path, *, force: bool = False) -> PortResult:
    project = load(src)
    dest = Path(dest).resolve()
    if dest.exists() and any(dest.iterdir()) and not force:
        raise PortError(f"{dest} exists and is not empty (--force writes into it)")
    if dest == project.base or project.base in dest.parents and project.kind == "folder":
        raise PortError(f"{dest} is inside the project being ported")
    plan = analyse(project)
    app = find_app(project, plan)
    reads = support.template_reads(project)
    home, top = _support_home(project, app)
    result = PortResult(project=project, plan=plan, dest=dest, app=app, template_reads=reads)
    result.flags.extend(plan.flags)
    outputs: dict[Path, str] = {}
    uses_support = False
    app_module = app.split(":")[0] if app else None
    for module in project.modules.values():
        level = _support_level(module, top)
        code, flags, used = rewrite(module, plan, level)
        result.flags.extend(flags)
        uses_support |= used
        if reads and module.name == app_module:
            tree = cst.parse_module(code)
            installer = support.InstallTemplateRequest(reads, SUPPORT)
            tree = tree.visit(installer)
            if installer.installed:
                if tree.code != code:
                    code = _import_support(tree, level)
                uses_support = True
        if code != module.source:
            result.changed.append(str(module.rel))
        outputs[module.rel] = code
    if reads and not any(f.code == "template-request" for f in result.flags):
        for file, line, attr in support.template_lines(project):
            result.flags.append(
                Flag(
                    "warning",
                    file,
                    line,
                    "template-request",
                    f"the template reads `request.{attr}`, awaitable in Quart: templates now get a "
                    "request whose body is read first (`_porter.request_in_templates`)",
                )
            )
    dest.mkdir(parents=True, exist_ok=True)
    for rel, code in outputs.items():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(code, encoding="utf-8")
    copy_others(project, dest)
    support_path = dest / home / "_porter.py"
    if uses_support and not (project.base / home / "_porter.py").exists():
        support_path.parent.mkdir(parents=True, exist_ok=True)
        result.support = support.write_support(support_path.parent)
    elif uses_support:
        result.support = support_path
    result.flags = sorted(set(result.flags), key=lambda f: (f.file, f.line, f.code, f.message))
    return result


def _import_support(tree: cst.Module, level: int | None) -> str:
    from libcst.codemod import CodemodContext
    from libcst.codemod.visitors import AddImportsVisitor

    ctx = CodemodContext()
    if level is None:
        AddImportsVisitor.add_needed_import(ctx, SUPPORT)
    else:
        AddImportsVisitor.add_needed_import(ctx, "", SUPPORT, relative=level)
    return AddImportsVisitor(ctx).transform_module(tree).code


def remove(dest: Path) -> None:
    shutil.rmtree(dest, ignore_errors=True)
