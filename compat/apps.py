"""Loading apps from ``MODULE:FACTORY`` and giving every instance its own instance folder.

``MODULE`` is a dotted module name (``compat.flask_app``) or a path to a ``.py`` file
(``tests/compat/notes_app/flask_notes.py``); ``FACTORY`` a callable that returns a WSGI or
ASGI app (a bare attribute that already is an app is accepted too).

Every instance (reference, second reference for noise, candidate, each mutant, each live
server) gets a fresh temporary folder: ``factory(instance_path=dir)`` when the factory takes
that parameter, else ``$HOSTPULSE_INSTANCE=dir`` while the factory runs. Before an instance is
created its folder is prepared from the corpus's ``instance.toml``: ``config.toml`` with the
known tokens (via ``hostpulse.settings.write_test_config`` when that exists) and the
``scripts/`` a job scenario runs.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import hashlib
import inspect
import os
import shutil
import sys
import tempfile
import threading
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from compat.clients import AppClient, client_for

DEFAULT_REFERENCE = "compat.flask_app:create_app"
DEFAULT_CANDIDATE = "app:create_app"

# Known tokens, one per role; the corpus writes {admin}, {viewer}, {agent}.
TOKENS: dict[str, str] = {
    "admin": "compat-admin-token-0123456789abcdef",
    "viewer": "compat-viewer-token-0123456789abcdef",
    "agent": "compat-agent-token-0123456789abcdef",
}
# A token that no instance knows, for the 401 scenarios.
UNKNOWN_TOKEN = "compat-unknown-token-0123456789abcdef"

_env_lock = threading.Lock()


@dataclass(frozen=True)
class AppSpec:
    """A ``MODULE:FACTORY`` string, resolved lazily."""

    target: str

    @property
    def module(self) -> str:
        return self.target.rsplit(":", 1)[0] if ":" in self.target else self.target

    @property
    def attr(self) -> str:
        return self.target.rsplit(":", 1)[1] if ":" in self.target else "create_app"

    @property
    def is_file(self) -> bool:
        return self.module.endswith(".py") or os.sep in self.module or "/" in self.module

    def import_module(self) -> Any:
        if self.is_file:
            path = Path(self.module).resolve()
            if not path.exists():
                raise SystemExit(f"compat: no such file: {path}")
            name = "compat_ext_" + hashlib.sha1(str(path).encode()).hexdigest()[:10] + "_" + path.stem
            if name in sys.modules:
                return sys.modules[name]
            # let the module import its siblings
            if str(path.parent) not in sys.path:
                sys.path.insert(0, str(path.parent))
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                raise SystemExit(f"compat: cannot import {path}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
            return module
        try:
            return importlib.import_module(self.module)
        except ImportError as exc:
            raise SystemExit(f"compat: cannot import {self.module!r} ({self.target}): {exc}") from None

    def factory(self) -> Callable[..., Any]:
        module = self.import_module()
        attr = self.attr.removesuffix("()")
        try:
            obj = getattr(module, attr)
        except AttributeError:
            raise SystemExit(f"compat: {self.module} has no attribute {attr!r}") from None
        return obj

    # for servers: what gunicorn / Hypercorn are given, and the PYTHONPATH they need
    def server_target(self) -> tuple[str, str | None]:
        """(``module:factory()``, extra sys.path entry or None)."""
        attr = self.attr.removesuffix("()")
        call = attr + "()" if self._is_factory() else attr
        if self.is_file:
            path = Path(self.module).resolve()
            return f"{path.stem}:{call}", str(path.parent)
        return f"{self.module}:{call}", None

    def _is_factory(self) -> bool:
        obj = self.factory()
        return not _looks_like_app(obj)

    def __str__(self) -> str:
        return self.target


def _looks_like_app(obj: Any) -> bool:
    # Flask / Quart apps, or any object with wsgi_app / asgi callables
    return hasattr(obj, "wsgi_app") or hasattr(obj, "url_map") or (
        not inspect.isfunction(obj) and callable(obj) and not inspect.isclass(obj)
    )


def accepts_instance_path(factory: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
    if "instance_path" in params:
        return True
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


# ---------------------------------------------------------------------------- instance setup


@dataclass
class InstanceSetup:
    """How a fresh instance folder is prepared (from the corpus's ``instance.toml``)."""

    config: dict[str, dict[str, Any]] = field(default_factory=dict)  # sections for config.toml
    scripts_dir: Path | None = None  # copied to <instance>/scripts/
    files_dir: Path | None = None  # copied into <instance>/ as is
    write_config: bool = True

    @classmethod
    def load(cls, path: Path | None) -> "InstanceSetup":
        if path is None or not path.exists():
            return cls()
        return cls.from_dict(tomllib.loads(path.read_text(encoding="utf-8")), path.parent)

    @classmethod
    def from_dict(cls, data: dict[str, Any], base: Path) -> "InstanceSetup":
        setup = cls(config=data.get("config", {}), write_config=bool(data.get("write_config", True)))
        scripts = data.get("scripts")
        if scripts:
            setup.scripts_dir = (base / scripts).resolve()
        files = data.get("files")
        if files:
            setup.files_dir = (base / files).resolve()
        return setup

    def prepare(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        if self.files_dir and self.files_dir.is_dir():
            shutil.copytree(self.files_dir, folder, dirs_exist_ok=True)
        if self.scripts_dir and self.scripts_dir.is_dir():
            shutil.copytree(self.scripts_dir, folder / "scripts", dirs_exist_ok=True)
        if self.write_config:
            write_config(folder, TOKENS, self.config)


def write_config(folder: Path, tokens: dict[str, str], sections: dict[str, dict[str, Any]]) -> Path:
    """``<folder>/config.toml`` with the known tokens, as hostpulse reads it."""
    from hostpulse.settings import write_test_config

    return write_test_config(folder, tokens, **sections)


@contextlib.contextmanager
def _instance_env(folder: Path):
    """Set ``$HOSTPULSE_INSTANCE`` while a factory without ``instance_path`` runs."""
    with _env_lock:
        old = os.environ.get("HOSTPULSE_INSTANCE")
        os.environ["HOSTPULSE_INSTANCE"] = str(folder)
        try:
            yield
        finally:
            if old is None:
                os.environ.pop("HOSTPULSE_INSTANCE", None)
            else:
                os.environ["HOSTPULSE_INSTANCE"] = old


def create_app(spec: AppSpec, folder: Path) -> Any:
    factory = spec.factory()
    if _looks_like_app(factory) and not inspect.isfunction(factory):
        return factory  # a ready-made app object: its instance folder is its own business
    if accepts_instance_path(factory):
        with _instance_env(folder):  # also set: the factory may read it elsewhere
            return factory(instance_path=str(folder))
    with _instance_env(folder):
        return factory()


class Workdir:
    """A temporary folder holding every instance folder of one run; removed at close."""

    def __init__(self, keep: bool = False, prefix: str = "compat-") -> None:
        self.path = Path(tempfile.mkdtemp(prefix=prefix))
        self.keep = keep
        self._n = 0
        self._lock = threading.Lock()

    def new_instance_dir(self, label: str) -> Path:
        with self._lock:
            self._n += 1
            n = self._n
        safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in label)[:40]
        folder = self.path / f"{n:03d}-{safe}"
        folder.mkdir(parents=True)
        return folder

    def close(self) -> None:
        if not self.keep:
            shutil.rmtree(self.path, ignore_errors=True)


@dataclass
class Instance:
    """One running app instance, with its instance folder and a client."""

    label: str
    folder: Path
    client: AppClient
    app: Any = None
    server: str = "in-process"

    def close(self) -> None:
        self.client.close()


def _log_to_file(app: Any, path: Path) -> None:
    """An in-process app's log (its tracebacks) goes to a file beside its instance folder."""
    import logging

    logger = getattr(app, "logger", None)
    if not isinstance(logger, logging.Logger):
        return
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = logging.FileHandler(path, delay=True, encoding="utf-8")
    handler.setFormatter(logging.Formatter("[%(asctime)s] %(levelname)s in %(module)s: %(message)s"))
    logger.addHandler(handler)
    logger.propagate = False


def start_inprocess(
    spec: AppSpec,
    workdir: Workdir,
    setup: InstanceSetup,
    label: str,
    wrap: Callable[[Any], Any] | None = None,
) -> Instance:
    folder = workdir.new_instance_dir(label)
    setup.prepare(folder)
    app = create_app(spec, folder)
    _log_to_file(app, folder.with_suffix(".log"))
    if wrap is not None:
        app = wrap(app)
    client = client_for(app)
    return Instance(label=label, folder=folder, client=client, app=app)
