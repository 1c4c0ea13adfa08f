"""A real headless Chromium (Debian's ``chromium``) driven over the DevTools protocol with
aiohttp: no browser download, no driver package. The browser listens on loopback only
(``--remote-debugging-port=0``: it picks a free port and writes it to its profile folder),
in a process group of its own that :meth:`Browser.close` ends.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hostpulse.processes import stop_group

MISSING = (
    "Chromium is not installed (no `chromium` on PATH): the dashboard tests need a real browser; "
    "install Debian's package with `apt-get update && apt-get install -y chromium` (.ci/run does)"
)


def chromium() -> str:
    """The browser's path; the test fails (never skips) without it."""
    found = shutil.which("chromium")
    if found is None:
        pytest.fail(MISSING, pytrace=False)
    return found


class Browser:
    """One headless Chromium with one tab, driven by ``Runtime.evaluate``."""

    def __init__(self, profile: Path) -> None:
        self.profile = profile
        self.proc: subprocess.Popen[bytes] | None = None
        self.session: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.reader: asyncio.Task[None] | None = None
        self.events: list[dict[str, Any]] = []  # DevTools events (Network.* once enabled), in order

    async def start(self, within: float = 30.0) -> Browser:
        self.proc = self._launch()
        active = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + within
        while (port := self._port_written(active)) is None:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"chromium exited with {self.proc.returncode}: see {self.profile.parent}/chromium.log"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"chromium wrote no DevToolsActivePort within {within} s")
            await asyncio.sleep(0.05)
        self.session = aiohttp.ClientSession()
        async with self.session.get(f"http://127.0.0.1:{port}/json/list") as resp:
            targets = await resp.json()
        page = next(t for t in targets if t["type"] == "page")
        self.ws = await self.session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0)
        self.reader = asyncio.create_task(self._read())
        await self.send("Page.enable")
        await self.send("Runtime.enable")
        return self

    @staticmethod
    def _port_written(active: Path) -> int | None:
        """The DevTools port once Chromium has written its file (port, then browser path)."""
        lines = active.read_text().splitlines(keepends=True) if active.exists() else []
        return int(lines[0]) if len(lines) >= 2 or (lines and lines[0].endswith("\n")) else None

    def _launch(self) -> subprocess.Popen[bytes]:
        argv = [
            chromium(),
            "--headless=new",
            "--remote-debugging-port=0",
            f"--user-data-dir={self.profile}",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-gpu",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--metrics-recording-only",
            "--window-size=1280,900",
            "about:blank",
        ]
        if os.geteuid() == 0:
            argv.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
        self.profile.mkdir(parents=True, exist_ok=True)
        with open(self.profile.parent / "chromium.log", "ab") as log:
            return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    async def _read(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            if "method" in data:
                self.events.append(data)
                continue
            future = self.pending.pop(data.get("id", -1), None)
            if future is not None and not future.done():
                future.set_result(data)
        for future in self.pending.values():
            if not future.done():
                future.set_exception(ConnectionError("the DevTools connection closed"))

    async def send(self, method: str, within: float = 30.0, **params: Any) -> dict[str, Any]:
        assert self.ws is not None
        ident = next(self.ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[ident] = future
        await self.ws.send_str(json.dumps({"id": ident, "method": method, "params": params}))
        answer = await asyncio.wait_for(future, within)
        if "error" in answer:
            raise AssertionError(f"{method}: {answer['error']}")
        result: dict[str, Any] = answer["result"]
        return result

    async def eval(self, expression: str) -> Any:
        """The expression's value (a promise awaited), or the script's exception raised."""
        result = await self.send("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def goto(self, url: str) -> None:
        await self.send("Page.navigate", url=url)
        await self.wait_for("document.readyState === 'complete' && location.href === " + json.dumps(url), url)

    async def wait_for(self, expression: str, what: str, within: float = 10.0) -> Any:
        """Poll ``expression`` in the page until it is truthy (a DOM node comes back as ``{}``:
        write ``!!node``); fail with its last value."""
        deadline = time.monotonic() + within
        last: Any = None
        guarded = f"(() => {{ try {{ return ({expression}); }} catch (e) {{ return null; }} }})()"
        while time.monotonic() < deadline:
            try:
                last = await self.eval(guarded)
            except (AssertionError, ConnectionError) as exc:  # a navigation in progress
                last = str(exc)
            else:
                if last:
                    return last
            await asyncio.sleep(0.05)
        raise AssertionError(f"{what}: not within {within} s (last: {last!r})")

    async def hover(self, x: float, y: float) -> None:
        """The mouse moved to (x, y), CSS pixels of the viewport."""
        await self.send("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)

    async def screenshot(self, path: Path, whole: bool = True) -> Path:
        """The page as a PNG: all of it, or with ``whole=False`` the window's view."""
        shot = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=whole)
        await asyncio.to_thread(path.write_bytes, base64.b64decode(shot["data"]))
        return path

    async def close(self) -> None:
        """Chromium asked to quit (so it reaps its helpers), then its process group ended."""
        if self.ws is not None:
            with contextlib.suppress(AssertionError, ConnectionError, TimeoutError):
                await self.send("Browser.close", within=5)
            await self.ws.close()
        if self.reader is not None:
            await self.reader
        if self.session is not None:
            await self.session.close()
        if self.proc is not None:
            stop_group(self.proc, timeout=10)
