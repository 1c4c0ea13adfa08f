"""Writing the config file: settings as TOML that :func:`hostpulse.settings.load` reads back.

Apart from loading (``hostpulse.settings``), since only the ``hostpulse`` command and test
set-ups write the file; the services only read it.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from hostpulse.settings import SECTIONS, Settings, Token, config_path


def _toml_value(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


def dump(settings: Settings) -> str:
    """Settings as TOML, so that a written file loads back to the same object."""
    lines = ["# hostpulse configuration; HOSTPULSE_<SECTION>_<KEY> overrides a key.", ""]
    for name in SECTIONS:
        lines.append(f"[{name}]")
        for key, value in dataclasses.asdict(getattr(settings, name)).items():
            lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    for token in settings.tokens:
        lines.append("[[tokens]]")
        for key, value in dataclasses.asdict(token).items():
            if key == "hosts" and tuple(value) == Token.hosts:  # every host: left out
                continue
            lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    for command in settings.commands:
        lines += ["[[commands]]", f"program = {_toml_value(command.program)}"]
        lines += [f"args = {_toml_value(list(command.args))}", ""]
    return "\n".join(lines)


def save(settings: Settings, path: Path | None = None) -> Path:
    """Write the config file with mode 0600 (it holds token hashes), atomically."""
    path = path or config_path(settings.instance)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(dump(settings))
    os.replace(tmp, path)
    return path
