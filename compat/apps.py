"""The two sides of a comparison, and a fresh instance folder for every instance.

An :class:`AppSpec` names one side: ``MODULE:ATTR`` (a factory or an app object; ``MODULE``
dotted or a path to a ``.py`` file), the folder first on its import path, its setup hook.
Every instance (reference, second reference for noise, candidate, each mutant, each live
server) gets a fresh folder, prepared from the corpus's ``instance.toml`` when there is one
(``config.toml`` with the known tokens, ``scripts/``), then handed to the side's own
interpreter as ``$COMPAT_INSTANCE`` (:mod:`compat.sides`, :mod:`compat.loading`).
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .instance import InstanceSetup
from .loading import SideSpec, is_file_target, split_target
from .sides import PACKAGE, SideProcess

# hostpulse's own pair: names that load from a checkout's root and from an installed wheel
DEFAULT_REFERENCE = f"{PACKAGE}.flask_app:create_app"
DEFAULT_CANDIDATE = "app:create_app" if PACKAGE == "compat" else "hostpulse.app:create_app"


@dataclass(frozen=True)
class AppSpec:
    """One side: what to load, from where, and how its instances are set up."""

    target: str  # MODULE:ATTR
    path: Path | None = None  # first on the side's import path (default: the current folder)
    hook: str | None = None  # MODULE:FUNC, prepare(instance, side) -> factory kwargs
    hook_path: Path | None = None  # where the hook's module is importable from
    secret_key: str | None = None  # decodes the side's signed session cookies
    label: str = ""  # how reports name it (default: the target)

    def side(self, side: str, *, wrap: str | None = None, kwargs: dict[str, Any] | None = None) -> SideSpec:
        module, attr = split_target(self.target)
        if is_file_target(module):
            base = self.path or Path.cwd()
            module = str((base / module).resolve()) if not Path(module).is_absolute() else module
        return SideSpec(
            app=f"{module}:{attr}",
            side=side,
            path=str(self.path) if self.path else None,
            hook=self.hook,
            hook_path=str(self.hook_path) if self.hook_path else None,
            kwargs=kwargs,
            wrap=wrap,
            secret_key=self.secret_key,
        )

    def __str__(self) -> str:
        return self.label or self.target


class Workdir:
    """A temporary folder holding every instance folder of one run; removed at close.

    The apps' logs go to ``logs`` (kept) when given, else beside the instances (removed).
    """

    def __init__(self, keep: bool = False, prefix: str = "compat-", logs: Path | None = None) -> None:
        self.path = Path(tempfile.mkdtemp(prefix=prefix))
        self.keep = keep
        self.logs = logs or self.path
        self.logs.mkdir(parents=True, exist_ok=True)
        self._n = 0
        self._lock = threading.Lock()

    def new_instance_dir(self, label: str) -> Path:
        with self._lock:
            self._n += 1
            n = self._n
        folder = self.path / f"{n:03d}-{safe_name(label)}"
        folder.mkdir(parents=True)
        return folder

    def log_path(self, label: str) -> Path:
        return self.logs / f"{safe_name(label)}.log"

    def close(self) -> None:
        if not self.keep:
            shutil.rmtree(self.path, ignore_errors=True)


def safe_name(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_@." else "-" for c in label)[:60]


@dataclass
class Instance:
    """One running app instance, with its instance folder and a client."""

    label: str
    folder: Path
    client: Any
    server: str = "in-process"

    def close(self) -> None:
        self.client.close()


def start_side(
    spec: AppSpec, side: str, workdir: Workdir, setup: InstanceSetup, label: str, wrap: str | None = None
) -> Instance:
    """A fresh instance of one side in its own interpreter (raises SetupError, one line)."""
    folder = workdir.new_instance_dir(label)
    setup.prepare(folder)
    client = SideProcess(spec.side(side, wrap=wrap), folder, workdir.log_path(label), label)
    return Instance(label=label, folder=folder, client=client)
