"""The port with one test-only route, ``GET /slow/<seconds>`` (admin: a route missing from
hostpulse/auth.py's table needs it), for tests/app/test_bodiless.py: it sleeps, and writes
``cancelled`` in the instance folder if it is cancelled meanwhile.

``hypercorn --config hypercorn.toml 'tests.app.slow_port:create_app()'``
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from quart import Quart

from app import create_app as create_port

CANCELLED = "cancelled"


def create_app() -> Quart:
    app = create_port()
    instance = Path(app.instance_path)

    @app.get("/slow/<float:seconds>")
    async def slow(seconds: float) -> dict[str, float]:
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            (instance / CANCELLED).write_text(str(seconds))
            raise
        return {"slept": seconds}

    return app
