"""Liveness and storage readiness, with no disk write (``hostpulse.health``)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from hostpulse.health import health_answer

from ..resources import get_health

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    body, status = health_answer(get_health().writable())
    return jsonify(body), status
