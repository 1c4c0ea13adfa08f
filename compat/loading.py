"""Building one side's app inside its own interpreter (the worker, or a server's process).

A side is described by a :class:`SideSpec` that the suite passes to the child process as
JSON in ``$COMPAT_SIDE``; the instance folder is ``$COMPAT_INSTANCE`` (the one neutral
variable every instance gets, in every mode). The side's ``path`` is put first on
``sys.path``, so two sides whose packages have the same name each import their own.

How the app is made, in order:

1. the setup hook, when the run file names one: ``prepare(instance: Path, side: str)``
   returns the keyword arguments the factory is called with, exactly;
2. without a hook, a factory that takes ``instance_path`` gets the instance folder, any
   other factory is called with no argument;
3. an attribute that already is an app is used as it is.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import os
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

INSTANCE_VAR = "COMPAT_INSTANCE"
SIDE_VAR = "COMPAT_SIDE"


class SetupError(RuntimeError):
    """A side that cannot be built: one line that says why."""


@dataclass
class SideSpec:
    """What a child process needs to build one side's app (JSON between processes)."""

    app: str  # MODULE:ATTR, MODULE dotted or a path to a .py file
    side: str = "reference"  # reference | candidate: passed to the hook
    path: str | None = None  # first on sys.path
    hook: str | None = None  # MODULE:FUNC
    hook_path: str | None = None  # where the hook's module is importable from
    kwargs: dict[str, Any] | None = None  # the hook's answer, once known (servers)
    wrap: str | None = None  # a mutant's name (the self-check)
    secret_key: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> SideSpec:
        return cls(**json.loads(text))


def split_target(target: str) -> tuple[str, str]:
    module, _, attr = target.rpartition(":") if ":" in target else (target, "", "create_app")
    return module, (attr or "create_app").removesuffix("()")


def is_file_target(module: str) -> bool:
    return module.endswith(".py") or "/" in module or os.sep in module


def import_module(module: str) -> Any:
    """A dotted module, or a ``.py`` file imported under its own stem (siblings importable)."""
    if is_file_target(module):
        path = Path(module).resolve()
        if not path.exists():
            raise SetupError(f"no such file: {path}")
        sys.path.insert(0, str(path.parent))
        module = path.stem
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise SetupError(f"cannot import {module!r}: {exc} (sys.path starts {sys.path[:2]})") from exc


def resolve(target: str) -> Any:
    module, attr = split_target(target)
    obj = import_module(module)
    try:
        return getattr(obj, attr)
    except AttributeError:
        raise SetupError(f"{module} has no attribute {attr!r}") from None


def looks_like_app(obj: Any) -> bool:
    """A Flask/Quart app or another ready WSGI/ASGI callable, not a factory."""
    return (
        hasattr(obj, "wsgi_app")
        or hasattr(obj, "url_map")
        or (not inspect.isfunction(obj) and callable(obj) and not inspect.isclass(obj))
    )


def accepts_instance_path(factory: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
    return "instance_path" in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def use_paths(spec: SideSpec) -> None:
    """The side's path first, then the hook's folder (this process belongs to one side)."""
    for entry in reversed([p for p in (spec.path, spec.hook_path) if p]):
        while entry in sys.path:
            sys.path.remove(entry)
        sys.path.insert(0, entry)


def run_hook(spec: SideSpec, instance: Path) -> dict[str, Any] | None:
    """The hook's factory keyword arguments (None without a hook)."""
    if not spec.hook:
        return None
    hook = resolve(spec.hook)
    kwargs = hook(instance, spec.side)
    if kwargs is None:
        return {}
    if not isinstance(kwargs, dict):
        raise SetupError(f"setup hook {spec.hook} returned {type(kwargs).__name__}, not a dict of factory kwargs")
    return kwargs


def build_app(spec: SideSpec, instance: Path) -> tuple[Any, dict[str, Any]]:
    """The side's app, and the keyword arguments its factory was called with.

    The hook runs before the app's module is imported: a module that builds its app at
    import time finds its instance prepared."""
    use_paths(spec)
    kwargs = spec.kwargs if spec.kwargs is not None else run_hook(spec, instance)
    obj = resolve(spec.app)
    if looks_like_app(obj) and not inspect.isfunction(obj):
        return obj, {}
    if kwargs is None:
        kwargs = {"instance_path": str(instance)} if accepts_instance_path(obj) else {}
    app = obj(**kwargs)
    if app is None:
        raise SetupError(f"{spec.app} returned None, not an app")
    return app, kwargs


def spec_from_env() -> tuple[SideSpec, Path]:
    try:
        return SideSpec.from_json(os.environ[SIDE_VAR]), Path(os.environ[INSTANCE_VAR])
    except KeyError as exc:
        raise SetupError(f"${exc.args[0]} is not set: this process was not started by compat") from None
