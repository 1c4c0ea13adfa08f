"""Real processes for the agent's end-to-end tests: the port under Hypercorn on loopback,
agents as ``python -m agent``, and a TCP link between them that a test can cut.

Nothing here waits a fixed time for something to happen: every wait polls a condition
up to a generous deadline, and fails with what it saw.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from hostpulse.processes import signal_group, stop_group
from hostpulse.series import SeriesStore
from hostpulse.testing import write_test_config
from tests.support import BIN, ROOT, free_port, http, wait_until_up

AGENT = "agent-token-e2e"
VIEWER = "viewer-token-e2e"
ADMIN = "admin-token-e2e"
TOKENS = {"agent": AGENT, "viewer": VIEWER, "admin": ADMIN}

T = TypeVar("T")


def eventually(check: Callable[[], T], what: str, timeout: float = 60.0, every: float = 0.05) -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout} s (last: {last!r})")


def sampled_batches(store: SeriesStore, host: str) -> int:
    """The host's stored batches that carry samples: all but an agent's goodbye on a clean stop."""
    return store.stored_batches(host)


class Service:
    """The port (``app:create_app()``) under a real Hypercorn; restartable
    on the same port and instance folder, so a SIGKILL and a restart look like a crash."""

    def __init__(
        self, instance: Path, workers: int = 1, factory: str = "app:create_app()", server: str = "hypercorn"
    ) -> None:
        self.instance = instance
        self.workers = workers
        self.factory = factory
        self.server = server
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = instance / "service.log"
        self.starts = 0
        write_test_config(instance, TOKENS, store={"retention": 30 * 24 * 3600.0})

    def argv(self) -> list[str]:
        if self.server == "gunicorn":
            return [
                str(BIN / "gunicorn"),
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(self.workers),
                self.factory,
            ]
        return [
            str(BIN / "hypercorn"),
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(self.workers),
            "--graceful-timeout",
            "2",
            self.factory,
        ]

    def start(self) -> Service:
        self.starts += 1
        out = open(self.log, "ab")
        self.proc = subprocess.Popen(
            self.argv(),
            cwd=ROOT,
            env={**os.environ, "HOSTPULSE_INSTANCE": str(self.instance)},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        wait_until_up(f"{self.url}/healthz", self.proc)
        return self

    def kill(self) -> None:
        """SIGKILL every process of the server at once: no clean shutdown, no flush."""
        assert self.proc is not None
        signal_group(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None:
            stop_group(self.proc)

    def get(self, path: str, token: str = VIEWER) -> tuple[int, Any]:
        status, headers, body = http("GET", self.url + path, headers={"Authorization": f"Bearer {token}"})
        if headers.get("content-type", "").startswith("application/json"):
            return status, json.loads(body)
        return status, body.decode()

    def store(self) -> SeriesStore:
        """The service's series tables, read straight from its SQLite file."""
        return SeriesStore(self.instance / "hostpulse.sqlite3", retention=float("inf"))


class AgentProcess:
    """``python -m agent`` with its own spool and log; stopped with SIGTERM like systemd does."""

    def __init__(
        self,
        workdir: Path,
        server: str,
        host: str,
        *extra: str,
        token: str = AGENT,
        names: tuple[str, ...] = ("virtual_memory",),
        interval: float = 0.2,
    ) -> None:
        self.workdir = workdir
        self.spool = workdir / "spool"
        self.log = workdir / "agent.log"
        self.host = host
        workdir.mkdir(parents=True, exist_ok=True)
        self.argv = [
            sys.executable,
            "-m",
            "agent",
            "--server",
            server,
            "--token",
            token,
            "--host",
            host,
            "--interval",
            str(interval),
            "--spool",
            str(self.spool),
            "--flush-timeout",
            "20",
            "--log-level",
            "debug",
            *extra,
            *names,
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> AgentProcess:
        out = open(self.log, "ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOSTPULSE_")}
        self.proc = subprocess.Popen(
            self.argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        out.close()
        return self

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, then its exit status (it flushes first, up to --flush-timeout)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def state(self) -> dict[str, Any]:
        """The spool's persistent state: run, next_seq (seqs produced), dropped."""
        try:
            return json.loads((self.spool / "state.json").read_text())
        except FileNotFoundError:  # not started yet
            return {"run": None, "next_seq": 0, "dropped": 0}

    def waiting(self) -> list[Path]:
        return sorted(self.spool.glob("*.batch"))

    def waiting_bytes(self) -> int:
        """The bytes of the batch files present now. The agent deletes batches (acked, or
        dropped from a full spool) while this reads: a file listed and gone before its stat
        counts for nothing, which keeps the sum a subset of one moment's spool."""
        total = 0
        for path in self.waiting():
            try:
                total += path.stat().st_size
            except FileNotFoundError:
                pass
        return total

    def text(self) -> str:
        return self.log.read_text(errors="replace")


class CuttableLink:
    """A TCP forwarder on loopback (real sockets, its own thread and loop) that a test
    can cut (every connection reset, new ones refused) and restore."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.connections = 0
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.restore()

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            self._writers -= {writer, up_writer}

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port, reuse_address=True)

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            sock = writer.get_extra_info("socket")
            try:  # RST, as a broken network path looks to both ends
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            except (AttributeError, OSError):  # already closed
                pass
            writer.close()
        self._writers.clear()

    def cut(self) -> None:
        self._call(self._cut())

    def restore(self) -> None:
        self._call(self._listen())

    def close(self) -> None:
        self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
