"""Liveness and storage readiness, with no disk write (``hostpulse.health``)."""

from __future__ import annotations

import asyncio

from quart import Blueprint, Response, current_app, jsonify

from hostpulse.health import StoreHealth, health_answer

bp = Blueprint("health", __name__)


def _health() -> StoreHealth:
    health = current_app.extensions.get("hostpulse.health")
    if health is None:
        health = current_app.extensions["hostpulse.health"] = StoreHealth(current_app.extensions["hostpulse"].db_path)
    return health


@bp.get("/healthz")
async def healthz() -> tuple[Response, int]:
    health = _health()
    writable = health.fresh()  # most calls: the last check's result, no thread, no I/O
    if writable is None:
        writable = await asyncio.to_thread(health.writable)
    body, status = health_answer(writable)
    return jsonify(body), status
