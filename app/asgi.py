"""ASGI as the app's middleware (``app/edge.py``) sees it: plain dicts, as the
ASGI spec writes them. Quart types its ``asgi_app`` with Hypercorn's TypedDicts, one per
message type, which a middleware that passes any message on has no use for: the app it wraps
is kept ``Any``, and the assignment to ``asgi_app`` says so."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def scope_of(current: Any) -> Scope:
    """The ASGI scope of a Quart request or WebSocket, as the middleware sees it."""
    scope: Scope = current.scope
    return scope
