"""One typed settings object for both apps: defaults, then TOML, then ``HOSTPULSE_*``.

Modelled on Hypercorn's ``Config``: plain attributes with types, loaded from a TOML
file. Both the Flask version and the port call :func:`load`, so they can never
disagree about a limit, a token or the allow-list.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hostpulse.tokens import ROLES

MiB = 1024 * 1024
log = logging.getLogger("hostpulse.settings")


class SettingsError(ValueError):
    """A configuration that cannot be used; the message names the file and the key."""


@dataclass
class Limits:
    max_content_length: int = 32 * MiB
    max_upload_length: int = 4 * 1024 * MiB
    max_form_memory_size: int = 500_000
    max_form_parts: int = 1000
    # The port's connections (issue 11): seconds a request body may go without a byte (then
    # 408 and the connection closed), seconds an agent's WebSocket may send nothing (then it
    # is closed), and requests in progress plus WebSockets one token may hold in a worker
    # (beyond: 429). 0 turns each off.
    body_timeout: float = 30.0
    websocket_idle_timeout: float = 300.0
    connections_per_token: int = 256
    # The longest command line ``POST /api/exec`` takes (characters of ``cmd``; 413 above);
    # its body is read up to 16 times that at most (issue 11, item 5).
    max_command_length: int = 4096


@dataclass
class Jobs:
    limit: int = 1
    timeout: float = 60.0
    line_num: int = 3
    # How a job's whole process tree is held and killed: auto | cgroup | subreaper
    # (hostpulse/containment.py; issue 11, item 4).
    containment: str = "auto"


@dataclass
class Store:
    path: str = "hostpulse.sqlite3"
    # Where the service store lives (issue 16): "" or sqlite:///<path> (relative to the
    # instance folder; sqlite:////abs for an absolute one) for the embedded SQLite file,
    # postgresql://user@host:port/db for PostgreSQL shared by several nodes.
    url: str = ""
    # Seconds each tier of the series store keeps (hostpulse/series/tiers.py): raw samples,
    # 5-minute aggregates, hourly aggregates (0: forever). A sample older than the longest
    # is refused.
    retention: float = 7 * 24 * 3600.0
    retention_medium: float = 90 * 24 * 3600.0
    retention_hourly: float = 730 * 24 * 3600.0
    max_skew: float = 300.0  # seconds a sample's ts may be ahead of the service's clock
    # 0 turns each of these off (kept forever, no cap):
    legacy_retention: float = 30 * 24 * 3600.0  # seconds legacy POST / bodies are kept
    max_series_per_host: int = 10_000  # series (names with a latest value) one host may have
    max_series: int = 1_000_000  # series of all hosts together

    @property
    def longest_retention(self) -> float:
        """Seconds the longest-kept tier keeps (``math.inf``: one keeps forever)."""
        kept = (self.retention, self.retention_medium, self.retention_hourly)
        return math.inf if 0 in kept else max(kept)

    def __post_init__(self) -> None:
        store_engine(self.url)  # a bad URL is refused where the settings are made: init, start


STORE_URL_HELP = (
    "use sqlite:///<path> (or nothing) for the embedded store, postgresql://user@host:port/db for PostgreSQL"
)


def store_engine(url: str) -> str:
    """``"sqlite"`` or ``"postgresql"``, the engine ``[store] url`` names; :class:`SettingsError`
    in one line for a URL that names neither (never echoing it: it may hold a password)."""
    from urllib.parse import urlsplit

    if not url:
        return "sqlite"
    scheme = url.partition(":")[0].lower()
    if scheme == "sqlite":
        if not url.startswith("sqlite:///") or not url[len("sqlite:///") :]:
            raise SettingsError(f"[store] url: a SQLite URL is sqlite:///<path>, got {url!r}")
        return "sqlite"
    if scheme in ("postgresql", "postgres"):
        try:
            urlsplit(url).port  # noqa: B018 -- parsed for its errors: a bad port raises
        except ValueError as exc:
            raise SettingsError(f"[store] url: not a PostgreSQL URL ({exc}); {STORE_URL_HELP}") from None
        return "postgresql"
    raise SettingsError(f"[store] url: unknown scheme {scheme!r}; {STORE_URL_HELP}")


@dataclass(frozen=True)
class Token:
    """A configured token: only its SHA-256 is kept, with the user it stands for."""

    sha256: str
    username: str
    email: str = ""
    id: int = 0
    roles: tuple[str, ...] = ()
    # The hosts whose batches it may send: shell-style patterns, lower case (README, "Tokens
    # and roles": an agent's token reports only its hosts). Left out of the file: every host.
    hosts: tuple[str, ...] = ("*",)


@dataclass(frozen=True)
class Command:
    """An allowed command: the exact program and one full-match pattern per argument."""

    program: str
    args: tuple[str, ...] = ()


SCRIPT_PATTERN = r"[A-Za-z0-9_][A-Za-z0-9_.-]*\.py"

DEFAULT_COMMANDS: tuple[Command, ...] = (
    Command("uptime"),
    Command("df", ("-h",)),
    Command("free", ("-m",)),
    Command("python3", (SCRIPT_PATTERN,)),
)


@dataclass
class ConfigSource:
    """The config file as it was when read: its path and its ``os.stat`` stamp."""

    path: Path
    stamp: tuple[int, ...] | None
    checked: float = 0.0  # time.monotonic() of the last look at the file


@dataclass
class StoreSource:
    """Tokens and commands of the PostgreSQL store (issue 16: ``hostpulse.tokens_store``):
    its URL and the ``config_version`` they were read at; followed by ``hostpulse.reload``."""

    url: str
    version: int
    poller: Any = None  # the thread that polls the version, in the process that started it
    pid: int = 0


def file_stamp(path: Path) -> tuple[int, ...] | None:
    """What changes whenever the file does (a new inode when replaced, else size and times)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@dataclass
