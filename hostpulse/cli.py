"""``hostpulse``: set up an instance folder and manage tokens.

``make run`` calls ``hostpulse init`` before Hypercorn starts, so the config is written
once by one process, never by racing workers.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from hostpulse import settings as settings_module
from hostpulse.settings import ROLES, Settings, Token, hash_token, new_token


def _issue(settings: Settings, username: str, roles: tuple[str, ...], email: str = "") -> str:
    if any(t.username == username for t in settings.tokens):
        raise SystemExit(f"hostpulse: a token for {username!r} exists; revoke it first")
    token = new_token()
    next_id = max((t.id for t in settings.tokens), default=0) + 1
    settings.tokens += (Token(hash_token(token), username, email or f"{username}@localhost", next_id, roles),)
    return token


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


def init(args: argparse.Namespace) -> int:
    """Write the config with one admin, one viewer and one agent token, on the first start only."""
    settings = settings_module.load(args.instance)
    path = settings_module.config_path(settings.instance)
    if path.exists():
        print(f"hostpulse: using {path}")
        print(f"hostpulse: serving on {args.url}")
        return 0
    tokens = {role: _issue(settings, role, (role,)) for role in ("admin", "viewer", "agent")}
    settings_module.save(settings, path)
    settings.scripts.mkdir(parents=True, exist_ok=True)
    _write_private(
        settings.instance / "agent.toml",
        f'# the local agent started by make run\nserver = "{args.url}"\ntoken = "{tokens["agent"]}"\n'
        'spool = "agent-spool"\ninterval = 5\n',
    )
    print(f"hostpulse: wrote {path} (mode 0600); the tokens are shown this once:")
    for role, token in tokens.items():
        print(f"  {role:<6} {token}")
    print(f"hostpulse: serving on {args.url}")
    print(f'  curl -H "Authorization: Bearer {tokens["admin"]}" {args.url}/_get_current_user')
    return 0


def add(args: argparse.Namespace) -> int:
    settings = settings_module.load(args.instance)
    token = _issue(settings, args.username, tuple(args.role), args.email)
    settings_module.save(settings)
    print(token)
    return 0


def revoke(args: argparse.Namespace) -> int:
    settings = settings_module.load(args.instance)
    kept = tuple(t for t in settings.tokens if t.username != args.username)
    if len(kept) == len(settings.tokens):
        print(f"hostpulse: no token for {args.username!r}", file=sys.stderr)
        return 1
    settings.tokens = kept
    settings_module.save(settings)
    print(f"hostpulse: revoked the token of {args.username!r}")
    return 0


def list_tokens(args: argparse.Namespace) -> int:
    for t in settings_module.load(args.instance).tokens:
        print(f"{t.username:<16} {','.join(t.roles):<14} {t.email}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hostpulse", description=__doc__.splitlines()[0])
    parser.add_argument("--instance", help="instance folder (default: $HOSTPULSE_INSTANCE or ./instance)")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("init", help="write instance/config.toml with new tokens if missing")
    p.add_argument("--url", default="http://127.0.0.1:8000", help="the URL the service is served on")
    p.set_defaults(run=init)
    p = commands.add_parser("token-add", help="issue a token and print it once")
    p.add_argument("username")
    p.add_argument("--role", action="append", choices=ROLES, required=True)
    p.add_argument("--email", default="")
    p.set_defaults(run=add)
    p = commands.add_parser("token-revoke", help="revoke a user's token")
    p.add_argument("username")
    p.set_defaults(run=revoke)
    p = commands.add_parser("tokens", help="list who holds a token (hashes only are kept)")
    p.set_defaults(run=list_tokens)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except settings_module.SettingsError as exc:
        print(f"hostpulse: {exc}", file=sys.stderr)
        return 2
