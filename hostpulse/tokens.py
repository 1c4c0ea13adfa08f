"""Bearer tokens and the roles they carry: made, hashed, named.

Standard library only (no Werkzeug), so that the ``hostpulse`` command, which issues and
revokes tokens, runs on an install with the agent's dependencies alone. Checking a
request's token is :mod:`hostpulse.auth`'s work.
"""

from __future__ import annotations

import hashlib
import secrets

# Every role a token may hold: an agent sends metrics, a viewer reads, an admin does all.
ROLES = ("agent", "viewer", "admin")


def new_token() -> str:
    """A new secret token (256 random bits, URL-safe); only its hash is ever stored.

    Never one starting with ``-``: a command line reads that as an option
    (``hostpulse-agent --token -Xy...`` was "expected one argument"), and one token in 64
    started so."""
    while True:
        token = secrets.token_urlsafe(32)
        if not token.startswith("-"):
            return token


def hash_token(token: str) -> str:
    """The hex SHA-256 kept in the config file, and looked up for each request."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
