"""The libcst rewrite of one module, as the project's :class:`~.awaitables.Plan` says.

Only what must change is touched, so comments and formatting stay: an import's module and
names (``flask`` -> ``quart``, ``Flask`` -> ``Quart``, the Werkzeug objects Quart replaces),
``async`` on the functions the plan names, ``await`` (in parentheses where an attribute, an
index or a call follows) on the expressions it names, ``async with`` for ``open_resource``
and test clients, ``send_file`` keyword arguments in Quart's spelling, ``@with_appcontext``
on CLI commands, and the few lines that hand the project's templates a ``request`` whose
form is already read. Run on its own output it changes nothing.
"""

from __future__ import annotations

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor

from .awaitables import Plan, dotted
from .flags import Flag
from .imports import MODULES, QUART_TOP, RENAMED, WERKZEUG, WSGI_ONLY
from .project import Module

SUPPORT = "_porter"  # the support module written beside the package when a rewrite needs it

# Flask's send_file/send_from_directory keywords -> Quart 0.22's
SEND_FILE_KEYWORDS = {
    "download_name": "attachment_filename",
    "max_age": "cache_timeout",
    "path": "file_name",
    "filename": "file_name",
}


class Rewrite(cst.CSTTransformer):
    def __init__(self, module: Module, plan: Plan, support_level: int | None) -> None:
        super().__init__()
        self.module = module
        self.plan = plan
        self.scan = plan.scans[module.name]
        self.rel = str(module.rel)
        self.support_level = support_level  # relative level of ``from . import _porter`` (None: absolute)
        self.renames: dict[str, str] = {}  # local names that change (Flask -> Quart, flask -> quart)
        self.flags: list[Flag] = []
        self.needs: list[tuple[str, str | None, int]] = []  # imports to add: (module, obj, relative)
        self.uses_support = False
        self._in_import = 0
        self._moved: dict[int, cst.ImportFrom] = {}  # an import split in two: the new half, by the old's id

    # ------------------------------------------------------------------ imports

    def visit_Import(self, node: cst.Import) -> None:
        self._in_import += 1

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        self._in_import += 1

    def leave_SimpleStatementLine(
        self, original: cst.SimpleStatementLine, updated: cst.SimpleStatementLine
    ) -> cst.SimpleStatementLine | cst.FlattenSentinel[cst.SimpleStatementLine]:
        """An import split in two (Werkzeug names Quart replaces) becomes two lines, the comment on the first."""
        moved = [self._moved.pop(id(small)) for small in original.body if id(small) in self._moved]
        if not moved:
            return updated
        return cst.FlattenSentinel([updated, *[cst.SimpleStatementLine(body=[m]) for m in moved]])

    def leave_Import(self, original: cst.Import, updated: cst.Import) -> cst.Import:
        self._in_import -= 1
        names = []
        for alias in updated.names:
            name = dotted(alias.name) or ""
            if name == "flask" or name.startswith("flask."):
                new = MODULES.get(name)
                if new is None:
                    self._flag("error", original, "flask-module", f"`import {name}`: Quart has no such module")
                    names.append(alias)
                    continue
                if alias.asname is None:
                    self.renames["flask"] = "quart"
                names.append(alias.with_changes(name=_dotted_expr(new)))
            else:
                if name in WSGI_ONLY or name.split(".")[0:2] == ["werkzeug", "middleware"]:
                    self._flag(
                        "warning",
                        original,
                        "wsgi-only",
                        f"`import {name}`: {WSGI_ONLY.get(name, WSGI_ONLY['werkzeug.middleware'])}",
                    )
                names.append(alias)
        return updated.with_changes(names=names)

    def leave_ImportFrom(self, original: cst.ImportFrom, updated: cst.ImportFrom) -> cst.ImportFrom:
        self._in_import -= 1
        if updated.relative or updated.module is None:
            return updated
        mod = dotted(updated.module) or ""
        if mod in WSGI_ONLY:
            self._flag("warning", original, "wsgi-only", f"`from {mod} import ...`: {WSGI_ONLY[mod]}")
            return updated
        if mod.startswith("werkzeug") and not isinstance(updated.names, cst.ImportStar):
            return self._werkzeug(original, updated, mod)
        if not (mod == "flask" or mod.startswith("flask.")):
            return updated
        new = MODULES.get(mod)
        if new is None:
            self._flag("error", original, "flask-module", f"`from {mod} import ...`: Quart has no such module")
            return updated
        if isinstance(updated.names, cst.ImportStar):
            return updated.with_changes(module=_dotted_expr(new))
        names = []
        for alias in updated.names:
            name = dotted(alias.name) or ""
            if name in RENAMED:
                if alias.asname is None:
                    self.renames[name] = RENAMED[name]
                alias = alias.with_changes(name=cst.Name(RENAMED[name]))
            elif new == "quart" and name not in QUART_TOP:
                self._flag("error", original, "flask-name", f"`{name}` is not exported by quart (0.22)")
            names.append(alias)
        return updated.with_changes(module=_dotted_expr(new), names=names)

    def _werkzeug(self, original: cst.ImportFrom, updated: cst.ImportFrom, mod: str) -> cst.ImportFrom:
        assert not isinstance(updated.names, cst.ImportStar)
        keep, move = [], []
        for alias in updated.names:
            name = dotted(alias.name) or ""
            if (mod, name) in WERKZEUG:
                move.append(
                    alias.with_changes(name=cst.Name(WERKZEUG[(mod, name)][1]), comma=cst.MaybeSentinel.DEFAULT)
                )
            else:
                keep.append(alias)
        if not move:
            return updated
        moved = cst.ImportFrom(module=cst.Name("quart"), names=_commas(move))
        if not keep:
            return updated.with_changes(module=cst.Name("quart"), names=_commas(move, updated.names))
        self._moved[id(original)] = moved
        return updated.with_changes(names=_commas(keep, keep))

    # ------------------------------------------------------------------ names

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.Name:
        new = self.renames.get(updated.value)
        if new is not None and not self._in_import and self._renamable(original):
            return updated.with_changes(value=new)
        return updated

    def _renamable(self, node: cst.Name) -> bool:
        parent = self.scan_parent(node)
        if isinstance(parent, cst.Attribute) and parent.attr is node:
            return False
        if isinstance(parent, cst.Arg) and parent.keyword is node:
            return False
        if isinstance(parent, (cst.ImportAlias,)):
            return False
        return True

    def scan_parent(self, node: cst.CSTNode) -> cst.CSTNode | None:
        return self._parents.get(node)

    # ------------------------------------------------------------------ async, await

    def leave_FunctionDef(self, original: cst.FunctionDef, updated: cst.FunctionDef) -> cst.FunctionDef:
        if id(original) in self.plan.make_async and updated.asynchronous is None:
            updated = updated.with_changes(asynchronous=cst.Asynchronous())
        if id(original) in self.plan.add_appcontext:
            updated = updated.with_changes(
                decorators=[*updated.decorators, cst.Decorator(decorator=cst.Name("with_appcontext"))]
            )
            self.needs.append(("quart.cli", "with_appcontext", 0))
        return updated

    def leave_With(self, original: cst.With, updated: cst.With) -> cst.With:
        if id(original) in self.plan.async_withs and updated.asynchronous is None:
            return updated.with_changes(asynchronous=cst.Asynchronous())
        return updated

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        q = self.scan.qualify(original.func)
        if q in ("flask.send_file", "flask.send_from_directory"):
            updated = self._send_file(original, updated, q)
        if isinstance(updated.func, cst.Await):
            updated = updated.with_changes(func=_paren(updated.func))
        if id(original) in self.plan.await_nodes:
            return cst.Await(expression=updated)
        return updated

    def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute) -> cst.BaseExpression:
        if isinstance(updated.value, cst.Await):
            updated = updated.with_changes(value=_paren(updated.value))
        if isinstance(original.value, cst.Name) and self.renames.get(original.value.value) == "quart":
            new = RENAMED.get(updated.attr.value)
            if new:
                updated = updated.with_changes(attr=cst.Name(new))
        if id(original) in self.plan.await_nodes:
            return cst.Await(expression=updated)
        return updated

    def leave_Subscript(self, original: cst.Subscript, updated: cst.Subscript) -> cst.Subscript:
        if isinstance(updated.value, cst.Await):
            return updated.with_changes(value=_paren(updated.value))
        return updated

    def _send_file(self, original: cst.Call, updated: cst.Call, q: str) -> cst.Call:
        args = []
        has_conditional = False
        needs_support = False
        for arg in updated.args:
            if arg.keyword is None:
                args.append(arg)
                continue
            key = arg.keyword.value
            if key == "conditional":
                has_conditional = True
            if key == "etag":
                value = arg.value
                if isinstance(value, cst.Name) and value.value == "True":
                    continue
                if isinstance(value, cst.Name) and value.value == "False":
                    args.append(arg.with_changes(keyword=cst.Name("add_etags")))
                    continue
                needs_support = True
                args.append(arg)
                continue
            if key in SEND_FILE_KEYWORDS and not (key in ("path", "filename") and q == "flask.send_file"):
                args.append(arg.with_changes(keyword=cst.Name(SEND_FILE_KEYWORDS[key])))
            else:
                args.append(arg)
        if needs_support:
            # Quart's send_file has no ``etag=<value>``: the support module's takes Flask's arguments
            self.uses_support = True
            return updated.with_changes(func=cst.Attribute(cst.Name(SUPPORT), cst.Name(q.rpartition(".")[2])))
        if q == "flask.send_file" and not has_conditional:
            # Flask's send_file is conditional (304, 206) by default, Quart's is not
            if args and args[-1].comma == cst.MaybeSentinel.DEFAULT:
                args[-1] = args[-1].with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
            args.append(
                cst.Arg(
                    keyword=cst.Name("conditional"),
                    value=cst.Name("True"),
                    equal=cst.AssignEqual(
                        whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")
                    ),
                )
            )
        return updated.with_changes(args=args)

    # ------------------------------------------------------------------ flags

    def _flag(self, severity: str, node: cst.CSTNode, code: str, message: str) -> None:
        self.flags.append(Flag(severity, self.rel, self._line(node), code, message))

    def _line(self, node: cst.CSTNode) -> int:
        return self._lines.get(node, 0)


