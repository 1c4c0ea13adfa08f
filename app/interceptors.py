"""The global interceptors of seed 002 (section 4.2), and JSON errors for everything.

Every HTTP answer carries ``X-Request-ID`` and ``X-Response-Time``. The Flask version adds
them in ``after_request``; here :func:`stamps` makes them and ``app/edge.py`` appends them to
the answer's headers at the ASGI layer, where they land in the same place (last, as
``after_request`` left them), for a fraction of the cost: a Quart hook and the proxies it
reads took ~5 µs a request, a tenth of ``GET /json/dict`` in the app (README, "Benchmarks":
``bench/overhead.py``). For the same reason one hook, :func:`authenticate`, both checks the
token and counts the request against it (``app/protocol.py``).
"""

from __future__ import annotations

import time

from quart import Quart, Response, current_app, g, jsonify, request, websocket
from quart.wrappers import Request, Websocket
from werkzeug.datastructures import Headers
from werkzeug.exceptions import HTTPException

from hostpulse.auth import PUBLIC, authorize, required_role
from hostpulse.errors import describe, internal_error
from hostpulse.payloads import elapsed_ms, request_id

from .asgi import Scope, scope_of
from .protocol import take_slot
from .resources import get_settings


def _joined(headers: Headers, name: str) -> str | None:
    """A header as a WSGI server hands it to Flask: repeated lines joined by ``,``.

    Quart keeps repeated lines apart and ``get`` answers the first; gunicorn joins them
    (RFC 9110 5.3), so two ``Authorization`` lines are one unknown token to the Flask version.
    """
    values = headers.getlist(name)
    return ",".join(values) if values else None


async def authenticate() -> None:
    """Routing has matched (else the dispatch raises its 404/405); now the token and role,
    and the request counted against its token. A public route without a token has no one to
    look up (``authorize`` would answer None)."""
    current: Request = request._get_current_object()  # type: ignore[attr-defined]  # one proxy lookup, not one per attribute
    rule = current.url_rule
    if rule is None:
        return
    authorization = _joined(current.headers, "Authorization")
    method = current.method
    if authorization is None and required_role(rule.rule, method) is PUBLIC:
        g.user = None
        return
    g.user = user = authorize(get_settings(), rule.rule, method, authorization)
    take_slot(scope_of(current), authorization, user)


async def authenticate_websocket() -> None:
    """The same for a WebSocket's handshake: two ``Authorization`` lines are read joined, as
    an HTTP request's are (Quart's ``headers.get`` would take the first)."""
    current: Websocket = websocket._get_current_object()  # type: ignore[attr-defined]
    if current.url_rule is None:
        return
    authorization = _joined(current.headers, "Authorization")
    g.user = user = authorize(get_settings(), current.url_rule.rule, "GET", authorization)
    take_slot(scope_of(current), authorization, user)


def request_id_of(scope: Scope) -> bytes:
    """The request's ``X-Request-ID`` (repeated lines joined by ``,``, as :func:`_joined`
    reads them) when well-formed, else a new one (``hostpulse.payloads``, as the Flask version)."""
    incoming = [value for name, value in scope["headers"] if name.lower() == b"x-request-id"]
    return request_id(b",".join(incoming).decode("latin-1") if incoming else None).encode()


def stamps(scope: Scope, started: float) -> tuple[tuple[bytes, bytes], tuple[bytes, bytes]]:
    """``X-Request-ID`` and ``X-Response-Time`` (ms since ``started``, when the request
    reached the app) for an HTTP answer's headers."""
    return (b"x-request-id", request_id_of(scope)), (
        b"x-response-time",
        elapsed_ms(started, time.perf_counter()).encode(),
    )


async def http_error(exc: HTTPException) -> tuple[Response, int, list[tuple[str, str]]]:
    status, body, headers = describe(exc)
    return jsonify(body), status, headers


async def unexpected_error(exc: Exception) -> tuple[Response, int]:
    current_app.logger.exception("unhandled error on %s %s", request.method, request.path)
    return jsonify(internal_error()), 500


def register(app: Quart) -> None:
    app.before_request(authenticate)
    app.before_websocket(authenticate_websocket)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, unexpected_error)
