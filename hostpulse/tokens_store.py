"""Tokens and the command allow-list in the PostgreSQL store (issue 16).

With several nodes, a token revoked on one must be refused by all: so on PostgreSQL the
tokens (their SHA-256 and user, as ``[[tokens]]`` keeps them) and the allow-list live in the
database (tables ``tokens``, ``commands``; migration step 3 of ``hostpulse.store_pg``), and a
node needs only its instance folder and the URL. ``hostpulse token-add``/``token-revoke``
write there, each change bumping ``config_version``'s one row in the same transaction; each
worker polls that row (``hostpulse.reload``) and loads both again when it moved. The config
file's ``[[tokens]]`` and ``[[commands]]`` are then not used (``hostpulse init`` copies its
commands in once, ``hostpulse commands-set`` again). On SQLite nothing of this runs: tokens
stay in ``config.toml``.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg

from hostpulse.settings import DEFAULT_COMMANDS, Command, Settings, StoreSource, Token
from hostpulse.store import StoreError
from hostpulse.store_pg import TOKENS_VERSION, connect, require_schema

# Serialises the read-modify-write of a token change (a username is unique, ids grow).
TOKENS_LOCK = 0x746F6B6E  # "tokn"


def version(conn: psycopg.Connection[Any]) -> int:
    """The ``config_version`` row: moves with every change of tokens or commands."""
    row = conn.execute("SELECT version FROM config_version WHERE id = 1").fetchone()
    return int(row[0]) if row else 0


def load(conn: psycopg.Connection[Any]) -> tuple[int, tuple[Token, ...], tuple[Command, ...]]:
    """The version, tokens and commands, read in one snapshot (a change between two reads
    is seen whole at the next poll)."""
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        row = conn.execute("SELECT version, commands_set FROM config_version WHERE id = 1").fetchone()
        seen, commands_set = (int(row[0]), bool(row[1])) if row else (0, False)
        tokens = tuple(
            Token(sha256, username, email, int(id_), tuple(json.loads(roles)), tuple(json.loads(hosts)))
            for sha256, username, email, id_, roles, hosts in conn.execute(
                "SELECT sha256, username, email, id, roles, hosts FROM tokens ORDER BY id"
            )
        )
        commands = tuple(
            Command(program, tuple(json.loads(args)))
            for program, args in conn.execute("SELECT program, args FROM commands ORDER BY position")
        )
    return seen, tokens, commands if commands_set else DEFAULT_COMMANDS


def follow(settings: Settings) -> None:
    """Take the tokens and commands of the PostgreSQL store ``[store] url`` names, and follow
    its version from now on (``hostpulse.reload``) instead of the config file's."""
    with connect(settings.store.url) as conn:
        require_schema(conn, TOKENS_VERSION)
        seen, tokens, commands = load(conn)
    settings.tokens, settings.commands = tokens, commands
    settings.store_source = StoreSource(settings.store.url, seen)


def _bump(conn: psycopg.Connection[Any], commands_set: bool | None = None) -> None:
    if commands_set is None:
        conn.execute("UPDATE config_version SET version = version + 1 WHERE id = 1")
    else:
        conn.execute("UPDATE config_version SET version = version + 1, commands_set = %s WHERE id = 1", (commands_set,))


def _writing(url: str) -> psycopg.Connection[Any]:
    conn = connect(url)
    try:
        require_schema(conn, TOKENS_VERSION)
    except StoreError:
        conn.close()
        raise
    return conn


def tokens(url: str) -> tuple[Token, ...]:
    with _writing(url) as conn:
        return load(conn)[1]


def add_token(url: str, token: Token) -> Token | None:
    """Store ``token`` with the next id; None (nothing stored) when its user has one already."""
    with _writing(url) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (TOKENS_LOCK,))
        if conn.execute("SELECT 1 FROM tokens WHERE username = %s", (token.username,)).fetchone():
            return None
        (last,) = conn.execute("SELECT coalesce(max(id), 0) FROM tokens").fetchone() or (0,)
        stored = Token(token.sha256, token.username, token.email, int(last) + 1, token.roles, token.hosts)
        conn.execute(
            "INSERT INTO tokens (sha256, username, email, id, roles, hosts) VALUES (%s, %s, %s, %s, %s, %s)",
            (
                stored.sha256,
                stored.username,
                stored.email,
                stored.id,
                json.dumps(list(stored.roles)),
                json.dumps(list(stored.hosts)),
            ),
        )
        _bump(conn)
        return stored


def revoke_token(url: str, username: str) -> bool:
    """Delete the user's token; False when there was none."""
    with _writing(url) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (TOKENS_LOCK,))
        gone = conn.execute("DELETE FROM tokens WHERE username = %s", (username,)).rowcount
        if gone:
            _bump(conn)
        return bool(gone)


def commands_set(url: str) -> bool:
    """Whether the store holds an allow-list (else the default one applies)."""
    with _writing(url) as conn:
        row = conn.execute("SELECT commands_set FROM config_version WHERE id = 1").fetchone()
        return bool(row and row[0])


def set_commands(url: str, commands: tuple[Command, ...]) -> None:
    """Replace the store's allow-list with ``commands``."""
    with _writing(url) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (TOKENS_LOCK,))
        conn.execute("DELETE FROM commands")
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO commands (position, program, args) VALUES (%s, %s, %s)",
                [(i, c.program, json.dumps(list(c.args))) for i, c in enumerate(commands)],
            )
        _bump(conn, commands_set=True)


__all__ = ["add_token", "commands_set", "follow", "load", "revoke_token", "set_commands", "tokens", "version"]
