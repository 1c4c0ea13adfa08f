"""The access log, one line a request, written by the app rather than by Hypercorn.

Hypercorn's access log builds, for every request, a dict of every request header, every
response header and every environment variable of the server (``AccessLogAtoms``), whatever
the format asks for: it cost a quarter of ``GET /json/dict``'s throughput here (4,550 against
5,580-6,290 req/s, ``wrk -t2 -c50``). ``hypercorn.toml`` leaves it off and this middleware
writes the same fields from what the request already carries::

    <worker pid> client "METHOD /path?query HTTP-version" status body-bytes duration-us

To silence or redirect it, configure the ``hostpulse.access`` logger (Hypercorn's
``logconfig`` option does); a handler configured there is kept.

The request target is the one the client sent (``raw_path``, still percent-encoded: a decoded
``%0A`` wrote a forged line, ``%1b[`` terminal escapes, ``%00`` a NUL), with control
characters escaped as ``\\xNN`` and ``\\`` and ``"`` backslash-escaped, so one request is always
one line and its quoted field ends where it should; the values of secret-looking query
parameters (``token``, ``access_token``, ``password``, ...) are written ``[redacted]``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from typing import Any

from quart import Quart

from hostpulse.logsafe import escape, redact_query

from . import logs
from .asgi import Message, Receive, Scope, Send

log = logging.getLogger("hostpulse.access")


def install(app: Quart) -> None:
    logs.configure(log.name, "stdout", safe=False)  # its lines are built safe (_target, _field)
    middleware = AccessLog(app.asgi_app)
    handler = log.handlers[0]
    if isinstance(handler, logging.StreamHandler) and hasattr(handler, "stream_name"):  # logs.configure's
        writer = _Writer(handler)
        middleware.writer = writer if writer.agrees() else None
    app.asgi_app = middleware  # type: ignore[method-assign, assignment]  # app/asgi.py


class _Writer:
    """The default handler's line (``app/logs.py``: time, pid, level, message) written
    without a ``LogRecord``: ``logging`` took ~20 µs a request for it (the caller's frame, the
    record, the time formatted each time), a fifth of ``GET /json/dict`` in the app; here
    ~3 µs, the prefix made once a second. Only while that handler is the logger's one and
    nothing was changed on it (formatter, level, filters); else the line goes through
    ``logging`` as before."""

    def __init__(self, handler: logging.StreamHandler) -> None:  # type: ignore[type-arg]
        self.handler = handler
        self.stream_name: str = getattr(handler, "stream_name", "stdout")
        self.formatter = handler.formatter
        self.second = -1
        self.prefix = ""

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
        line = self.prefix_at(time.time()) + message + self.handler.terminator
        handler = self.handler
        with handler.lock or contextlib.nullcontext():
            stream = getattr(sys, self.stream_name)
            handler.stream = stream  # as the handler's own emit does (logs._Current)
            stream.write(line)
            stream.flush()


class AccessLog:
    """ASGI middleware: watches what is sent, logs once the exchange is over."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.pid = f"<{os.getpid()}>"
        self.writer: _Writer | None = None  # the default handler's fast path (install)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: int | str = "-"
        size = 0

        async def watched(message: Message) -> None:
            nonlocal status, size
            kind = message["type"]
            if kind in ("http.response.start", "websocket.http.response.start"):
                status = message["status"]
            elif kind in ("http.response.body", "websocket.http.response.body"):
                size += len(message.get("body", b""))
            elif kind == "websocket.accept":
                status = 101
            elif kind == "websocket.close" and status == "-":
                status = 403  # closed before the handshake: the server refuses it so
            await send(message)

        try:
            await self.app(scope, receive, watched)
        finally:
            self.write(scope, status, size, (time.perf_counter() - started) * 1_000_000)

    def write(self, scope: Scope, status: int | str, size: int, took: float) -> None:
        method, target = _field(scope.get("method", "GET")), _target(scope)
        version = _field(scope.get("http_version", "1.1"))
        writer = self.writer
        if writer is not None and writer.usable():
            try:
                writer.write(f'{self.pid} {_client(scope)} "{method} {target} {version}" {status} {size} {int(took)}us')
                return
            except Exception:  # noqa: BLE001 -- written through logging below, which reports it
                pass
        log.info('%s %s "%s %s %s" %s %d %dus', self.pid, _client(scope), method, target, version, status, size, took)


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
