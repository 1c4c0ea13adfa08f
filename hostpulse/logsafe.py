"""Log lines nobody can forge and that hold no secret, for both apps (issue 11, item 9).

A request's path, query, headers or body may reach a log line: decoded, ``%0A`` starts a line
that looks like the service's own, ``%1b[`` drives the reader's terminal, ``%00`` cuts a line
for some tools; ``?token=...`` would keep a credential in a file readable by more people than
the tokens are. Here:

- :func:`escape` writes every control character (C0, DEL, C1, U+2028/U+2029) as ``\\xNN`` /
  ``\\uNNNN``;
- :func:`redact` replaces what follows ``Bearer`` and the value of a secret-looking
  ``name=value`` (token, secret, password, key, ...) with ``[redacted]``;
- :class:`SafeRecords`, a logging filter, applies both to a record's message and to the
  exception messages of its traceback (the traceback keeps its own line breaks).

And one line per change of state, not per request (:class:`Repeats`): a full disk made every
batch and every request log its traceback (2,525 in 15 s). An error logged with an exception
is written once; the same exception again (its type and message, digits aside) is counted,
not written, until it has not happened for :data:`QUIET` seconds, when one line says how many
were left out and when they stopped (every :data:`REMIND` seconds while it goes on).
"""

from __future__ import annotations

import logging
import re
import threading
import time
import traceback
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import unquote

REDACTED = "[redacted]"

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# The name of a query parameter or ``name=value`` pair whose value is a credential.
SECRET_NAME = re.compile(
    r"(?i)(token|secret|passw|passphrase|pwd|api[_-]?key|apikey|^key$|private[_-]?key|signature|^sig$"
    r"|session|cookie|credential|^auth|bearer|jwt)"
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)(\s+)[^\s,;\"']+")
_PAIR = re.compile(r"([A-Za-z0-9_%.-]+)=([^&\s\"',;]+)")


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape(text: str) -> str:
    """``text`` with every control character written as an escape: one line, no terminal codes."""
    return _CONTROL.sub(_escape_char, text) if _CONTROL.search(text) else text


def is_secret_name(name: str) -> bool:
    return bool(SECRET_NAME.search(unquote(name).replace("-", "_")))


def redact(text: str) -> str:
    """``text`` without credentials: ``Bearer <x>`` and ``token=<x>`` lose their value."""
    if "=" in text:
        text = _PAIR.sub(lambda m: f"{m[1]}={REDACTED}" if is_secret_name(m[1]) else m[0], text)
    if "earer" in text or "asic" in text:
        text = _BEARER.sub(lambda m: f"{m[1]}{m[2]}{REDACTED}", text)
    return text


def redact_query(query: str) -> str:
    """A query string with the values of secret-looking parameters replaced, the rest as is."""
    if not query:
        return query
    parts = []
    for part in query.split("&"):
        name, eq, _ = part.partition("=")
        parts.append(f"{name}={REDACTED}" if eq and is_secret_name(name) else part)
    return "&".join(parts)


def safe(text: str) -> str:
    return escape(redact(text))


def _safe_traceback(exc_info: tuple[type[BaseException], BaseException, TracebackType | None]) -> str:
    """The traceback as ``logging`` writes it, each exception's message made safe."""
    te = traceback.TracebackException(*exc_info)
    seen: set[int] = set()
    stack = [te]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        message = getattr(current, "_str", None)  # 3.11-3.13 keep the message in a private _str
        if isinstance(message, str):
            current._str = safe(message)  # type: ignore[attr-defined]  # which typeshed leaves out
        notes = getattr(current, "__notes__", None)
        if notes:
            current.__notes__ = [safe(str(note)) for note in notes]
        stack += [c for c in (current.__cause__, current.__context__) if c is not None]
        stack += list(getattr(current, "exceptions", None) or ())
    text = "".join(te.format()).rstrip("\n")
    # the source lines are the service's own; anything else stays on its line
    return "\n".join(escape(line) for line in text.split("\n"))


