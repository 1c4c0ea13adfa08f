"""``python -m bench.overhead [--requests N] [--rounds N] [--profile]``: where the port's time
goes per ``GET /json/dict``, against the bare Quart app (bench/bare_quart.py), in-process.

Both apps are driven through their ASGI callable with no server and no network, one request
after another, so the figure is the app's own CPU per request: what the port adds to Quart.
Each layer is then switched off in turn (the access log, the interceptors, the protocol
guard) and the difference is that layer's cost. Over loopback, Hypercorn adds its own
~100-150 µs per request to both, which this leaves out.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.servers import TOKENS

Scope = dict[str, Any]
SCOPE: Scope = {
    "type": "http",
    "asgi": {"version": "3.0", "spec_version": "2.3"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/json/dict",
    "raw_path": b"/json/dict",
    "query_string": b"",
    "root_path": "",
    "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"bench"), (b"accept", b"*/*")],
    "client": ("127.0.0.1", 40000),
    "server": ("127.0.0.1", 8000),
    "extensions": {},
}


async def one(app: Any, scope: Scope | None = None, body: bytes = b"", leave_after: float | None = None) -> int | None:
    """One request through ``app``'s ASGI callable (``SCOPE`` unless ``scope``); the status it
    answered, None if none. The client leaves once answered, or after ``leave_after`` seconds."""
    status = None
    sent = asyncio.Event()
    given = False

    async def receive() -> dict[str, Any]:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        if leave_after is None:
            await sent.wait()
        else:
            await asyncio.sleep(leave_after)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif not message.get("more_body", False):
            sent.set()

    await app(dict(scope or SCOPE), receive, send)
    return status


async def per_request(app: Any, n: int) -> float:
    """CPU seconds per request over ``n`` requests (after a warm-up), garbage collection included."""
    for _ in range(200):
        assert await one(app) == 200
    started = time.process_time()  # CPU time: what other processes on the machine take is left out
    for _ in range(n):
        await one(app)
    return (time.process_time() - started) / n


def port_app(instance: Path) -> Any:
    from app import create_app
    from hostpulse.testing import write_test_config

    write_test_config(instance, TOKENS)
    return create_app(instance)


VARIANTS: dict[str, Callable[[Any], None]] = {}


def variant(name: str) -> Callable[[Callable[[Any], None]], Callable[[Any], None]]:
    def register(f: Callable[[Any], None]) -> Callable[[Any], None]:
        VARIANTS[name] = f
        return f

    return register


@variant("port")
def _whole(app: Any) -> None:
    """As served."""


def _unhook(app: Any, module: str) -> None:
    """Take ``module``'s request hooks out of ``app``."""
    for funcs in (app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs):
        funcs[None] = [f for f in funcs.get(None, []) if f.__module__ != module]


@variant("- access log")
def _no_access_log(app: Any) -> None:
    from app.edge import edge_of

    edge_of(app).access = None


@variant("- access log - interceptors")
def _no_interceptors(app: Any) -> None:
    """No stamps, and no authentication hook (which also counts connections per token)."""
    from app.edge import edge_of

    _no_access_log(app)
    edge_of(app).stamps = None
    _unhook(app, "app.interceptors")


@variant("- access log - interceptors - protocol")
def _no_protocol(app: Any) -> None:
    """No ASGI layer at all (app/edge.py): no framing check, no body timeout."""
    from app.edge import edge_of

    _no_interceptors(app)
    app.asgi_app = edge_of(app).app


async def measure(n: int, rounds: int, profile: bool) -> dict[str, float]:
    from bench.bare_quart import app as bare

    log_file = tempfile.NamedTemporaryFile("w", prefix="hostpulse-overhead-", suffix=".log", delete=False)
    real_stdout = sys.stdout
    sys.stdout = log_file  # the access log writes here, as a served port writes to its log file
    try:
        figures: dict[str, list[float]] = {}
        with tempfile.TemporaryDirectory(prefix="hostpulse-overhead-") as tmp:
            apps = {"bare Quart": bare}
            for name, change in VARIANTS.items():
                app = port_app(Path(tmp) / name.replace(" ", ""))
                change(app)
                apps[name] = app
            for app in apps.values():
                await app.startup()
            try:
                gc.collect()
                for _ in range(rounds):
                    for name, app in apps.items():
                        figures.setdefault(name, []).append(await per_request(app, n))
                if profile:
                    profiler = cProfile.Profile()
                    profiler.enable()
                    await per_request(apps["port"], n)
                    profiler.disable()
                    out = io.StringIO()
                    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(30)
                    print(out.getvalue(), file=sys.stderr)
            finally:
                for app in apps.values():
                    await app.shutdown()
    finally:
        sys.stdout = real_stdout
        log_file.close()
        os.unlink(log_file.name)
    return {name: statistics.median(values) for name, values in figures.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.overhead", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000, help="requests per app and round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, alternating between the apps (medians)")
    parser.add_argument("--profile", action="store_true", help="also print cProfile's top functions for the port")
    args = parser.parse_args(argv)
    try:
        import uvloop

        runner: Callable[..., Any] = uvloop.run
    except ImportError:
        runner = asyncio.run
    figures = runner(measure(args.requests, args.rounds, args.profile))
    bare = figures["bare Quart"]
    print(f"# GET /json/dict in-process, {args.rounds} rounds of {args.requests} requests, medians (µs per request)")
    previous = None
    for name, seconds in figures.items():
        step = f"  ({(previous - seconds) * 1e6:+.1f} µs)" if previous is not None and name != "port" else ""
        print(f"{name:<40} {seconds * 1e6:7.1f} µs  {bare / seconds:5.2f}x bare{step}")
        previous = seconds
    return 0


if __name__ == "__main__":
    sys.exit(main())
