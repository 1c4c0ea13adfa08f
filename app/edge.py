"""The port's one ASGI layer around Quart: what is done per exchange on the wire.

Four concerns meet where the server hands an exchange to the app, each defined in its own
module and applied here in one pass: the request's framing and its body's timeout
(``app/protocol.py``), the ``X-Request-ID`` and ``X-Response-Time`` every HTTP answer
carries (``app/interceptors.py``), the access log (``app/access_log.py``), and the connection
slot a request's token holds, given back once the answer is sent (``app/protocol.py``).
As three middlewares, each wrapping ``send`` and awaiting the next, with a teardown hook
to give the slot back, they cost ~14 µs a request; this layer ~1.3 (``python -m
bench.overhead``, README "Benchmarks").
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from quart import Quart

from . import access_log, interceptors, protocol
from .asgi import Message, Receive, Scope, Send
from .resources import Resources, resources_of


class Edge:
    """ASGI middleware: the framing check, the body timeout, the stamps, the access log and
    the slot given back. ``access`` and ``stamps`` may be None (``bench/overhead.py``
    measures the port without them)."""

    def __init__(self, app: Any, resources: Resources, access: access_log.AccessLog | None) -> None:
        self.app = app
        self.resources = resources
        self.access = access
        self.stamps: Callable[[Scope, float], tuple[tuple[bytes, bytes], ...]] | None = interceptors.stamps

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self.http(scope, receive, send)
        elif kind == "websocket":
            await self.websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        stamps = self.stamps
        status: int | str = "-"
        size = 0

        async def sent(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
                if stamps is not None:
                    message["headers"] = [*message["headers"], *stamps(scope, started)]
            else:
                size += len(message.get("body", b""))
            await send(message)

        try:
            body = protocol.body_follows(scope)
            if body is None:
                for message in protocol.refusal(400, "bad_request", protocol.AMBIGUOUS_FRAMING):
                    await sent(message)
                return
            timeout = self.resources.settings.limits.body_timeout if body else 0
            if timeout:
                await protocol.BodyWatch(self.app, timeout, scope).run(receive, sent)
            else:
                await self.app(scope, receive, sent)
        finally:
            self.over(scope, status, size, started)

    async def websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status: int | str = "-"
        size = 0

        async def sent(message: Message) -> None:
            nonlocal status, size
            kind = message["type"]
            if kind == "websocket.accept":
                status = 101
            elif kind == "websocket.http.response.start":
                status = message["status"]
            elif kind == "websocket.http.response.body":
                size += len(message.get("body", b""))
            elif kind == "websocket.close" and status == "-":
                status = 403  # closed before the handshake: the server refuses it so
            await send(message)

        try:
            await self.app(scope, receive, sent)
        finally:
            self.over(scope, status, size, started)

    def over(self, scope: Scope, status: int | str, size: int, started: float) -> None:
        """The exchange is over: its slot given back, its line logged."""
        protocol.give_slot_back(scope, self.resources.connections)
        if self.access is not None and self.access.enabled():
            self.access.write(scope, status, size, (time.perf_counter() - started) * 1_000_000)


def install(app: Quart) -> None:
    """Around everything else Quart's ``asgi_app`` holds (after ``open_resources``)."""
    edge = Edge(app.asgi_app, resources_of(app), access_log.open_log())
    app.asgi_app = edge  # type: ignore[method-assign, assignment]  # app/asgi.py


def edge_of(app: Quart) -> Edge:
    edge = app.asgi_app
    if not isinstance(edge, Edge):
        raise RuntimeError("app/edge.py's layer is not installed")
    return edge
