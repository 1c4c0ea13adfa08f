"""The global interceptors of seed 002 (section 4.2), and JSON errors for everything."""

from __future__ import annotations

import time

from quart import Quart, Response, current_app, g, jsonify, request, websocket
from werkzeug.exceptions import HTTPException

from hostpulse.auth import authorize
from hostpulse.errors import describe, internal_error
from hostpulse.payloads import elapsed_ms, request_id

from .resources import get_settings


def field(name: str) -> str | None:
    """A request header as a WSGI server hands it to Flask: repeated lines joined by ``,``.

    Quart keeps repeated lines apart and ``get`` answers the first; gunicorn joins them
    (RFC 9110 5.3), so two ``Authorization`` lines are one unknown token to the Flask version.
    """
    values = request.headers.getlist(name)
    return ",".join(values) if values else None


async def authenticate() -> None:
    """Routing has matched (else the dispatch raises its 404/405); now the token and role."""
    g.started = time.perf_counter()
    if request.url_rule is None:
        return
    g.user = authorize(get_settings(), request.url_rule.rule, request.method, field("Authorization"))


async def authenticate_websocket() -> None:
    if websocket.url_rule is None:
        return
    g.user = authorize(get_settings(), websocket.url_rule.rule, "GET", websocket.headers.get("Authorization"))


async def stamp(response: Response) -> Response:
    response.headers["X-Request-ID"] = request_id(field("X-Request-ID"))
    response.headers["X-Response-Time"] = elapsed_ms(g.get("started"), time.perf_counter())
    return response


async def http_error(exc: HTTPException) -> tuple[Response, int, list[tuple[str, str]]]:
    status, body, headers = describe(exc)
    return jsonify(body), status, headers


async def unexpected_error(exc: Exception) -> tuple[Response, int]:
    current_app.logger.exception("unhandled error on %s %s", request.method, request.path)
    return jsonify(internal_error()), 500


def register(app: Quart) -> None:
    app.before_request(authenticate)
    app.before_websocket(authenticate_websocket)
    app.after_request(stamp)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, unexpected_error)
