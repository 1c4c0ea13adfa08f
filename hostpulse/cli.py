"""``hostpulse``: set up an instance folder, manage tokens, serve on a port of its own.

``make run`` calls ``hostpulse init`` before Hypercorn starts, so the config is written
once by one process, never by racing workers; ``init`` first checks what would make the
workers die (a settings error, an instance folder that cannot be written, a port in use)
and says it in one line. ``hostpulse serve`` then binds the port itself, without
``SO_REUSEPORT``, and hands the socket to Hypercorn: a second server on the same port is
refused instead of sharing its connections.

Tokens added or revoked here reach a running service within 2 s (``hostpulse.reload``).
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import re
import socket
import sys
import tempfile
import tomllib
from pathlib import Path

from hostpulse import settings as settings_module
from hostpulse.config_file import save
from hostpulse.settings import Settings, SettingsError, Token, host_patterns
from hostpulse.tokens import ROLES, hash_token, new_token


class CannotStart(Exception):
    """Something that would make the service fail at start; the message is the one line said."""


def _issue(
    settings: Settings, username: str, roles: tuple[str, ...], email: str = "", hosts: tuple[str, ...] = ("*",)
) -> str:
    if any(t.username == username for t in settings.tokens):
        raise SystemExit(f"hostpulse: a token for {username!r} exists; revoke it first")
    token = new_token()
    next_id = max((t.id for t in settings.tokens), default=0) + 1
    settings.tokens += (Token(hash_token(token), username, email or f"{username}@localhost", next_id, roles, hosts),)
    return token


def _local_host() -> tuple[str, ...]:
    """The host the local agent reports (the agent's default: this machine's name)."""
    try:
        return host_patterns([socket.gethostname().lower()], "hostname")
    except SettingsError:  # a name the agent would refuse too: it needs --host anyway
        return ("*",)


def _address(bind: str) -> tuple[str, int]:
    host, sep, port = bind.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise CannotStart(f"hostpulse: --bind expects HOST:PORT, got {bind!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def bind_socket(bind: str, backlog: int | None = None) -> socket.socket:
    """A TCP socket bound to ``HOST:PORT`` without ``SO_REUSEPORT`` (listening if ``backlog``),
    or :class:`CannotStart` saying who holds the port."""
    host, port = _address(bind)
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise CannotStart(f"hostpulse: cannot bind {host}:{port}: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT, never a live listener
        sock.bind(address)
        if backlog is not None:
            sock.listen(backlog)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise CannotStart(
                f"hostpulse: {host}:{port} is already in use (another hostpulse or another program): "
                f"stop it or choose another port (make run PORT=...)"
            ) from None
        raise CannotStart(f"hostpulse: cannot bind {host}:{port}: {exc.strerror or exc}") from None
    return sock


def check_instance(settings: Settings) -> None:
    """The folders and files the workers write exist and can be written (one line if not)."""
    folder = settings.instance
    try:
        for path in (folder, settings.uploads, settings.scripts, settings.db_path.parent):
            path.mkdir(parents=True, exist_ok=True)
        for path in (folder, settings.uploads, settings.db_path.parent):
            with tempfile.TemporaryFile(dir=path):
                pass
        db = settings.db_path
        for path in (
            db,
            db.with_name(db.name + "-wal"),
            db.with_name(db.name + "-shm"),
            settings_module.config_path(folder),
        ):
            if path.exists() and not os.access(path, os.W_OK):
                raise PermissionError(13, "Permission denied", str(path))
    except OSError as exc:
        where = exc.filename or folder
        raise CannotStart(
            f"hostpulse: the instance folder {folder} is not writable ({where}: {exc.strerror}); "
            "the service keeps its store, uploads and jobs there: fix it or set HOSTPULSE_INSTANCE"
        ) from None


def _follow_url(settings: Settings, url: str) -> None:
    """The local agent's config sends to ``url`` (``make run PORT=...`` after a first run)."""
    path = settings.instance / "agent.toml"
    try:
        text = path.read_text(encoding="utf-8")
        current = tomllib.loads(text).get("server")
    except (OSError, tomllib.TOMLDecodeError):
        return  # no local agent here, or a file someone edited by hand: left alone
    if current == url:
        return
    line = f"server = {json.dumps(url)}"
    if current is None:
        text = f"{line}\n{text}"
    else:
        text = re.sub(r"(?m)^server\s*=.*$", lambda _: line, text, count=1)
    _write_private(path, text)
    print(f"hostpulse: the local agent now sends to {url} ({path})")


DEFAULT_URL = "http://127.0.0.1:8000"


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


