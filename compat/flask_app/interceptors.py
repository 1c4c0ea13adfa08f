"""The global interceptors of seed 002 (section 4.2) and JSON errors for everything."""

from __future__ import annotations

import time

from flask import Flask, Response, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from hostpulse.auth import authorize
from hostpulse.errors import describe, internal_error
from hostpulse.payloads import elapsed_ms, request_id

from .resources import get_settings


def authenticate() -> None:
    """Routing has matched (else the dispatch raises its 404/405); now the token and role."""
    g.started = time.perf_counter()
    if request.url_rule is None:
        return
    settings = get_settings()
    g.user = authorize(settings, request.url_rule.rule, request.method, request.headers.get("Authorization"))
    if request.url_rule.rule == "/demo" and request.mimetype == "multipart/form-data":
        request.max_content_length = settings.limits.max_upload_length


def stamp(response: Response) -> Response:
    response.headers["X-Request-ID"] = request_id(request.headers.get("X-Request-ID"))
    response.headers["X-Response-Time"] = elapsed_ms(g.get("started"), time.perf_counter())
    return response


def http_error(exc: HTTPException) -> tuple[Response, int, list[tuple[str, str]]]:
    status, body, headers = describe(exc)
    return jsonify(body), status, headers


def unexpected_error(exc: Exception) -> tuple[Response, int]:
    current_app.logger.exception("unhandled error on %s %s", request.method, request.path)
    return jsonify(internal_error()), 500


def register(app: Flask) -> None:
    app.before_request(authenticate)
    app.after_request(stamp)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, unexpected_error)
