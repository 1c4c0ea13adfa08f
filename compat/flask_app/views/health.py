"""Liveness and storage readiness."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from hostpulse.health import health_answer

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    body, status = health_answer(current_app.extensions["hostpulse.store"].check_writable())
    return jsonify(body), status