def init(args: argparse.Namespace) -> int:
    """Write the config with one admin, one viewer and one agent token, on the first start only.

    First what would make the service fail at start: settings, the instance folder, the port."""
    settings = settings_module.load(args.instance)
    url = args.url or DEFAULT_URL
    if args.bind:
        bind_socket(args.bind).close()
    check_instance(settings)
    path = settings_module.config_path(settings.instance)
    if path.exists():
        print(f"hostpulse: using {path}")
        if args.url:
            _follow_url(settings, url)
        print(f"hostpulse: serving on {url}")
        return 0
    tokens = {
        role: _issue(settings, role, (role,), hosts=_local_host() if role == "agent" else ("*",))
        for role in ("admin", "viewer", "agent")
    }
    save(settings, path)
    settings.scripts.mkdir(parents=True, exist_ok=True)
    _write_private(
        settings.instance / "agent.toml",
        f'# the local agent started by make run\nserver = {json.dumps(url)}\ntoken = "{tokens["agent"]}"\n'
        'spool = "agent-spool"\ninterval = 5\n',
    )
    print(f"hostpulse: wrote {path} (mode 0600); the tokens are shown this once:")
    for role, token in tokens.items():
        print(f"  {role:<6} {token}")
    print(f"hostpulse: serving on {url}")
    print(f'  curl -H "Authorization: Bearer {tokens["admin"]}" {url}/_get_current_user')
    return 0


def serve(args: argparse.Namespace) -> int:
    """Bind ``--bind`` here (no ``SO_REUSEPORT``), then become the server with ``--bind fd://N``."""
    command = [a for a in args.command if a != "--"]
    if not command:
        raise CannotStart("hostpulse: serve needs the server's command line after --")
    sock = bind_socket(args.bind, backlog=2048)
    sock.set_inheritable(True)
    try:
        os.execvp(command[0], [*command, "--bind", f"fd://{sock.fileno()}"])
    except OSError as exc:
        raise CannotStart(f"hostpulse: cannot run {command[0]}: {exc.strerror}") from None


def add(args: argparse.Namespace) -> int:
    settings = settings_module.load(args.instance)
    if args.host:
        hosts = host_patterns(args.host, "--host")
    elif "agent" in args.role:  # token-add web-1 --role agent: reports web-1
        hosts = host_patterns([args.username], "the username (or give --host)")
    else:
        hosts = ("*",)
    token = _issue(settings, args.username, tuple(args.role), args.email, hosts)
    save(settings)
    print(token)
    return 0


def revoke(args: argparse.Namespace) -> int:
    settings = settings_module.load(args.instance)
    kept = tuple(t for t in settings.tokens if t.username != args.username)
    if len(kept) == len(settings.tokens):
        print(f"hostpulse: no token for {args.username!r}", file=sys.stderr)
        return 1
    settings.tokens = kept
    save(settings)
    print(f"hostpulse: revoked the token of {args.username!r}")
    return 0


def list_tokens(args: argparse.Namespace) -> int:
    for t in settings_module.load(args.instance).tokens:
        print(f"{t.username:<16} {','.join(t.roles):<14} {t.email:<24} hosts {','.join(t.hosts)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hostpulse", description=__doc__.splitlines()[0])
    parser.add_argument("--instance", help="instance folder (default: $HOSTPULSE_INSTANCE or ./instance)")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("init", help="write instance/config.toml with new tokens if missing")
    p.add_argument(
        "--url",
        help=f"the URL the service is served on (default {DEFAULT_URL}); "
        "the local agent's config (agent.toml) follows it",
    )
    p.add_argument("--bind", metavar="HOST:PORT", help="refuse (one line, exit 1) if this port is in use")
    p.set_defaults(run=init)
    p = commands.add_parser("serve", help="bind HOST:PORT (no SO_REUSEPORT), then run the server on it")
    p.add_argument("--bind", metavar="HOST:PORT", required=True)
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- then the server, e.g. hypercorn --config ...")
    p.set_defaults(run=serve)
    p = commands.add_parser("token-add", help="issue a token and print it once")
    p.add_argument("username")
    p.add_argument("--role", action="append", choices=ROLES, required=True)
    p.add_argument("--email", default="")
    p.add_argument(
        "--host",
        action="append",
        metavar="PATTERN",
        help="a host it may report (shell-style pattern, repeatable); "
        "default for an agent token: the username, else every host",
    )
    p.set_defaults(run=add)
    p = commands.add_parser("token-revoke", help="revoke a user's token")
    p.add_argument("username")
    p.set_defaults(run=revoke)
    p = commands.add_parser("tokens", help="list who holds a token (hashes only are kept)")
    p.set_defaults(run=list_tokens)
    args = parser.parse_args(argv)
    logger = logging.getLogger("hostpulse")
    if not logger.handlers:  # settings warnings (an unknown HOSTPULSE_* variable): one line each
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("hostpulse: warning: %(message)s"))
        handler.setLevel(logging.WARNING)
        logger.addHandler(handler)
    try:
        return int(args.run(args))
    except settings_module.SettingsError as exc:
        print(f"hostpulse: {exc}", file=sys.stderr)
        return 2
    except CannotStart as exc:
        print(exc, file=sys.stderr)
        return 1
