"""The agent's settings: defaults, then a TOML file, then ``HOSTPULSE_AGENT_*``, then flags.

Like Telegraf's agent, every setting can come from any of the three places, so the same
binary runs from a systemd unit (environment file), a config management tool (TOML) or
a shell (flags). Flags win, then the environment, then the file.

``server`` may name several services (``--server`` repeated, a TOML list, or URLs separated
by spaces or commas in ``HOSTPULSE_AGENT_SERVER``): the agent sends to the first and fails
over to the next when one cannot be reached (``agent/transport.py``).
"""

from __future__ import annotations

import argparse
import difflib
import os
import socket
import sys
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from hostpulse.samples import DEFAULT_LIMITS, valid_host

ENV_PREFIX = "HOSTPULSE_AGENT_"
MiB = 1024 * 1024
MIN_SPOOL_SIZE = 64 * 1024
TRANSPORTS = ("ws", "http")


class SettingsError(ValueError):
    """A setting that cannot be used; the message says where it came from."""


def default_spool() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "hostpulse-agent" / "spool"


@dataclass(frozen=True)
class AgentSettings:
    server: str = "http://127.0.0.1:8000"  # the first service: where --once posts, where streaming starts
    failover: tuple[str, ...] = ()  # the other services, in the order they are tried after it
    token: str = ""
    interval: float = 10.0
    batch: int = 1
    spool: Path = field(default_factory=default_spool)
    spool_size: int = 16 * MiB
    host: str = ""
    transport: str = "ws"
    flush_timeout: float = 5.0
    log_level: str = "info"
    names: tuple[str, ...] = ()
    once: bool = False
    config: Path | None = None

    @property
    def servers(self) -> tuple[str, ...]:
        """Every service the agent may send to, in the order it tries them."""
        return (self.server, *self.failover)

    @property
    def ws_url(self) -> str:
        """The WebSocket endpoint, derived from the base URL (``http`` -> ``ws``)."""
        return endpoint(self.server, "/ws/agent", websocket=True)

    @property
    def ingest_url(self) -> str:
        return endpoint(self.server, "/ingest", websocket=False)

    @property
    def legacy_url(self) -> str:
        """Seed 000's ``POST /``."""
        return endpoint(self.server, "/", websocket=False)


# Settings a file or the environment may set: name -> type (names and once are flags/lists).
KINDS: dict[str, type] = {
    "server": list,  # one URL or several
    "token": str,
    "interval": float,
    "batch": int,
    "spool": Path,
    "spool_size": int,
    "host": str,
    "transport": str,
    "flush_timeout": float,
    "log_level": str,
    "names": tuple,
}


def endpoint(server: str, path: str, websocket: bool) -> str:
    """``http://h:8000/base`` + ``/ws/agent`` -> ``ws://h:8000/base/ws/agent``."""
    parts = urlsplit(server)
    scheme = parts.scheme.lower()
    secure = scheme in ("https", "wss")
    if websocket:
        scheme = "wss" if secure else "ws"
    else:
        scheme = "https" if secure else "http"
    base = parts.path.rstrip("/")
    return urlunsplit((scheme, parts.netloc, base + path, "", ""))


def _coerce(name: str, value: Any, where: str) -> Any:
    kind = KINDS[name]
    if kind is list:  # servers: a string (several split on spaces or commas) or a list of strings
        if isinstance(value, str):
            value = value.replace(",", " ").split()
        if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) for v in value):
            raise SettingsError(f"{where}: {name} must be a URL or a non-empty list of URLs, got {value!r}")
        return tuple(value)
    if kind is tuple:
        if isinstance(value, str):
            value = value.replace(",", " ").split()
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise SettingsError(f"{where}: {name} must be a list of psutil names")
        return tuple(value)
    if kind is Path:
        if not isinstance(value, (str, os.PathLike)) or not str(value):
            raise SettingsError(f"{where}: {name} must be a path")
        return Path(os.path.expanduser(str(value)))
    if isinstance(value, bool):
        raise SettingsError(f"{where}: {name} must be a {kind.__name__}, got {value!r}")
    if kind is float and isinstance(value, int):
        return float(value)
    if isinstance(value, str) and kind is not str:
        try:
            return kind(value.strip())
        except ValueError:
            raise SettingsError(f"{where}: {name} must be a {kind.__name__}, got {value!r}") from None
    if not isinstance(value, kind):
        raise SettingsError(f"{where}: {name} must be a {kind.__name__}, got {value!r}")
    return value


