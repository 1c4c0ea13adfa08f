"""No import cycle among the project's modules: ``hostpulse/``, ``app/``, ``agent/`` and
``compat/``.

A cycle works until someone imports the modules in another order, then fails with a
half-initialised module; a late import inside a function only hides it (``settings.py``
importing ``auth`` inside a function while ``auth`` imported ``settings`` was one). So the
graph is read from the source with ``ast``: every import statement that can run counts, at
the top of a module or inside a function. Only those under ``if TYPE_CHECKING:`` do not:
they never run, so they cannot leave a module half-initialised (they are how an annotation
names a class without importing its module).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Every package of the repository, so a cycle passing through any of them is seen.
PACKAGES = ("hostpulse", "app", "agent", "compat")
# The modules that must not be on a cycle: all of them.
CHECKED = ("hostpulse", "app", "agent", "compat")
# Installed, app/, agent/ and compat/ are hostpulse.app, hostpulse.agent, hostpulse.compat.
INSTALLED = {f"hostpulse.{name}": name for name in ("app", "agent", "compat")}


def module_files() -> dict[str, tuple[Path, bool]]:
    """Module name -> (file, whether it is a package's ``__init__``), for the packages'
    importable modules (not the data folders holding example apps and job scripts)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if not all((ROOT.joinpath(*parts[:n]) / "__init__.py").exists() for n in range(1, len(parts))):
                continue  # a folder that is not a package (compat/corpus/scripts)
            is_package = parts[-1] == "__init__"
            found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def canonical(name: str) -> str:
    for installed, local in INSTALLED.items():
        if name == installed or name.startswith(installed + "."):
            return local + name[len(installed) :]
    return name


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def import_statements(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement below ``node`` that can run (not under ``if TYPE_CHECKING:``)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child
        elif isinstance(child, ast.If) and _type_checking(child.test):
            for other in child.orelse:
                yield from import_statements(ast.Module(body=[other], type_ignores=[]))
        else:
            yield from import_statements(child)


def imported(module: str, path: Path, is_package: bool, known: Mapping[str, object]) -> set[str]:
    """The known modules ``module`` imports, anywhere in its source."""
    package = module if is_package else module.rpartition(".")[0]
    found = set()
    for node in import_statements(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [canonical(alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = canonical(node.module or "")
            # ``from package import module`` imports the module; ``from module import name``
            # the module itself
            names = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in known else source for alias in node.names]
        found.update(name for name in names if name in known and name != module)
    return found


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    return {module: imported(module, path, is_package, files) for module, (path, is_package) in files.items()}


def cycles(graph: Mapping[str, set[str]]) -> Iterator[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()

    def visit(node: str) -> Iterator[list[str]]:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                yield from visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                yield sorted(component)

    for node in sorted(graph):
        if node not in index:
            yield from visit(node)


def checked(module: str) -> bool:
    return any(module == prefix or module.startswith(prefix + ".") for prefix in CHECKED)


def test_the_graph_is_read() -> None:
    graph = import_graph()
    assert {"hostpulse.settings", "hostpulse.auth", "app", "app.views.metrics", "compat.flask_app"} <= graph.keys()
    assert "hostpulse.settings" in graph["hostpulse.auth"]
    assert "app.requests" in graph["app.views.api"]  # a relative import (from ..requests import)
    assert "app.views.pages" in graph["app"]  # from .views import pages


def test_imports_that_run_are_read(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "import a\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import b\nelse:\n    import c\n"
        "def f():\n    from . import d\n    import e.f\nclass K:\n    def g(self):\n        import typing\n"
        "        if typing.TYPE_CHECKING:\n            import h\n"
    )
    known = {name: None for name in ("a", "b", "c", "p.d", "e.f", "h", "typing")}
    assert imported("p.m", source, False, known) == {"a", "c", "p.d", "e.f", "typing"}


def test_a_cycle_is_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert list(cycles(graph)) == [["a", "b", "c"]]
    assert list(cycles({"a": {"b"}, "b": set()})) == []


def test_no_import_cycle() -> None:
    found = [cycle for cycle in cycles(import_graph()) if any(map(checked, cycle))]
    assert found == [], f"import cycles (each a set of modules importing each other): {found}"
