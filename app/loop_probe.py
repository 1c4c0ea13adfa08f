"""A ticking task that measures the event loop's lag, for the loop-health test only.

With ``HOSTPULSE_LOOP_PROBE=<file>`` set, each worker ticks every ``TICK`` seconds and
records how late each tick woke; ``<file>.<pid>`` gets ``{"ticks": n, "max_lag": s}``,
rewritten every ``REPORT`` seconds. Unset (the default), nothing is installed.
"""

from __future__ import annotations

import asyncio
import json
import os
import time

from quart import Quart

TICK = 0.005
REPORT = 0.1


async def _tick(path: str) -> None:
    ticks, max_lag, last_report = 0, 0.0, time.perf_counter()
    while True:
        before = time.perf_counter()
        await asyncio.sleep(TICK)
        now = time.perf_counter()
        ticks += 1
        max_lag = max(max_lag, now - before - TICK)
        if now - last_report >= REPORT:
            last_report = now
            with open(f"{path}.{os.getpid()}", "w") as f:
                json.dump({"ticks": ticks, "max_lag": max_lag}, f)


def install(app: Quart) -> None:
    path = os.environ.get("HOSTPULSE_LOOP_PROBE")
    if not path:
        return

    @app.before_serving
    async def start() -> None:
        app.extensions["hostpulse.loop_probe"] = asyncio.get_running_loop().create_task(_tick(path))

    @app.after_serving
    async def stop() -> None:
        app.extensions["hostpulse.loop_probe"].cancel()