class Settings:
    instance: Path = field(default_factory=lambda: Path("instance"))
    limits: Limits = field(default_factory=Limits)
    jobs: Jobs = field(default_factory=Jobs)
    store: Store = field(default_factory=Store)
    tokens: tuple[Token, ...] = ()
    commands: tuple[Command, ...] = DEFAULT_COMMANDS
    # The config file tokens and commands came from, to read them again when it changes
    # (hostpulse.reload); None for settings made in code.
    source: ConfigSource | None = field(default=None, compare=False, repr=False)
    # On PostgreSQL, where tokens and commands come from instead of the file (issue 16).
    store_source: StoreSource | None = field(default=None, compare=False, repr=False)

    @property
    def db_path(self) -> Path:
        """The SQLite file: ``[store] url`` when it is a ``sqlite:///`` one, else ``[store] path``."""
        if self.store.url.lower().startswith("sqlite:///"):
            return self.instance / self.store.url[len("sqlite:///") :]  # an absolute path stays one
        return self.instance / self.store.path

    @property
    def uploads(self) -> Path:
        return self.instance / "uploads"

    @property
    def scripts(self) -> Path:
        """Where allowed scripts live; jobs run with this as their working directory."""
        return self.instance / "scripts"


SECTIONS = {"limits": Limits, "jobs": Jobs, "store": Store}


