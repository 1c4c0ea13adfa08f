"""Short garbage-collector pauses for a worker holding thousands of connections.

CPython's full (generation 2) collection scans every tracked object, and the event loop
stands still meanwhile. A worker holding 5,000 agent WebSockets holds about a million
(Hypercorn's, Quart's and the store's per connection and per host); a full collection
of them took 0.5-1.9 s here, and one ran each time the heap grew by a quarter: ten while
5,000 agents connected, then one every few seconds while the store's head grew
(``bench.agents --agents 10000``, ``service_gc_longest_pause_ms``). Acks waited that long.

So each full collection's survivors are frozen (``gc.freeze``: moved to the permanent
generation, which no collection scans), and a later one scans only what is newer. What
froze may since have become unreachable cyclic garbage; it is reclaimed every
``UNFREEZE_EVERY`` seconds, when everything is unfrozen and scanned once more (one long
pause in that time, instead of one every few seconds). Objects freed by reference
counting, most of them, are freed as before.

Installed by the first agent WebSocket a process serves (``app/protocol.py``), so an app
made in a test process, which holds no agents, keeps CPython's defaults.
"""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any

#: seconds between full scans of everything (frozen objects' cyclic garbage reclaimed)
UNFREEZE_EVERY = 600.0
#: seconds between full collections of what is not frozen
COLLECT_EVERY = 2.0

_state = {"installed": False, "unfrozen_at": 0.0}


def _after_collection(phase: str, info: dict[str, Any]) -> None:
    if phase != "stop" or info["generation"] != 2:
        return
    now = time.monotonic()
    if now - _state["unfrozen_at"] >= UNFREEZE_EVERY:
        # The next full collection scans everything again; this one's survivors stay
        # unfrozen until then, so what froze before and died since is reclaimed.
        _state["unfrozen_at"] = now
        gc.unfreeze()
    else:
        gc.freeze()


def _collect_soon(loop: asyncio.AbstractEventLoop) -> None:
    """A full collection every ``COLLECT_EVERY`` seconds: it scans only what came since the
    last one (the rest is frozen), so it stays short however many objects the store's
    head adds a second; left to CPython, one ran after half a minute of them (0.66-0.78 s)."""
    gc.collect()
    loop.call_later(COLLECT_EVERY, _collect_soon, loop)


def install() -> None:
    """Once per process (a worker), from its event loop: freeze what each full collection
    leaves alive, and run one every ``COLLECT_EVERY`` seconds."""
    if _state["installed"]:
        return
    _state["installed"] = True
    _state["unfrozen_at"] = time.monotonic()
    gc.callbacks.append(_after_collection)
    loop = asyncio.get_running_loop()
    loop.call_later(COLLECT_EVERY, _collect_soon, loop)


__all__ = ["COLLECT_EVERY", "UNFREEZE_EVERY", "install"]
