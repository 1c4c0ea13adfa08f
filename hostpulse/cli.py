"""``hostpulse``: set up an instance folder, manage tokens, serve on a port of its own.

``make run`` calls ``hostpulse init`` before Hypercorn starts, so the config is written
once by one process, never by racing workers; ``init`` first checks what would make the
workers die (a settings error, an instance folder that cannot be written, a port in use)
and says it in one line. ``hostpulse serve`` then binds the port itself, without
``SO_REUSEPORT``, and hands the socket to Hypercorn: a second server on the same port is
refused instead of sharing its connections.

Tokens added or revoked here reach a running service within 2 s (``hostpulse.reload``).
With a PostgreSQL store (``[store] url``) tokens and the allow-list are the database's
(``hostpulse.tokens_store``): these commands write there, and every node follows.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import math
import os
import re
import socket
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING

from hostpulse import settings as settings_module
from hostpulse.config_file import save
from hostpulse.settings import Settings, SettingsError, Token, host_patterns, store_engine
from hostpulse.tokens import ROLES, hash_token, new_token

if TYPE_CHECKING:  # the series store needs the server's packages (numpy): imported when used
    from hostpulse.series import SeriesStore


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
    postgres = store_engine(settings.store.url) == "postgresql"
    if postgres:  # SQLite makes its tables when opened
        _migrate(settings)
    _prepare_series(settings)
    path = settings_module.config_path(settings.instance)
    if postgres:
        return _init_postgres(settings, path, url)
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


def _init_postgres(settings: Settings, path: Path, url: str) -> int:
    """The shared database holds the tokens: issued by the first node's ``init`` (printed
    once), found by the others'; the allow-list copied from this config when it has none."""
    from hostpulse import tokens_store

    store = settings.store.url
    if not tokens_store.commands_set(store):
        tokens_store.set_commands(store, settings.commands)
    if not path.exists():
        kept, settings.tokens = settings.tokens, ()
        save(settings, path)  # [store] and the rest; the tokens are the database's
        settings.tokens = kept
        print(f"hostpulse: wrote {path} (mode 0600)")
    if tokens_store.tokens(store):
        print("hostpulse: using the tokens of the PostgreSQL store (hostpulse tokens lists them)")
        print(f"hostpulse: serving on {url}")
        return 0
    issued = {}
    for role in ("admin", "viewer", "agent"):
        token = new_token()
        hosts = _local_host() if role == "agent" else ("*",)
        tokens_store.add_token(store, Token(hash_token(token), role, f"{role}@localhost", 0, (role,), hosts))
        issued[role] = token
    settings.scripts.mkdir(parents=True, exist_ok=True)
    _write_private(
        settings.instance / "agent.toml",
        f'# the local agent started by make run\nserver = {json.dumps(url)}\ntoken = "{issued["agent"]}"\n'
        'spool = "agent-spool"\ninterval = 5\n',
    )
    print("hostpulse: stored new tokens in the PostgreSQL store; they are shown this once:")
    for role, token in issued.items():
        print(f"  {role:<6} {token}")
    print(f"hostpulse: serving on {url}")
    return 0


def _postgres_url(settings: Settings) -> str | None:
    """The store's URL when tokens live there (PostgreSQL), else None (the config file)."""
    return settings.store.url if store_engine(settings.store.url) == "postgresql" else None


def _migrate(settings: Settings) -> tuple[int, int]:
    """The store's schema created or brought up to date; :class:`CannotStart` in one line if not."""
    from hostpulse.store import StoreError
    from hostpulse.store_url import migrate_store

    try:
        return migrate_store(settings)
    except StoreError as exc:
        raise CannotStart(f"hostpulse: {exc}") from None


def _open_series(settings: Settings, migrate_limit: float | None = None) -> SeriesStore:
    """The series store (a file from before the tiers is converted, or refused in one line
    when too large to convert at startup: ``migrate`` converts any size)."""
    from hostpulse.series import OldStoreError, SeriesStore
    from hostpulse.series.schema import MIGRATE_LIMIT

    try:
        return SeriesStore.from_settings(settings, MIGRATE_LIMIT if migrate_limit is None else migrate_limit)
    except OldStoreError as exc:
        raise CannotStart(f"hostpulse: {exc}") from None


def _prepare_series(settings: Settings) -> None:
    """Open the series store once, here, before the workers do: a small file from before the
    tiers is converted by one process, a large one refused in one line. Skipped on the base
    install (a monitored host managing tokens has no server packages)."""
    try:
        import numpy  # noqa: F401 -- the series store's dependency, in the [server] extra
    except ImportError:
        return
    _open_series(settings).close()


