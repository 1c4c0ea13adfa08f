"""Instances with known tokens, for the tests, the benchmarks and the compat suite.

Here, in the installed package, because the compat suite (``hostpulse-compat``) prepares
hostpulse's instances with it too, where the repository's ``tests/`` is not installed.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hostpulse.config_file import save
from hostpulse.settings import Settings, Token
from hostpulse.tokens import hash_token

# The user each role's known token stands for: (username, email, id).
ROLE_USERS: dict[str, tuple[str, str, int]] = {
    "admin": ("admin", "admin@localhost", 1),
    "viewer": ("viewer", "viewer@localhost", 2),
    "agent": ("agent", "agent@localhost", 3),
}


def settings_with_tokens(
    instance_dir: str | Path, tokens: Mapping[str, str], **sections: Mapping[str, Any]
) -> Settings:
    """Settings holding one known token per role (``{"admin": token, ...}``), with the
    given keys of ``limits``, ``jobs`` or ``store`` changed; made in code, no file read."""
    settings = Settings(instance=Path(instance_dir).absolute())
    settings.tokens = tuple(
        Token(hash_token(token), *ROLE_USERS[role], roles=(role,)) for role, token in tokens.items()
    )
    for name, values in sections.items():
        for key, value in values.items():
            setattr(getattr(settings, name), key, value)
    return settings


def write_test_config(instance_dir: str | Path, tokens: Mapping[str, str], **sections: Mapping[str, Any]) -> Path:
    """:func:`settings_with_tokens` written as the instance's ``config.toml`` (for servers
    started as processes, which read the file)."""
    return save(settings_with_tokens(instance_dir, tokens, **sections))