def _from_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"cannot read the config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: {exc}") from None
    unknown = set(data) - set(KINDS)
    if unknown:
        raise SettingsError(f"{path}: unknown key(s) {sorted(unknown)}; known: {sorted(KINDS)}")
    values = {name: _coerce(name, value, str(path)) for name, value in data.items()}
    # A relative spool path in a file means: beside the file.
    if "spool" in values and not values["spool"].is_absolute():
        values["spool"] = path.parent / values["spool"]
    return values


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    values = {}
    for name in KINDS:
        key = ENV_PREFIX + name.upper()
        if key in environ:
            values[name] = _coerce(name, environ[key], key)
    known = {ENV_PREFIX + name.upper() for name in KINDS} | {ENV_PREFIX + "CONFIG"}
    for key in sorted(k for k in environ if k.startswith(ENV_PREFIX) and k not in known):
        close = difflib.get_close_matches(key, sorted(known), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        print(f"hostpulse-agent: warning: unknown variable {key} is ignored{hint}", file=sys.stderr)
    return values


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hostpulse-agent",
        description="Stream this host's psutil metrics to a hostpulse service.",
        epilog=(
            "Every option may also come from HOSTPULSE_AGENT_<NAME> (e.g. HOSTPULSE_AGENT_TOKEN) "
            "or from the TOML file given by --config (keys as the option names, with _); "
            "flags win over the environment, which wins over the file."
        ),
    )
    p.add_argument(
        "names",
        nargs="*",
        metavar="PSUTIL_NAME",
        help="psutil functions to collect (default: a set for CPU, memory, disks, network, load)",
    )
    p.add_argument(
        "--server",
        action="append",
        help="service base URL: http(s)://host:port or ws(s)://host:port; repeat it to fail over "
        "between several services (tried in order)",
    )
    p.add_argument("--token", help="bearer token with the agent role")
    p.add_argument("--interval", help="seconds between samples (default 10)")
    p.add_argument("--batch", help="samples per batch (default 1)")
    p.add_argument("--spool", help="spool directory for batches not yet acknowledged")
    p.add_argument("--spool-size", dest="spool_size", help="spool bound in bytes; the oldest batches go first")
    p.add_argument("--host", help="host name sent with each batch (default: this host's name)")
    p.add_argument("--transport", choices=TRANSPORTS, help="ws (default) or http (POST /ingest)")
    p.add_argument(
        "--flush-timeout", dest="flush_timeout", help="seconds to keep sending after SIGTERM/SIGINT (default 5)"
    )
    p.add_argument("--log-level", dest="log_level", help="debug, info (default), warning, error")
    p.add_argument("--once", action="store_true", help="seed 000: POST one JSON list to /, print the answer, exit")
    p.add_argument("--config", help="TOML file with settings (also HOSTPULSE_AGENT_CONFIG)")
    return p


def _check(s: AgentSettings) -> AgentSettings:
    for server in s.servers:
        parts = urlsplit(server)
        if parts.scheme.lower() not in ("http", "https", "ws", "wss") or not parts.hostname:
            raise SettingsError(f"server must be an http(s):// or ws(s):// URL with a host, got {server!r}")
        if parts.query or parts.fragment:
            raise SettingsError(f"server must be a base URL without query or fragment, got {server!r}")
    if len(set(s.servers)) != len(s.servers):
        raise SettingsError(f"server names a service twice: {', '.join(s.servers)}")
    if not s.token:
        raise SettingsError("no token: pass --token, set HOSTPULSE_AGENT_TOKEN, or put token in the --config file")
    if not 0.05 <= s.interval <= 86400:
        raise SettingsError(f"interval must be between 0.05 and 86400 seconds, got {s.interval}")
    if not 1 <= s.batch <= DEFAULT_LIMITS.max_samples:
        raise SettingsError(f"batch must be between 1 and {DEFAULT_LIMITS.max_samples}, got {s.batch}")
    if s.spool_size < MIN_SPOOL_SIZE:
        raise SettingsError(f"spool_size must be at least {MIN_SPOOL_SIZE} bytes, got {s.spool_size}")
    if s.transport not in TRANSPORTS:
        raise SettingsError(f"transport must be one of {', '.join(TRANSPORTS)}, got {s.transport!r}")
    if not 0 <= s.flush_timeout <= 3600:
        raise SettingsError(f"flush_timeout must be between 0 and 3600 seconds, got {s.flush_timeout}")
    if s.log_level.lower() not in ("debug", "info", "warning", "error"):
        raise SettingsError(f"log_level must be debug, info, warning or error, got {s.log_level!r}")
    if not valid_host(s.host):
        raise SettingsError(
            f"host {s.host!r} is not an RFC 1123 host name (letters, digits, inner hyphens, dots): set --host"
        )
    return s


def load(argv: Sequence[str] | None = None, environ: Mapping[str, str] = os.environ) -> AgentSettings:
    """Parse flags (``argparse`` exits on a malformed command line); raise
    :class:`SettingsError` for a value that parses but cannot be used."""
    args = parser().parse_args(argv)
    config = args.config or environ.get(ENV_PREFIX + "CONFIG")
    values: dict[str, Any] = {}
    if config:
        values.update(_from_file(Path(config)))
    values.update(_from_env(environ))
    for name in KINDS:
        given = getattr(args, name, None)
        if name == "names":
            if given:
                values["names"] = tuple(given)
        elif name == "server" and given:  # --server repeated: each flag one URL (or several)
            values["server"] = tuple(url for flag in given for url in _coerce(name, flag, "--server"))
        elif given is not None:
            values[name] = _coerce(name, given, "--" + name.replace("_", "-"))
    if "host" not in values:
        values["host"] = socket.gethostname().lower()
    if "server" in values:
        values["server"], *more = values["server"]
        values["failover"] = tuple(more)
    settings = AgentSettings(**values, once=args.once, config=Path(config) if config else None)
    return _check(replace(settings, host=settings.host.lower(), log_level=settings.log_level.lower()))


__all__ = ["AgentSettings", "SettingsError", "endpoint", "load", "parser"]
