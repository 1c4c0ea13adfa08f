"""The access log, one line a request, written by the app rather than by Hypercorn.

Hypercorn's access log builds, for every request, a dict of every request header, every
response header and every environment variable of the server (``AccessLogAtoms``), whatever
the format asks for: it cost a quarter of ``GET /json/dict``'s throughput here (4,550 against
5,580-6,290 req/s, ``wrk -t2 -c50``). ``hypercorn.toml`` leaves it off and this middleware
writes the same fields from what the request already carries::

    <worker pid> client "METHOD /path?query HTTP-version" status body-bytes duration-us

To silence or redirect it, configure the ``hostpulse.access`` logger (Hypercorn's
``logconfig`` option does); a handler configured there is kept. ``app/edge.py`` calls
:meth:`AccessLog.write` once an exchange is over.

The request target is the one the client sent (``raw_path``, still percent-encoded: a decoded
``%0A`` wrote a forged line, ``%1b[`` terminal escapes, ``%00`` a NUL), with control
characters escaped as ``\\xNN`` and ``\\`` and ``"`` backslash-escaped, so one request is always
one line and its quoted field ends where it should; the values of secret-looking query
parameters (``token``, ``access_token``, ``password``, ...) are written ``[redacted]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time

from hostpulse.logsafe import escape, redact_query

from . import logs
from .asgi import Scope

log = logging.getLogger("hostpulse.access")


def open_log() -> AccessLog:
    """The access log, on stdout unless the ``hostpulse.access`` logger was given a handler."""
    logs.configure(log.name, "stdout", safe=False)  # its lines are built safe (_target, _field)
    access = AccessLog()
    handler = log.handlers[0]
    if isinstance(handler, logging.StreamHandler) and hasattr(handler, "stream_name"):  # logs.configure's
        writer = _Writer(handler)
        access.writer = writer if writer.agrees() else None
    return access


class _Writer:
    """The default handler's line (``app/logs.py``: time, pid, level, message) written
    without a ``LogRecord``: ``logging`` took ~20 µs a request for it (the caller's frame, the
    record, the time formatted each time), a fifth of ``GET /json/dict`` in the app; here
    ~3 µs, the prefix made once a second. Only while that handler is the logger's one and
    nothing was changed on it (formatter, level, filters); else the line goes through
    ``logging`` as before.

    The lines of one turn of the event loop are written together at its end, in one write
    and one flush: a write per line is a system call per request when Python's streams are
    unbuffered (``PYTHONUNBUFFERED``, as container images often set), ~3 % of
    ``GET /json/dict`` served by Hypercorn here (py-spy). A line is out before the loop
    looks at its sockets again."""

    def __init__(self, handler: logging.StreamHandler) -> None:  # type: ignore[type-arg]
        self.handler = handler
        self.stream_name: str = getattr(handler, "stream_name", "stdout")
        self.formatter = handler.formatter
        self.second = -1
        self.prefix = ""
        self.pending: list[str] = []  # lines of this turn of the event loop

    def usable(self) -> bool:
        handler = self.handler
        handlers = log.handlers
        return (
            len(handlers) == 1
            and handlers[0] is handler
            and handler.formatter is self.formatter
            and not log.filters
            and not handler.filters
            and handler.level <= logging.INFO
        )

    def prefix_at(self, now: float) -> str:
        """What the handler's formatter writes before the message of an INFO record made at ``now``."""
        if int(now) != self.second:  # the format's time has whole seconds
            assert self.formatter is not None
            stamp = time.strftime(self.formatter.datefmt or "", self.formatter.converter(now))
            pid = os.getpid() if logging.logProcesses else None
            self.prefix = f"{stamp} [{pid}] [{logging.getLevelName(logging.INFO)}] "
            self.second = int(now)
        return self.prefix

    def agrees(self) -> bool:
        """Whether the handler's formatter writes what this does (app/logs.py's format)."""
        record = log.makeRecord(log.name, logging.INFO, __file__, 0, "%s", ("line",), None)
        return self.handler.format(record) == self.prefix_at(record.created) + "line"

    def write(self, message: str) -> None:
        """``message`` as ``handler.handle`` writes it for an INFO record made now."""
        self.pending.append(self.prefix_at(time.time()) + message + self.handler.terminator)
        if len(self.pending) == 1:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no event loop here: at once
                self.flush()

    def flush(self) -> None:
        lines, self.pending = self.pending, []
        handler = self.handler
        with handler.lock or contextlib.nullcontext():
            stream = getattr(sys, self.stream_name)
            handler.stream = stream  # as the handler's own emit does (logs._Current)
            try:
                stream.write("".join(lines))
                stream.flush()
            except Exception:  # noqa: BLE001 -- as logging reports a failed emit, on stderr
                handler.handleError(log.makeRecord(log.name, logging.INFO, __file__, 0, "%s", (lines,), None))


class AccessLog:
    """One line an exchange, written through the default handler's fast path when it can."""

    def __init__(self) -> None:
        self.pid = f"<{os.getpid()}>"
        self.writer: _Writer | None = None  # the default handler's fast path (open_log)
        # '"METHOD target version"' by what it is made of: a service sees the same few
        # request lines again and again, and escaping one took ~2 µs (bench/overhead.py)
        self.lines: dict[tuple[str, bytes | str, bytes, str], str] = {}

    @staticmethod
    def enabled() -> bool:
        return log.isEnabledFor(logging.INFO)

    def write(self, scope: Scope, status: int | str, size: int, took: float) -> None:
        request_line = self.request_line(scope)
        writer = self.writer
        if writer is not None and writer.usable():
            writer.write(f"{self.pid} {_client(scope)} {request_line} {status} {size} {int(took)}us")
            return
        log.info("%s %s %s %s %d %dus", self.pid, _client(scope), request_line, status, size, took)

    def request_line(self, scope: Scope) -> str:
        """``"METHOD target version"``, quoted, escaped and redacted."""
        method, version = scope.get("method", "GET"), scope.get("http_version", "1.1")
        key = (method, scope.get("raw_path") or scope["path"], scope.get("query_string", b""), version)
        line = self.lines.get(key)
        if line is None:
            if len(self.lines) >= 1024:  # bounded: a scan of random paths makes no lasting entries
                self.lines.clear()
            line = self.lines[key] = f'"{_field(method)} {_target(scope)} {_field(version)}"'
        return line


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "-"


def _field(text: str) -> str:
    """``text`` for a quoted field of one line: ``\\`` and ``"`` escaped, control characters too."""
    if "\\" in text or '"' in text:
        text = text.replace("\\", "\\\\").replace('"', '\\"')
    return escape(text)


def _target(scope: Scope) -> str:
    """The target as sent (percent-encoded), with secret query values redacted."""
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if raw else scope["path"]
    query = scope.get("query_string", b"")
    return _field(path + ("?" + redact_query(query.decode("latin-1")) if query else ""))
