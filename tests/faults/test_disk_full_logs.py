"""Issue 11, item 14 (disk full): one log line per change of state, not one traceback a request.

With the disk full, no false ack was held, but every batch logged its traceback: 2,525 in
15 s. The service's own error lines (``hostpulse.logsafe.Repeats``) now write an error once,
count its repeats, and say in one line how many were left out once it stops.

The port under Hypercorn; the disk is "full" for its worker through ``RLIMIT_FSIZE`` (no file
of it may grow past its present size: SQLite's writes fail as on a full disk), set and lifted
from outside with ``prlimit``. Its log goes to a pipe, which that limit does not touch.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import threading
import time
from pathlib import Path

import aiohttp
import psutil

from hostpulse.processes import stop_group
from hostpulse.testing import write_test_config
from tests.support import BIN, ROOT, free_port, wait_until_up

AGENT = "agent-token-for-disk-full"
NAMES = [f"disk.series.{n}" for n in range(100)]


class Server:
    def __init__(self, instance: Path) -> None:
        write_test_config(instance, {"agent": AGENT})
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [
                str(BIN / "hypercorn"),
                "--config",
                str(ROOT / "hypercorn.toml"),
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                "1",
                "app:create_app()",
            ],
            cwd=ROOT,
            env={**os.environ, "HOSTPULSE_INSTANCE": str(instance)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        wait_until_up(f"{self.url}/healthz", self.proc)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.append(raw.decode("utf-8", "replace"))

    def text(self) -> str:
        return "".join(self.lines)

    def limit_file_size(self, size: int) -> None:
        """The soft limit only: lowering and raising it back needs no privilege."""
        for child in psutil.Process(self.proc.pid).children(recursive=True):
            _, hard = resource.prlimit(child.pid, resource.RLIMIT_FSIZE)
            soft = size if hard == resource.RLIM_INFINITY or size == resource.RLIM_INFINITY else min(size, hard)
            resource.prlimit(child.pid, resource.RLIMIT_FSIZE, (soft, hard))

    def stop(self) -> None:
        stop_group(self.proc)
        self.reader.join(10)


async def load(url: str, seconds: float) -> dict[str, int]:
    """Five agents over HTTP and three over WebSocket, sending batches as fast as answered."""
    counts: dict[str, int] = {"acked": 0, "refused": 0}
    stop = time.monotonic() + seconds

    def batch(host: str, seq: int) -> str:
        return json.dumps(
            {
                "host": host,
                "run": "r1",
                "seq": seq,
                "samples": [{"ts": time.time(), "values": {n: float(seq) for n in NAMES}}],
            }
        )

    async def http_agent(session: aiohttp.ClientSession, host: str) -> None:
        seq = 0
        while time.monotonic() < stop:
            async with session.post(
                f"{url}/ingest",
                data=batch(host, seq),
                headers={"Authorization": f"Bearer {AGENT}", "Content-Type": "application/json"},
            ) as resp:
                answer = await resp.json()
            counts["acked" if "ack" in answer else "refused"] += 1
            seq += 1

    async def ws_agent(session: aiohttp.ClientSession, host: str) -> None:
        seq = 0
        async with session.ws_connect(
            url.replace("http", "ws") + "/ws/agent", headers={"Authorization": f"Bearer {AGENT}"}
        ) as ws:
            while time.monotonic() < stop:
                await ws.send_str(batch(host, seq))
                answer = json.loads((await ws.receive(timeout=30)).data)
                counts["acked" if "ack" in answer else "refused"] += 1
                seq += 1

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(
            *[http_agent(session, f"h-{i}") for i in range(5)], *[ws_agent(session, f"w-{i}") for i in range(3)]
        )
    return counts


def test_a_full_disk_logs_once_per_change_not_per_batch(tmp_path: Path) -> None:
    server = Server(tmp_path)
    try:
        assert asyncio.run(load(server.url, 1.0))["acked"] > 0
        biggest = max(p.stat().st_size for p in tmp_path.glob("hostpulse.sqlite3*"))
        server.limit_file_size(biggest)  # the disk is full
        full = asyncio.run(load(server.url, 4.0))
        assert full["refused"] >= 100, full
        text = server.text()
        assert text.count("Traceback") <= 2, text[-5000:]  # the first of each error, no more
        assert text.count("[ERROR]") <= 2, text[-5000:]
        assert "is counted, not logged, until it stops" in text

        server.limit_file_size(resource.RLIM_INFINITY)  # space again
        after = asyncio.run(load(server.url, 1.0))
        assert after["acked"] > 0, after
        deadline = time.monotonic() + 40  # hostpulse.logsafe.QUIET (10 s) after the last failure
        while "were not logged" not in server.text() and time.monotonic() < deadline:
            time.sleep(0.2)
        summary = [line for line in server.text().splitlines() if "were not logged" in line]
        assert len(summary) >= 1, server.text()[-5000:]
        assert "[WARNING]" in summary[0] and "stopped;" in summary[0]
        repeats = sum(int(line.split("stopped; ")[1].split()[0]) for line in summary)
        assert repeats >= full["refused"] - 2, (summary, full)
    finally:
        server.stop()
