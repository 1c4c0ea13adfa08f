"""Liveness and storage readiness, with no disk write (``hostpulse.health``)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from hostpulse.health import StoreHealth, health_answer

bp = Blueprint("health", __name__)


def _health() -> StoreHealth:
    health = current_app.extensions.get("hostpulse.health")
    if health is None:
        health = current_app.extensions["hostpulse.health"] = StoreHealth(current_app.extensions["hostpulse"].db_path)
    return health


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    body, status = health_answer(_health().writable())
    return jsonify(body), status