def instance_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The instance folder: the argument, else ``$HOSTPULSE_INSTANCE``, else ``./instance``."""
    raw = explicit or os.environ.get("HOSTPULSE_INSTANCE") or "instance"
    return Path(raw).absolute()


def config_path(instance: Path, environ: Mapping[str, str] = os.environ) -> Path:
    return Path(environ.get("HOSTPULSE_CONFIG") or instance / "config.toml")


Kind = type[int] | type[float] | type[str]
KINDS: dict[str, Kind] = {"int": int, "float": float, "str": str}


def _kind(f: dataclasses.Field[Any]) -> Kind:
    """A section field's kind, from its annotation (a string: this module's annotations are)."""
    return KINDS[str(f.type)]


def _coerce(value: Any, kind: Kind, where: str) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(value, str) and kind is not str:
        try:
            value = kind(value)
        except ValueError:
            raise SettingsError(f"{where}: {value!r} is not a valid {kind.__name__}") from None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise SettingsError(f"{where}: expected {kind.__name__}, got {value!r}")
    if isinstance(value, int | float) and value < 0:
        raise SettingsError(f"{where}: must not be negative, got {value!r}")
    return value


def _section(cls: type, data: Mapping[str, Any], where: str) -> Any:
    if not isinstance(data, Mapping):
        raise SettingsError(f"{where}: expected a table")
    kinds = {f.name: _kind(f) for f in dataclasses.fields(cls)}
    unknown = set(data) - set(kinds)
    if unknown:
        raise SettingsError(f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(kinds)}")
    return cls(**{k: _coerce(v, kinds[k], f"{where}.{k}") for k, v in data.items()})


def _tokens(items: Any, where: str) -> tuple[Token, ...]:
    if not isinstance(items, list):
        raise SettingsError(f"{where}: expected an array of tables [[tokens]]")
    tokens = []
    for n, item in enumerate(items):
        at = f"{where}[{n}]"
        if not isinstance(item, Mapping) or not isinstance(item.get("sha256"), str):
            raise SettingsError(f"{at}: needs sha256")
        roles = tuple(item.get("roles", ()))
        if not roles or not set(roles) <= set(ROLES):
            raise SettingsError(f"{at}: roles must be a non-empty subset of {list(ROLES)}")
        tokens.append(
            Token(
                sha256=item["sha256"].lower(),
                username=str(item.get("username", "")),
                email=str(item.get("email", "")),
                id=_coerce(item.get("id", 0), int, f"{at}.id"),
                roles=roles,
                hosts=host_patterns(item.get("hosts", ["*"]), f"{at}.hosts"),
            )
        )
    return tuple(tokens)


_HOST_PATTERN = re.compile(r"[A-Za-z0-9.*?\[\]!-]{1,253}")


def host_patterns(value: Any, where: str) -> tuple[str, ...]:
    """Shell-style patterns of host names (``web-1``, ``db-*``, ``cache-[0-9]``), lower case."""
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(p, str) for p in value):
        raise SettingsError(f"{where}: expected a non-empty list of host name patterns, got {value!r}")
    for pattern in value:
        if not _HOST_PATTERN.fullmatch(pattern):
            raise SettingsError(f"{where}: {pattern!r} is not a host name pattern (letters, digits, . - and * ? [ ] !)")
    return tuple(p.lower() for p in value)


def _commands(items: Any, where: str) -> tuple[Command, ...]:
    if not isinstance(items, list):
        raise SettingsError(f"{where}: expected an array of tables [[commands]]")
    commands = []
    for n, item in enumerate(items):
        at = f"{where}[{n}]"
        if not isinstance(item, Mapping) or not isinstance(item.get("program"), str):
            raise SettingsError(f"{at}: needs program")
        args = item.get("args", [])
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise SettingsError(f"{at}.args: expected a list of patterns")
        for pattern in args:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise SettingsError(f"{at}.args: bad pattern {pattern!r}: {exc}") from None
        commands.append(Command(item["program"], tuple(args)))
    return tuple(commands)


def load(instance: str | os.PathLike[str] | None = None, environ: Mapping[str, str] = os.environ) -> Settings:
    """Defaults, then the TOML file (if present), then ``HOSTPULSE_<SECTION>_<KEY>``."""
    folder = Path(instance or environ.get("HOSTPULSE_INSTANCE") or "instance").absolute()
    path = config_path(folder, environ)
    stamp = file_stamp(path)  # before reading: a change made while reading is seen later
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{path}: {exc}") from None
    unknown = set(data) - {*SECTIONS, "tokens", "commands"}
    if unknown:
        raise SettingsError(f"{path}: unknown section(s) {sorted(unknown)}")
    settings = Settings(instance=folder, source=ConfigSource(path, stamp))
    for name, cls in SECTIONS.items():
        section = dict(data.get(name, {}))
        for f in dataclasses.fields(cls):
            env = f"HOSTPULSE_{name.upper()}_{f.name.upper()}"
            if env in environ:  # coerced here, so that an error names the variable
                section[f.name] = _coerce(environ[env], _kind(f), env)
        setattr(settings, name, _section(cls, section, f"{path.name} [{name}]"))
    if "tokens" in data:
        settings.tokens = _tokens(data["tokens"], f"{path.name} tokens")
    if "commands" in data:
        settings.commands = _commands(data["commands"], f"{path.name} commands")
    _warn_unknown_variables(environ)
    return settings


def for_app(instance_path: str | os.PathLike[str] | None = None, settings: Settings | None = None) -> Settings:
    """The settings a ``create_app`` runs with: ``settings`` made in code (tests: no file is
    read), else :func:`load` from ``instance_path``. Both at once is refused: which folder?"""
    if settings is None:
        return load(instance_path)
    if instance_path is not None:
        raise TypeError("create_app takes settings or instance_path, not both (settings.instance is the folder)")
    return settings


# Variables read outside the sections (HOSTPULSE_AGENT_* are the agent's own, checked there).
OTHER_VARIABLES = {"HOSTPULSE_INSTANCE", "HOSTPULSE_CONFIG", "HOSTPULSE_LOOP_PROBE"}
_warned: set[str] = set()


def _warn_unknown_variables(environ: Mapping[str, str]) -> None:
    """A mistyped ``HOSTPULSE_*`` name would be ignored silently: say so, once a process."""
    import difflib

    known = OTHER_VARIABLES | {
        f"HOSTPULSE_{name.upper()}_{f.name.upper()}" for name, cls in SECTIONS.items() for f in dataclasses.fields(cls)
    }
    for name in sorted(environ):
        if not name.startswith("HOSTPULSE_") or name.startswith("HOSTPULSE_AGENT_") or name in known:
            continue
        if name not in _warned:
            _warned.add(name)
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            log.warning("unknown variable %s is ignored%s", name, hint)