def migrate(args: argparse.Namespace) -> int:
    """Bring the store ``[store] url`` names up to date (each node's, or the shared database),
    and the series store to compressed tiers, whatever its size."""
    settings = settings_module.load(args.instance)
    before, after = _migrate(settings)  # first: on PostgreSQL it makes the series tables too
    _open_series(settings, math.inf).close()
    engine = store_engine(settings.store.url)
    if before == after:
        print(f"hostpulse: the {engine} store's schema is up to date (version {after})")
    else:
        print(f"hostpulse: migrated the {engine} store's schema from version {before} to {after}")
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
    store = _postgres_url(settings)
    if store is not None:
        from hostpulse import tokens_store

        token = new_token()
        made = Token(
            hash_token(token), args.username, args.email or f"{args.username}@localhost", 0, tuple(args.role), hosts
        )
        if tokens_store.add_token(store, made) is None:
            raise SystemExit(f"hostpulse: a token for {args.username!r} exists; revoke it first")
        print(token)
        return 0
    token = _issue(settings, args.username, tuple(args.role), args.email, hosts)
    save(settings)
    print(token)
    return 0


def revoke(args: argparse.Namespace) -> int:
    settings = settings_module.load(args.instance)
    store = _postgres_url(settings)
    if store is not None:
        from hostpulse import tokens_store

        if not tokens_store.revoke_token(store, args.username):
            print(f"hostpulse: no token for {args.username!r}", file=sys.stderr)
            return 1
        print(f"hostpulse: revoked the token of {args.username!r}")
        return 0
    kept = tuple(t for t in settings.tokens if t.username != args.username)
    if len(kept) == len(settings.tokens):
        print(f"hostpulse: no token for {args.username!r}", file=sys.stderr)
        return 1
    settings.tokens = kept
    save(settings)
    print(f"hostpulse: revoked the token of {args.username!r}")
    return 0


def hosts(args: argparse.Namespace) -> int:
    """Every host the series store knows: last seen, series and raw samples kept."""
    store = _open_series(settings_module.load(args.instance))
    try:
        found = store.host_summaries()
    finally:
        store.close()
    if not found:
        print("hostpulse: no hosts yet")
    for h in found:
        seen = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(h.last_seen))
        print(f"{h.host:<32} last seen {seen}  {h.series:>6} series  {h.samples:>12} samples")
    return 0


def host_delete(args: argparse.Namespace) -> int:
    """Forget a host: all its series, samples, aggregates and batches."""
    store = _open_series(settings_module.load(args.instance))
    try:
        deleted = store.delete_host(args.name.lower())
    finally:
        store.close()
    if not deleted:
        print(f"hostpulse: no host {args.name!r}", file=sys.stderr)
        return 1
    print(f"hostpulse: deleted host {args.name!r} and all its series")
    return 0


def list_tokens(args: argparse.Namespace) -> int:
    settings = settings_module.load(args.instance)
    store = _postgres_url(settings)
    if store is not None:
        from hostpulse import tokens_store

        settings.tokens = tokens_store.tokens(store)
    for t in settings.tokens:
        print(f"{t.username:<16} {','.join(t.roles):<14} {t.email:<24} hosts {','.join(t.hosts)}")
    return 0


def list_commands(args: argparse.Namespace) -> int:
    """The allow-list in force: the PostgreSQL store's, else the config file's."""
    settings = settings_module.load(args.instance)
    store = _postgres_url(settings)
    if store is not None:
        from hostpulse import tokens_store
        from hostpulse.store_pg import connect

        with connect(store) as conn:
            settings.commands = tokens_store.load(conn)[2]
    for c in settings.commands:
        print(" ".join([c.program, *c.args]))
    return 0


def set_commands(args: argparse.Namespace) -> int:
    """PostgreSQL: the config file's ``[[commands]]`` (or the default list) become the
    store's allow-list, on every node within 2 s."""
    settings = settings_module.load(args.instance)
    store = _postgres_url(settings)
    if store is None:
        raise CannotStart("hostpulse: commands-set is for a PostgreSQL store; with SQLite edit [[commands]]")
    from hostpulse import tokens_store

    tokens_store.set_commands(store, settings.commands)
    print(f"hostpulse: the store's allow-list is now {len(settings.commands)} commands")
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
    p = commands.add_parser("migrate", help="create the store's tables or bring them up to date ([store] url)")
    p.set_defaults(run=migrate)
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
    p = commands.add_parser("commands", help="list the allowed commands (the PostgreSQL store's, or the config's)")
    p.set_defaults(run=list_commands)
    p = commands.add_parser("commands-set", help="PostgreSQL: make the config's [[commands]] the store's allow-list")
    p.set_defaults(run=set_commands)
    p = commands.add_parser("hosts", help="list the hosts of the series store, with their series and samples")
    p.set_defaults(run=hosts)
    p = commands.add_parser("host-delete", help="delete a host and all its series")
    p.add_argument("name")
    p.set_defaults(run=host_delete)
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
