"""Agent tokens are tied to host names (issue 11, item 6, the token part).

SPEC, "Agents and their hosts": ``[[tokens]] hosts = ["web-1", "db-*"]`` (shell-style
patterns); ``hostpulse token-add web-1 --role agent`` allows ``web-1``. A batch for another
host is refused with ``{"error": "forbidden", ..., "seq": N}`` and the WebSocket stays open;
over ``POST /ingest`` it is a 403 with the same body. A real agent whose host its token may
not report keeps its batches (nothing is stored for that host, nothing dropped) and says so.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.agent.live import AgentProcess, Service, eventually
from tests.support import ROOT, http


def cli(instance: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "hostpulse", "--instance", str(instance), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def batch(host: str, seq: int, run: str = "hosts-run") -> dict[str, object]:
    return {"host": host, "run": run, "seq": seq, "samples": [{"ts": time.time(), "values": {"cpu_percent": 1.0}}]}


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    running = Service(tmp_path / "instance")
    yield running
    running.stop()


async def test_a_token_reports_only_its_hosts(service: Service, tmp_path: Path) -> None:
    web = cli(service.instance, "token-add", "web-1", "--role", "agent")
    fleet = cli(service.instance, "token-add", "db-fleet", "--role", "agent", "--host", "db-*", "--host", "cache-?")
    listed = cli(service.instance, "tokens")
    assert "web-1" in listed and "db-*" in listed
    service.start()

    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(
            service.url.replace("http", "ws") + "/ws/agent", headers={"Authorization": f"Bearer {web}"}
        )
        answers = []
        for b in (batch("web-1", 1), batch("db-1", 2), batch("WEB-1", 3)):
            await ws.send_str(json.dumps(b))
            answers.append(json.loads((await ws.receive(timeout=30)).data))
        assert answers[0] == {"ack": 1, "run": "hosts-run"}
        assert answers[1]["error"] == "forbidden" and answers[1]["seq"] == 2, answers[1]
        assert "db-1" in answers[1]["message"]
        assert answers[2] == {"ack": 3, "run": "hosts-run"}, "the connection stays open after a refusal"
        await ws.close()

    def ingest(token: str, host: str, seq: int) -> tuple[int, dict[str, object]]:
        status, _, body = http(
            "POST",
            f"{service.url}/ingest",
            body=json.dumps(batch(host, seq)).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        return status, json.loads(body)

    assert ingest(fleet, "db-7", 1) == (200, {"ack": 1, "run": "hosts-run"})
    assert ingest(fleet, "cache-a", 1) == (200, {"ack": 1, "run": "hosts-run"})
    status, body = ingest(fleet, "cache-ab", 5)
    assert (status, body["error"], body["seq"]) == (403, "forbidden", 5), body
    status, body = ingest(fleet, "web-1", 6)
    assert (status, body["error"], body["seq"]) == (403, "forbidden", 6), body

    store = service.store()
    try:
        assert store.batch_keys("web-1") == [("web-1", "hosts-run", 1), ("web-1", "hosts-run", 3)]
        assert store.batch_keys("db-1") == [] and store.batch_keys("cache-ab") == []
    finally:
        store.close()

    # A real agent sending for a host its token may not report: nothing stored, nothing dropped.
    agent = AgentProcess(tmp_path / "agent", service.url, "db-9", token=web, interval=0.1).start()
    try:
        try:
            eventually(lambda: "db-9" in agent.text() and "forbidden" in agent.text(), "the agent says why")
        except AssertionError as exc:  # what the agent did say, to tell a slow start from a wrong line
            raise AssertionError(f"{exc}\nagent log:\n{agent.text()[-3000:]}") from None
        eventually(lambda: len(agent.waiting()) >= 2, "the agent keeps its batches")
        assert agent.stop(timeout=30) == 0
    finally:
        if agent.proc is not None and agent.proc.poll() is None:
            agent.kill()
    assert agent.state()["dropped"] == 0
    store = service.store()
    try:
        assert store.batch_keys("db-9") == []
    finally:
        store.close()
