"""Liveness and storage readiness, with no disk write (``hostpulse.health``)."""

from __future__ import annotations

import asyncio

from quart import Blueprint, Response, jsonify

from hostpulse.health import health_answer

from ..resources import get_health

bp = Blueprint("health", __name__)


@bp.get("/healthz")
async def healthz() -> tuple[Response, int]:
    health = get_health()
    writable = health.fresh()  # most calls: the last check's result, no thread, no I/O
    if writable is None:
        writable = await asyncio.to_thread(health.writable)
    body, status = health_answer(writable)
    return jsonify(body), status
