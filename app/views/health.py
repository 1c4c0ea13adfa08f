"""Liveness and storage readiness."""

from __future__ import annotations

import asyncio

from quart import Blueprint, Response, current_app, jsonify

from hostpulse.health import health_answer

bp = Blueprint("health", __name__)


@bp.get("/healthz")
async def healthz() -> tuple[Response, int]:
    store = current_app.extensions["hostpulse.store"]
    body, status = health_answer(await asyncio.to_thread(store.check_writable))
    return jsonify(body), status
