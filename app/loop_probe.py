"""A ticking task that measures the event loop's lag, for the loop-health test only.

With ``HOSTPULSE_LOOP_PROBE=<file>`` set, each worker ticks every ``TICK`` seconds and
records how late each tick woke (``max_lag``, wall time) and how much CPU the loop's
thread spent between two ticks (``max_busy``): blocking shows in both, while a worker
the OS merely did not schedule on a busy machine shows only in the first.
``<file>.<pid>`` gets ``{"ticks": n, "lag": [s, ...], "busy": [s, ...]}``, the maxima of
each ``REPORT``-second window so far, rewritten every window. Unset (the default),
nothing is installed.
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
    ticks, lags, busy, last_report = 0, [0.0], [0.0], time.perf_counter()
    while True:
        before, cpu_before = time.perf_counter(), time.thread_time()
        await asyncio.sleep(TICK)
        now = time.perf_counter()
        ticks += 1
        lags[-1] = max(lags[-1], now - before - TICK)
        busy[-1] = max(busy[-1], time.thread_time() - cpu_before)
        if now - last_report >= REPORT:
            last_report = now
            target = f"{path}.{os.getpid()}"
            with open(target + ".tmp", "w") as f:  # noqa: ASYNC230 -- a few bytes a report; a thread hop would be measured as lag
                json.dump({"ticks": ticks, "lag": lags, "busy": busy}, f)
            os.replace(target + ".tmp", target)  # a reader never sees half a file
            lags.append(0.0)
            busy.append(0.0)


def install(app: Quart) -> None:
    path = os.environ.get("HOSTPULSE_LOOP_PROBE")
    if not path:
        return

    ticking: list[asyncio.Task[None]] = []

    @app.before_serving
    async def start() -> None:
        ticking.append(asyncio.get_running_loop().create_task(_tick(path)))

    @app.after_serving
    async def stop() -> None:
        while ticking:
            ticking.pop().cancel()