def _paren(node: cst.BaseExpression) -> cst.BaseExpression:
    if node.lpar:
        return node
    return node.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])


def _dotted_expr(name: str) -> cst.Attribute | cst.Name:
    parts = name.split(".")
    expr: cst.Attribute | cst.Name = cst.Name(parts[0])
    for part in parts[1:]:
        expr = cst.Attribute(value=expr, attr=cst.Name(part))
    return expr


def _commas(aliases: list[cst.ImportAlias], like: object = None) -> list[cst.ImportAlias]:
    """``aliases`` separated by ", " with no trailing comma (the last keeps a trailing comma of ``like``)."""
    out = []
    for i, alias in enumerate(aliases):
        if i < len(aliases) - 1:
            comma = (
                alias.comma
                if isinstance(alias.comma, cst.Comma)
                else cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
            )
            out.append(alias.with_changes(comma=comma))
        else:
            out.append(alias.with_changes(comma=cst.MaybeSentinel.DEFAULT))
    return out


def rewrite(module: Module, plan: Plan, support_level: int | None) -> tuple[str, list[Flag], bool]:
    """The module's new source, the flags the rewrite raised, and whether it uses the support module."""
    from libcst.metadata import MetadataWrapper, ParentNodeProvider, PositionProvider

    wrapper = MetadataWrapper(module.tree, unsafe_skip_copy=True)
    parents = wrapper.resolve(ParentNodeProvider)
    positions = wrapper.resolve(PositionProvider)
    t = Rewrite(module, plan, support_level)
    t._parents = parents  # type: ignore[attr-defined]
    t._lines = {n: p.start.line for n, p in positions.items()}  # type: ignore[attr-defined]
    tree = module.tree.visit(t)
    if t.uses_support:
        if support_level is None:
            t.needs.append((SUPPORT, None, 0))
        else:
            t.needs.append(("", SUPPORT, support_level))
    if t.needs:
        ctx = CodemodContext()
        for mod, obj, level in t.needs:
            if obj is None:
                AddImportsVisitor.add_needed_import(ctx, mod)
            else:
                AddImportsVisitor.add_needed_import(ctx, mod, obj, relative=level)
        tree = AddImportsVisitor(ctx).transform_module(tree)
    return tree.code, t.flags, t.uses_support
