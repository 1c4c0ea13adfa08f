"""The ``/healthz`` answer: alive, and whether the store can be written."""

from __future__ import annotations

from typing import Any


def health_answer(writable: bool) -> tuple[dict[str, Any], int]:
    if writable:
        return {"status": "ok", "store": "ok"}, 200
    return {
        "error": "service_unavailable",
        "message": "the store cannot be written",
        "status": "error",
        "store": "unavailable",
    }, 503
