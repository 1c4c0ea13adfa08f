"""The dashboard (issue 14): static pages and their files, public since they hold no data,
and its live feed ``WS /ws/live`` (viewer). The browser reads ``GET /hosts`` and
``GET /hosts/<host>/series`` with the viewer's token (kept in the tab's sessionStorage, sent
as ``Authorization: Bearer``) and sends the same token as the feed's first message."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from quart import Blueprint, Response, current_app, g, send_from_directory, websocket

from hostpulse.auth import User, authorize
from hostpulse.errors import ApiError, upgrade_required

from ..live import hub_of
from ..protocol import hold_slot
from ..resources import get_settings

FIRST_MESSAGE_TIMEOUT = 10.0  # seconds a browser has to send its token
UNAUTHORIZED_CLOSE = 1008  # policy violation: the JSON message before it says why

STATIC = Path(__file__).resolve().parent.parent / "static" / "dashboard"

bp = Blueprint("dashboard", __name__)


async def _page(name: str) -> Response:
    response = await send_from_directory(STATIC, name, mimetype="text/html")
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/dashboard")
async def overview() -> Response:
    return await _page("overview.html")


@bp.get("/dashboard/hosts/<host>")
async def host_page(host: str) -> Response:
    return await _page("host.html")  # the script reads the host's name from the path


@bp.get("/dashboard/static/<path:name>")
async def static_file(name: str) -> Response:
    """A file of ``app/static/dashboard/`` (404 for anything else, ``..`` included)."""
    response = await send_from_directory(STATIC, name)
    response.headers["Cache-Control"] = "no-cache"
    return response


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


async def _first_message() -> dict[str, Any]:
    """What a browser sends first: ``{"token": "...", "hosts": [...]}`` (``hosts`` optional)."""
    try:
        async with asyncio.timeout(FIRST_MESSAGE_TIMEOUT):
            message = json.loads(await websocket.receive())
    except TimeoutError:
        raise ApiError(401, "unauthorized", f"no first message within {FIRST_MESSAGE_TIMEOUT:g} s") from None
    except ValueError:
        message = None
    if not isinstance(message, dict):
        raise ApiError(400, "bad_request", 'the first message must be {"token": "<viewer token>"}')
    return message


def _user_of(message: dict[str, Any]) -> User:
    """The user of the token a browser sends first (a browser cannot set Authorization on a
    WebSocket); :class:`ApiError` 401/403 as for a request."""
    token = message.get("token")
    if not isinstance(token, str) or not token.strip() or any(c.isspace() for c in token.strip()):
        raise ApiError(401, "unauthorized", 'send {"token": "<viewer token>"} as the first message')
    user = authorize(get_settings(), "/ws/live", "GET", "Bearer " + token.strip())
    assert user is not None  # the role is viewer: no token, no user, an ApiError
    return user


def _hosts_of(message: dict[str, Any]) -> frozenset[str] | None:
    hosts = message.get("hosts")
    if hosts is None:
        return None
    if not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts):
        raise ApiError(400, "bad_request", "hosts must be a list of host names")
    return frozenset(h.lower() for h in hosts)


# A refusal's close code: a policy's (a token refused), try again later (too many sockets
# for one token), else unsupported data (a first message that is not one).
_CLOSE_CODES = {401: UNAUTHORIZED_CLOSE, 403: UNAUTHORIZED_CLOSE, 429: 1013}


@bp.websocket("/ws/live")
async def ws_live() -> None:
    """Every host once, then each host that changed (``{"type": "hosts", "now", "hosts": [...]}``,
    entries as ``GET /hosts``, with the cards' series only; a first message naming ``hosts``
    gets those hosts alone, every series). A wrong token gets ``{"error", "message"}``, then
    the socket is closed."""
    await websocket.accept()
    user: User | None = g.get("user")  # a client that sent Authorization: checked, every host
    only = None
    try:
        if user is None:
            message = await _first_message()
            user, only = _user_of(message), _hosts_of(message)
            g.user = user
            hold_slot(message["token"].strip())  # [limits] connections_per_token, as for a header
    except ApiError as exc:
        await websocket.send(_dumps(exc.body()))
        await websocket.close(_CLOSE_CODES.get(exc.code or 400, 1003), exc.error)
        return
    await websocket.send(_dumps({"type": "hello", "user": user.username}))
    hub = hub_of(current_app)
    box = hub.subscribe(only)
    try:
        while True:  # Quart cancels this when the browser goes away
            entries = await box.take()
            await websocket.send(_dumps({"type": "hosts", "now": time.time(), "hosts": entries}))
    finally:
        hub.unsubscribe(box)


@bp.get("/ws/live")
async def ws_live_over_http() -> Response:
    """A plain GET would get Werkzeug's bare 400: say what the route speaks."""
    raise upgrade_required("/ws/live")
