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

import logging
import os
import time
from typing import Any

from quart import Quart

from hostpulse.logsafe import escape, redact_query

from . import logs
from .asgi import Message, Receive, Scope, Send

log = logging.getLogger("hostpulse.access")


def install(app: Quart) -> None:
    logs.configure(log.name, "stdout", safe=False)  # its lines are built safe (_target, _field)
    app.asgi_app = AccessLog(app.asgi_app)  # type: ignore[method-assign, assignment]  # app/asgi.py


class AccessLog:
    """ASGI middleware: watches what is sent, logs once the exchange is over."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.pid = f"<{os.getpid()}>"

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
            log.info(
                '%s %s "%s %s %s" %s %d %dus',
                self.pid,
                _client(scope),
                _field(scope.get("method", "GET")),
                _target(scope),
                _field(scope.get("http_version", "1.1")),
                status,
                size,
                (time.perf_counter() - started) * 1_000_000,
            )


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