class SafeRecords(logging.Filter):
    """Makes every record it sees safe to write: one line a message, no secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_hostpulse_safe", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format: logging reports it when it formats the record
            return True
        cleaned = safe(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
            record.exc_text = _safe_traceback(record.exc_info)
        if record.stack_info:
            record.stack_info = "\n".join(escape(line) for line in record.stack_info.split("\n"))
        record._hostpulse_safe = True
        return True


SAFE = SafeRecords()

#: seconds without the same error after which its repeats are summed up in one line
QUIET = 10.0
#: seconds between two summaries of an error that goes on
REMIND = 600.0
_DIGITS = re.compile(r"\d+")


@dataclass
class _Episode:
    logger: str
    what: str  # "OperationalError: disk I/O error"
    started: float  # time.time() of the first
    first: float  # time.monotonic() of the first
    last: float  # time.monotonic() of the latest
    since_report: float  # time.monotonic() the count started
    count: int = 0  # repeats not written since ``since_report``
    total: int = 0  # repeats not written in all


class Repeats(logging.Filter):
    """Writes an error with an exception once per episode (see above); thread-safe, and
    idempotent for a record it sees twice (on its logger and on a handler)."""

    def __init__(self, quiet: float = QUIET, remind: float = REMIND) -> None:
        super().__init__()
        self.quiet = quiet
        self.remind = remind
        self._lock = threading.Lock()
        self._episodes: dict[tuple[str, str], _Episode] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        decided = getattr(record, "_hostpulse_repeat", None)  # set below, a bool
        if isinstance(decided, bool):
            return decided
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None or record.levelno < logging.ERROR:
            record._hostpulse_repeat = True
            return True
        text = safe(str(exc))[:300]
        key = (type(exc).__qualname__, _DIGITS.sub("#", text))
        now = time.monotonic()
        with self._lock:
            episode = self._episodes.get(key)
            if episode is None:
                self._episodes[key] = _Episode(record.name, f"{type(exc).__name__}: {text}", time.time(), now, now, now)
                first = True
            else:
                episode.count += 1
                episode.total += 1
                episode.last = now
                first = False
        if first:
            self._arm(key, self.quiet)
            try:
                message = record.getMessage()
            except Exception:
                message = str(record.msg)
            record.msg = f"{message} (the same error again is counted, not logged, until it stops for {self.quiet:g} s)"
            record.args = None
        record._hostpulse_repeat = first
        return first

    def _arm(self, key: tuple[str, str], delay: float) -> None:
        timer = threading.Timer(delay, self._check, (key,))
        timer.daemon = True
        timer.start()

    def _check(self, key: tuple[str, str]) -> None:
        now = time.monotonic()
        with self._lock:
            episode = self._episodes.get(key)
            if episode is None:
                return
            quiet_for = now - episode.last
            if quiet_for >= self.quiet:
                del self._episodes[key]
                ended, report = True, episode.total > 0
            else:
                ended, report = False, now - episode.since_report >= self.remind and episode.count > 0
            count, total = episode.count, episode.total
            if report:
                episode.count, episode.since_report = 0, now
        logger = logging.getLogger(episode.logger)
        started = time.strftime("%H:%M:%S", time.localtime(episode.started))
        if ended and report:
            logger.warning("%s: stopped; %d more since %s were not logged", episode.what, total, started)
        elif not ended:
            if report:
                logger.warning(
                    "%s: still happening; %d more in the last %.0f s were not logged (%d since %s)",
                    episode.what,
                    count,
                    self.remind,
                    total,
                    started,
                )
            self._arm(key, max(0.05, min(self.quiet - quiet_for, self.remind)))


REPEATS = Repeats()


def protect(logger: logging.Logger) -> logging.Logger:
    """Make ``logger``'s records (and what its handlers write) safe, and its repeated errors
    one line an episode; idempotent."""
    for target in (logger, *logger.handlers):
        for wanted in (REPEATS, SAFE):
            if wanted not in target.filters:
                target.addFilter(wanted)
    return logger


def protect_tree(name: str, skip: tuple[str, ...] = ()) -> None:
    """:func:`protect` every logger named ``name`` or ``name.*`` that exists now, but those
    in ``skip`` (an access log that builds its lines safe already)."""
    protect(logging.getLogger(name))
    for other in list(logging.root.manager.loggerDict):
        if other.startswith(name + ".") and other not in skip:
            protect(logging.getLogger(other))


__all__ = [
    "QUIET",
    "REDACTED",
    "REMIND",
    "REPEATS",
    "SAFE",
    "Repeats",
    "SafeRecords",
    "escape",
    "protect",
    "protect_tree",
    "redact",
    "redact_query",
    "safe",
]
