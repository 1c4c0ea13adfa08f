"""How a fresh instance folder is prepared without a setup hook (a corpus's ``instance.toml``),
and the known tokens hostpulse's own corpus writes into its ``config.toml``."""

from __future__ import annotations

import shutil
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Known tokens, one per role; the corpus writes {admin}, {viewer}, {agent}.
TOKENS: dict[str, str] = {
    "admin": "compat-admin-token-0123456789abcdef",
    "viewer": "compat-viewer-token-0123456789abcdef",
    "agent": "compat-agent-token-0123456789abcdef",
}
# A token that no instance knows, for the 401 scenarios.
UNKNOWN_TOKEN = "compat-unknown-token-0123456789abcdef"


@dataclass
class InstanceSetup:
    """How a fresh instance folder is prepared (from the corpus's ``instance.toml``)."""

    config: dict[str, dict[str, Any]] = field(default_factory=dict)  # sections for config.toml
    scripts_dir: Path | None = None  # copied to <instance>/scripts/
    files_dir: Path | None = None  # copied into <instance>/ as is
    write_config: bool = False  # hostpulse's config.toml: only when instance.toml has [config]

    @classmethod
    def load(cls, path: Path | None) -> InstanceSetup:
        if path is None or not path.exists():
            return cls()
        return cls.from_dict(tomllib.loads(path.read_text(encoding="utf-8")), path.parent)

    @classmethod
    def from_dict(cls, data: dict[str, Any], base: Path) -> InstanceSetup:
        setup = cls(config=data.get("config", {}), write_config=bool(data.get("write_config", "config" in data)))
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
    from hostpulse.testing import write_test_config

    return write_test_config(folder, tokens, **sections)
