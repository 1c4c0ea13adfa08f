"""Full garbage collections of a worker holding thousands of agents took 0.5-2.75 s each
(``bench.agents --agents 10000``): ``app/gc_pauses.py`` freezes what a full collection
leaves alive, so the next scans only what is newer, runs one every few seconds, and
unfreezes it all now and then so cyclic garbage among it is still reclaimed. Each check runs in a fresh interpreter: a
frozen pytest process would keep its own garbage."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_full_collection_freezes_its_survivors_and_later_ones_scan_only_newer_objects() -> None:
    out = run(
        """
        import asyncio, gc, time
        from app import gc_pauses
        held = [[i] for i in range(300_000)]  # what thousands of connections hold

        async def serve():
            gc_pauses.install()

        asyncio.run(serve())
        gc.collect()
        frozen = gc.get_freeze_count()
        started = time.perf_counter(); gc.collect(); second = time.perf_counter() - started
        gc.unfreeze(); started = time.perf_counter(); gc.collect(); whole = time.perf_counter() - started
        print(frozen >= 300_000, second < whole / 3)
        """
    )
    assert out == "True True"


def test_cyclic_garbage_that_froze_is_reclaimed_at_the_next_unfreeze() -> None:
    out = run(
        """
        import asyncio, gc, weakref
        from app import gc_pauses

        class Node:
            pass

        async def serve():
            gc_pauses.install()

        asyncio.run(serve())
        node = Node(); node.me = node  # a cycle, alive during a full collection: frozen
        gone = weakref.ref(node)
        gc.collect()
        del node
        gc.collect()
        kept = gone() is not None  # frozen: not scanned
        gc_pauses.UNFREEZE_EVERY = 0.0  # time to scan everything again
        gc.collect()  # unfreezes after it
        gc.collect()  # scans what was frozen: the cycle goes
        print(kept, gone() is None)
        """
    )
    assert out == "True True"


def test_the_worker_collects_every_few_seconds_what_is_not_frozen() -> None:
    """Left to CPython, a full collection came after half a minute of the store's new objects
    and took 0.66-0.78 s; every ``COLLECT_EVERY`` seconds it scans only what came since."""
    out = run(
        """
        import asyncio, gc
        from app import gc_pauses
        gc_pauses.COLLECT_EVERY = 0.05
        gc.disable()  # only the worker's own collections
        full = []
        gc.callbacks.append(lambda phase, info: phase == "stop" and info["generation"] == 2 and full.append(1))

        async def serve():
            gc_pauses.install()
            kept = []
            for _ in range(10):
                kept.append([[i] for i in range(10_000)])  # what a store's head adds
                await asyncio.sleep(0.06)
            return gc.get_freeze_count() >= 100_000

        print(asyncio.run(serve()), len(full) >= 5)
        """
    )
    assert out == "True True"


def test_an_app_made_in_a_process_without_agents_keeps_the_defaults() -> None:
    out = run(
        """
        import gc
        from hostpulse.testing import settings_with_tokens
        import tempfile
        from app import create_app
        create_app(settings=settings_with_tokens(tempfile.mkdtemp(), {"agent": "a" * 32}))
        gc.collect()
        print(gc.get_freeze_count())
        """
    )
    assert out == "0"
