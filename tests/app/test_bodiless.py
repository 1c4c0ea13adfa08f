"""Requests without a body run in the server's task (app/requests.py): no task of Quart's for
a quick answer, and a client that leaves a slow one still cancels its handler, as Quart's
receiver task did, on a server that reports it (Hypercorn's HTTP/1.1 does not read the
socket while a request is answered, so there a handler runs to its end either way)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from quart import Quart

from bench import overhead
from hostpulse.testing import write_test_config
from tests.app import slow_port
from tests.support import free_port, http, hypercorn_argv, serve

ADMIN = "bodiless-admin-token"
AUTH = [(b"authorization", f"Bearer {ADMIN}".encode())]


async def exchange(
    app: Any, path: str, *, body: bytes | None = None, leave_after: float | None = None
) -> dict[str, Any]:
    """One request through ``app``'s ASGI callable: its status and the tasks it made for
    itself; the client leaves after ``leave_after`` seconds, if given."""
    loop = asyncio.get_running_loop()
    seen: dict[str, Any] = {"tasks": [], "status": None}

    def counting(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        if coro.__qualname__.startswith(("_Bodiless.", "ASGIHTTPConnection.", "BoundedHTTPConnection.")):
            seen["tasks"].append(coro.__qualname__)  # the request's own; the app's background tasks aside
        return asyncio.Task(coro, loop=loop, **kwargs)

    headers = [*overhead.SCOPE["headers"], *AUTH]
    if body is not None:
        headers.append((b"content-length", str(len(body)).encode()))
    method = "GET" if body is None else "POST"
    scope = {**overhead.SCOPE, "method": method, "path": path, "raw_path": path.encode(), "headers": headers}
    loop.set_task_factory(counting)
    try:
        seen["status"] = await asyncio.wait_for(overhead.one(app, scope, body or b"", leave_after), 10)
    finally:
        loop.set_task_factory(None)
    return seen


def slow_app(tmp_path: Path) -> Quart:
    write_test_config(tmp_path, {"admin": ADMIN})
    import os

    os.environ["HOSTPULSE_INSTANCE"] = str(tmp_path)
    try:
        return slow_port.create_app()
    finally:
        del os.environ["HOSTPULSE_INSTANCE"]


def test_a_request_without_a_body_makes_no_task_and_one_with_a_body_quarts_two(tmp_path: Path) -> None:
    app = slow_app(tmp_path)

    async def run() -> tuple[dict[str, Any], dict[str, Any]]:
        await app.startup()
        try:
            return await exchange(app, "/json/dict"), await exchange(app, "/json/dict", body=b"{}")
        finally:
            await app.shutdown()

    quick, with_body = asyncio.run(run())
    assert quick == {"tasks": [], "status": 200}
    assert with_body == {  # Quart's receiver and handler
        "tasks": ["BoundedHTTPConnection.handle_messages", "ASGIHTTPConnection.handle_request"],
        "status": 405,
    }


def test_a_client_that_leaves_cancels_the_handler(tmp_path: Path) -> None:
    app = slow_app(tmp_path)

    async def run() -> tuple[dict[str, Any], dict[str, Any], set[asyncio.Task[Any]]]:
        await app.startup()
        try:
            before = asyncio.all_tasks()
            stayed = await exchange(app, "/slow/0.3")
            left = await exchange(app, "/slow/30.0", leave_after=0.2)
            watchers = {t for t in asyncio.all_tasks() - before if t.get_coro().__qualname__ == "_Bodiless._watch"}
            return stayed, left, {t for t in watchers if not t.done()}
        finally:
            await app.shutdown()

    stayed, left, leftover = asyncio.run(run())
    assert stayed == {"tasks": ["_Bodiless._watch"], "status": 200}  # after WATCH_AFTER; put away
    assert not leftover
    assert left == {"tasks": ["_Bodiless._watch"], "status": None}  # no answer: the handler was cancelled
    assert (tmp_path / slow_port.CANCELLED).read_text() == "30.0"


def test_under_hypercorn_a_slow_answer_outlives_its_watcher(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    write_test_config(instance, {"admin": ADMIN})
    port = free_port()
    log = tmp_path / "hypercorn.log"
    argv = hypercorn_argv(port, factory="tests.app.slow_port:create_app()")
    with serve(argv, port, env={"HOSTPULSE_INSTANCE": str(instance)}, log=log):
        status, _, body = http("GET", f"http://127.0.0.1:{port}/slow/0.3", headers={"Authorization": f"Bearer {ADMIN}"})
        assert status == 200 and json.loads(body) == {"slept": 0.3}
        assert http("GET", f"http://127.0.0.1:{port}/json/dict")[0] == 200
    text = log.read_text()
    assert '"GET /slow/0.3 1.1" 200 ' in text, text
    assert "Traceback" not in text and "Task was destroyed" not in text, text
    assert not (instance / slow_port.CANCELLED).exists()
