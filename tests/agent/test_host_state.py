"""End to end: a real agent's host is ``up`` in ``GET /hosts`` while it runs, and ``down``
as soon as a SIGTERM stops it (its goodbye), not ten intervals later."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agent.live import AgentProcess, Service, eventually


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    running = Service(tmp_path_factory.mktemp("instance")).start()
    yield running
    running.stop()


def host_entry(service: Service, host: str) -> dict[str, Any] | None:
    status, body = service.get("/hosts")
    assert status == 200
    return next((h for h in body["hosts"] if h["host"] == host), None)


def test_a_running_agent_is_up_and_down_at_once_after_sigterm(service: Service, tmp_path: Path) -> None:
    # 1 s batches: ten intervals of silence (down without a goodbye) would take 10 s.
    agent = AgentProcess(tmp_path / "agent", service.url, "state-e2e", interval=1.0).start()
    try:
        up = eventually(lambda: host_entry(service, "state-e2e"), "the host listed")
        assert up["state"] == "up"
        store = service.store()
        try:
            (info,) = [h for h in store.hosts() if h.host == "state-e2e"]
            assert info.interval == 1.0 and info.goodbye is False
        finally:
            store.close()
        assert agent.stop() == 0
        down = host_entry(service, "state-e2e")
        assert down is not None and down["state"] == "down"
        assert "goodbye acknowledged" in agent.text()
    finally:
        if agent.proc is not None and agent.proc.poll() is None:
            agent.kill()
