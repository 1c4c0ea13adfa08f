"""The Flask project to port: its layout, its Python modules (parsed once with libcst), its
other files (templates, static files, SQL), and where DEST puts each of them.

SRC is a package folder (``flaskr/``, ``__init__.py`` inside), a folder holding one or more
(``flask_side/``), or a module file (``app.py``). DEST gets the same layout: the package as
``DEST/flaskr/``, a folder's contents as ``DEST/...``, a module as ``DEST/app.py``.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import libcst as cst

SKIP_DIRS = {
    "__pycache__",
    ".git",
    ".hg",
    ".svn",
    ".venv",
    "venv",
    "node_modules",
    ".pytest_cache",
    ".mypy_cache",
    "instance",
    "build",
    "dist",
    ".tox",
    "compat-logs",
}
SKIP_SUFFIXES = (".pyc", ".pyo")
# what a run of the porter leaves in DEST besides the port (a port of a port skips them)
SKIP_FILES = {"compat-report.json", "compat-report.html", "port-report.json"}


class ProjectError(Exception):
    """SRC cannot be read as a Flask project: one line saying why."""


@dataclass
class Module:
    name: str  # dotted, as DEST imports it: "flaskr.auth", "flaskr" for flaskr/__init__.py
    rel: Path  # path relative to DEST (and to the source base)
    path: Path  # the source file
    source: str
    tree: cst.Module
    is_package: bool  # an __init__.py

    @property
    def package(self) -> str:
        """The package relative imports start from."""
        return self.name if self.is_package else self.name.rpartition(".")[0]


@dataclass
class Project:
    src: Path  # as given
    base: Path  # the folder whose contents map onto DEST
    kind: str  # "package" | "folder" | "module"
    modules: dict[str, Module] = field(default_factory=dict)
    others: list[Path] = field(default_factory=list)  # relative paths of files copied as they are
    import_root: Path | None = None  # the reference's sys.path entry (may be above SRC: compat/flask_app)
    import_prefix: str = ""  # what the reference's module names start with there ("compat.")

    def module_for_path(self, path: Path) -> Module | None:
        for m in self.modules.values():
            if m.path == path:
                return m
        return None

    def templates(self) -> list[Path]:
        """Template files (relative), those in a ``templates`` folder."""
        return [p for p in self.others if "templates" in p.parts]

    def static_files(self) -> dict[str, list[str]]:
        """Static files by their package-relative static folder: {"flaskr": ["style.css", ...]}."""
        out: dict[str, list[str]] = {}
        for p in self.others:
            parts = p.parts
            if "static" in parts:
                i = parts.index("static")
                out.setdefault("/".join(parts[:i]), []).append("/".join(parts[i + 1 :]))
        return out


def _module_name(rel: Path) -> tuple[str, bool]:
    parts = list(rel.with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts = parts[:-1]
    return ".".join(parts), is_package


def _walk(base: Path) -> list[Path]:
    out = []
    for root, dirs, files in os.walk(base):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info"))
        for name in sorted(files):
            if name.endswith(SKIP_SUFFIXES) or name in SKIP_FILES:
                continue
            out.append((Path(root) / name).relative_to(base))
    return out


def _package_root(folder: Path) -> tuple[Path, str]:
    """The first folder above ``folder`` that is not a package, and the dotted prefix of
    ``folder``'s parent there (``compat/flask_app`` -> (repo root, "compat."))."""
    prefix: list[str] = []
    parent = folder.parent
    while (parent / "__init__.py").exists():
        prefix.insert(0, parent.name)
        parent = parent.parent
    return parent, "".join(p + "." for p in prefix)


def load(src: str | Path) -> Project:
    src = Path(src).resolve()
    if not src.exists():
        raise ProjectError(f"no such file or folder: {src}")
    if src.is_file():
        if src.suffix != ".py":
            raise ProjectError(f"{src} is not a Python module (.py)")
        project = Project(src=src, base=src.parent, kind="module", import_root=src.parent)
        files = [Path(src.name)]
        # a module's templates and static files live beside it
        for folder in ("templates", "static"):
            if (src.parent / folder).is_dir():
                files += [Path(folder) / p for p in _walk(src.parent / folder)]
    elif (src / "__init__.py").exists():
        root, prefix = _package_root(src)
        project = Project(src=src, base=src.parent, kind="package", import_root=root, import_prefix=prefix)
        files = [Path(src.name) / p for p in _walk(src)]
    else:
        project = Project(src=src, base=src, kind="folder", import_root=src)
        files = _walk(src)
    if not any(p.suffix == ".py" for p in files):
        raise ProjectError(f"no Python module in {src}")
    for rel in files:
        path = project.base / rel
        if rel.suffix != ".py":
            project.others.append(rel)
            continue
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ProjectError(f"{path}: cannot read it ({exc})") from None
        try:
            tree = cst.parse_module(source)
        except cst.ParserSyntaxError as exc:
            raise ProjectError(f"{path}:{exc.raw_line}: cannot parse it: {exc.message}") from None
        name, is_package = _module_name(rel)
        project.modules[name] = Module(name, rel, path, source, tree, is_package)
    return project


def copy_others(project: Project, dest: Path) -> None:
    """Templates, static files and the rest, as they are (mtimes kept: a static file's
    Last-Modified is its mtime)."""
    for rel in project.others:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(project.base / rel, target)
