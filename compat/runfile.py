"""The run file: one TOML file that describes a comparison, so no Python glue is needed.

```toml
[reference]
path = "flask_side"            # first on this side's import path (relative to this file)
app = "flaskr:create_app"      # MODULE:ATTR, a factory or an app object
[candidate]
path = "quart_side"
app = "flaskr:create_app"      # the same module name on both sides works: one interpreter each
[setup]
hook = "compat_setup:prepare"  # optional: prepare(instance: Path, side: str) -> dict of factory kwargs
secret_key = "dev"             # optional: decode and verify signed session cookies
[run]
corpus = "corpus.toml"         # a file or a folder of *.toml
allow = "allowlist.toml"       # optional
modes = ["inprocess", "live", "fuzz"]
fuzz = 300                     # generated requests in fuzz mode
```

Every path is relative to the run file; modules (the hook) are importable from its folder.
The full key list is in ``compat/README.md``; an unknown key is an error, not a silence.
A side may also come from a git ref of the repository the run file lives in
(``git = "main"``): that ref's tree is exported to a temporary folder and ``path`` is read
inside it, so the Flask app on ``main`` compares with the port in the working tree.
"""

from __future__ import annotations

import subprocess
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .apps import AppSpec

SIDE_KEYS = {"path", "app", "label", "git"}
SECTIONS: dict[str, set[str]] = {
    "reference": SIDE_KEYS,
    "candidate": SIDE_KEYS,
    "setup": {"hook", "secret_key", "instance"},
    "run": {
        "corpus",
        "allow",
        "modes",
        "fuzz",
        "fuzz_seed",
        "servers",
        "workers",
        "limits",
        "logs",
        "report",
        "mutants",
    },
}
MODES = ("inprocess", "live", "fuzz")


class RunFileError(ValueError):
    """A run file that cannot be used: the message names the file and the key."""


@dataclass
class RunFile:
    path: Path
    reference: AppSpec
    candidate: AppSpec
    corpus: Path | None = None
    allow: Path | None = None
    instance: Path | None = None  # an instance.toml, when not beside the corpus
    run: dict[str, Any] = field(default_factory=dict)  # the [run] table, paths resolved
    exported: list[Path] = field(default_factory=list)  # git trees to remove at the end

    def close(self) -> None:
        import shutil

        for tree in self.exported:
            shutil.rmtree(tree, ignore_errors=True)


def _str(table: dict[str, Any], key: str, where: str, required: bool = False) -> str | None:
    value = table.get(key)
    if value is None:
        if required:
            raise RunFileError(f"{where}: `{key}` is required")
        return None
    if not isinstance(value, str) or not value:
        raise RunFileError(f"{where}: `{key}` must be a non-empty string")
    return value


def export_git_ref(repo: Path, ref: str) -> Path:
    """The tree of ``ref`` of the repository holding ``repo``, in a fresh temporary folder."""
    try:
        top = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--show-toplevel"], check=True, capture_output=True, text=True
        ).stdout.strip()
        prefix = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--show-prefix"], check=True, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as exc:
        raise RunFileError(f"git = {ref!r}: {repo} is not in a git repository ({exc})") from None
    out = Path(tempfile.mkdtemp(prefix="compat-git-"))
    archive = subprocess.run(["git", "-C", top, "archive", "--format=tar", ref], capture_output=True)
    if archive.returncode != 0:
        raise RunFileError(f"git = {ref!r}: {archive.stderr.decode(errors='replace').strip()}")
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive.stdout, check=True)
    return out / prefix


def _side(
    data: dict[str, Any], name: str, base: Path, hook: str | None, secret: str | None, exported: list[Path]
) -> AppSpec:
    where = f"[{name}]"
    table = data.get(name)
    if not isinstance(table, dict):
        raise RunFileError(f"{where} is missing (it needs at least `app`)")
    app = _str(table, "app", where, required=True)
    assert app is not None
    root = base
    ref = _str(table, "git", where)
    if ref:
        root = export_git_ref(base, ref)
        exported.append(root)
    rel = _str(table, "path", where)
    path = (root / rel).resolve() if rel else root.resolve()
    if not path.is_dir():
        raise RunFileError(f"{where} path: no folder {path}")
    label = _str(table, "label", where) or (f"{app}@{ref}" if ref else f"{rel or '.'}:{app}")
    return AppSpec(
        app, path=path, hook=hook, hook_path=base.resolve() if hook else None, secret_key=secret, label=label
    )


def load(path: str | Path) -> RunFile:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunFileError(f"no run file at {path}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RunFileError(f"{path}: {exc}") from None
    for section, table in data.items():
        if section not in SECTIONS:
            raise RunFileError(f"{path}: unknown table [{section}] (known: {', '.join(SECTIONS)})")
        if not isinstance(table, dict):
            raise RunFileError(f"{path}: `{section}` must be a table")
        unknown = set(table) - SECTIONS[section]
        if unknown:
            raise RunFileError(
                f"{path}: [{section}] has unknown key(s) {sorted(unknown)} "
                f"(known: {', '.join(sorted(SECTIONS[section]))})"
            )
    base = path.resolve().parent
    setup = data.get("setup", {})
    hook = _str(setup, "hook", f"{path}: [setup]")
    if hook and ":" not in hook:
        raise RunFileError(f"{path}: [setup] hook must be MODULE:FUNCTION, not {hook!r}")
    secret = _str(setup, "secret_key", f"{path}: [setup]")
    exported: list[Path] = []
    try:
        reference = _side(data, "reference", base, hook, secret, exported)
        candidate = _side(data, "candidate", base, hook, secret, exported)
    except RunFileError as exc:
        for tree in exported:
            import shutil

            shutil.rmtree(tree, ignore_errors=True)
        raise RunFileError(f"{path}: {exc}") from None
    run = dict(data.get("run", {}))
    for key in ("modes",):
        if key in run and not (isinstance(run[key], list) and set(run[key]) <= set(MODES)):
            raise RunFileError(f"{path}: [run] modes must be a list of {', '.join(MODES)}")
    for key in ("fuzz", "fuzz_seed", "workers"):
        if key in run and not (isinstance(run[key], int) and not isinstance(run[key], bool) and run[key] >= 0):
            raise RunFileError(f"{path}: [run] {key} must be a non-negative integer")
    if "limits" in run and not (
        isinstance(run["limits"], list) and all(isinstance(x, int) and x > 0 for x in run["limits"])
    ):
        raise RunFileError(f"{path}: [run] limits must be a list of body sizes in bytes")

    def rel(value: str | None) -> Path | None:
        return (base / value).resolve() if value else None

    corpus = rel(_str(run, "corpus", f"{path}: [run]"))
    if corpus is not None and not corpus.exists():
        raise RunFileError(f"{path}: [run] corpus: no such file or folder {corpus}")
    allow = rel(_str(run, "allow", f"{path}: [run]"))
    if allow is not None and not allow.exists():
        raise RunFileError(f"{path}: [run] allow: no such file {allow}")
    instance = rel(_str(setup, "instance", f"{path}: [setup]"))
    if instance is not None and not instance.exists():
        raise RunFileError(f"{path}: [setup] instance: no such file {instance}")
    for key in ("logs", "report"):
        if isinstance(run.get(key), str):
            run[key] = str(base / run[key])
        elif isinstance(run.get(key), list):
            run[key] = [str(base / v) for v in run[key]]
    return RunFile(
        path=path,
        reference=reference,
        candidate=candidate,
        corpus=corpus,
        allow=allow,
        instance=instance,
        run=run,
        exported=exported,
    )
