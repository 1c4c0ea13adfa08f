"""Faults, with real processes: the service SIGKILLed under 50 streaming agents and
restarted, the network path cut and restored, an agent SIGKILLed and restarted, a full
spool. Afterwards every batch the agents produced is stored exactly once: counted and
compared per host and sequence number."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.agent.live import AgentProcess, CuttableLink, Service, eventually, sampled_batches

MEMORY_FIELDS = len(psutil.virtual_memory()._fields)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    running = Service(tmp_path / "instance", workers=2).start()
    yield running
    running.stop()


def stored_counts(service: Service) -> dict[str, int]:
    store = service.store()
    try:
        counts: dict[str, int] = {}
        for host, _, _ in store.batch_keys():
            counts[host] = counts.get(host, 0) + 1
        return counts
    finally:
        store.close()


def assert_exactly_once(service: Service, agents: list[AgentProcess], max_gaps: int = 0) -> None:
    """Per host: the stored (run, seq) are the seqs the agent's spool handed out, each once;
    no sample row twice; nothing left unacknowledged, nothing dropped.

    ``max_gaps``: an agent SIGKILLed between reserving a seq and writing its batch leaves
    that seq unused (never a batch): at most one per kill.
    """
    store = service.store()
    try:
        for agent in agents:  # an agent's samples each have their own time: none twice
            for name in store.names(agent.host):
                times = [ts for ts, _ in store.series(agent.host, name)]
                assert len(times) == len(set(times)), f"a sample of {agent.host} {name} was stored twice"
        for agent in agents:
            state = agent.state()
            keys = store.batch_keys(agent.host)
            assert {run for _, run, _ in keys} == {state["run"]}, agent.host
            seqs = [seq for _, _, seq in keys]
            assert len(seqs) == len(set(seqs))
            assert set(seqs) <= set(range(state["next_seq"])), agent.host
            assert state["next_seq"] - len(seqs) <= max_gaps, (agent.host, state["next_seq"], len(seqs))
            assert agent.waiting() == [], f"{agent.host} still holds unacknowledged batches"
            assert state["dropped"] == 0
            assert store.sample_count(agent.host) == sampled_batches(store, agent.host) * MEMORY_FIELDS
    finally:
        store.close()


def test_sigkill_the_service_while_50_agents_stream(service: Service, tmp_path: Path) -> None:
    agents = [AgentProcess(tmp_path / f"agent{i}", service.url, f"fleet-{i}", interval=0.5).start() for i in range(50)]
    try:
        hosts = {a.host for a in agents}
        eventually(
            lambda: hosts <= {h for h, n in stored_counts(service).items() if n >= 2},
            "every agent has stored batches",
            timeout=120,
        )
        service.kill()
        # While the service is down the agents keep collecting into their spools.
        eventually(lambda: all(len(a.waiting()) >= 2 for a in agents), "backlogs grow while it is down", timeout=120)
        before = stored_counts(service)
        service.start()
        eventually(
            lambda: all(stored_counts(service).get(h, 0) > before[h] + 2 for h in hosts),
            "every agent caught up after the restart",
            timeout=120,
        )
        assert all(a.stop() == 0 for a in agents)
    finally:
        for agent in agents:
            if agent.proc is not None and agent.proc.poll() is None:
                agent.kill()
    assert_exactly_once(service, agents)
    assert sum("disconnected from" in a.text() for a in agents) == 50


def test_break_and_restore_the_connection(service: Service, tmp_path: Path) -> None:
    link = CuttableLink(service.port)
    agents = [
        AgentProcess(tmp_path / "ws1", link.url, "link-ws-1").start(),
        AgentProcess(tmp_path / "ws2", link.url, "link-ws-2", "--batch", "3").start(),
        AgentProcess(tmp_path / "http", link.url, "link-http", "--transport", "http").start(),
    ]
    try:
        for _round in range(2):
            counts = stored_counts(service)
            eventually(
                lambda: all(
                    stored_counts(service).get(a.host, 0) >= counts.get(a.host, 0) + 2  # noqa: B023 -- eventually() calls it now
                    for a in agents
                ),
                "batches stored through the link",
            )
            link.cut()
            eventually(lambda: all(len(a.waiting()) >= 2 for a in agents), "backlogs grow while cut")
            link.restore()
            eventually(lambda: all(len(a.waiting()) <= 1 for a in agents), "backlogs drained after restore")
        assert all(a.stop() == 0 for a in agents)
    finally:
        link.close()
        for agent in agents:
            if agent.proc is not None and agent.proc.poll() is None:
                agent.kill()
    # link-ws-2 batches 3 samples: its sample rows are 3 per batch.
    assert_exactly_once(service, agents[:1] + agents[2:])
    store = service.store()
    try:
        keys = store.batch_keys("link-ws-2")
        state = agents[1].state()
        assert keys == [("link-ws-2", state["run"], s) for s in range(state["next_seq"])]
        # all but the last batch with samples are full (the goodbye after it has none)
        assert store.sample_count("link-ws-2") >= (sampled_batches(store, "link-ws-2") - 1) * 3 * MEMORY_FIELDS
    finally:
        store.close()
    assert all("disconnected from" in a.text() or "could not connect" in a.text() for a in agents)


def test_sigkill_an_agent_and_restart_it(service: Service, tmp_path: Path) -> None:
    agent = AgentProcess(tmp_path / "agent", service.url, "killed-agent", interval=0.1).start()
    kills = 0
    try:
        for _ in range(3):
            target = stored_counts(service).get(agent.host, 0) + 3
            eventually(lambda: stored_counts(service).get(agent.host, 0) >= target, "batches stored")  # noqa: B023 -- eventually() calls it now
            agent.kill()
            kills += 1
            run = agent.state()["run"]
            agent.start()
            assert agent.state()["run"] == run  # the same spool, the same run: seqs go on
        eventually(lambda: stored_counts(service).get(agent.host, 0) >= target + 3, "batches after restart")
        assert agent.stop() == 0
    finally:
        if agent.proc is not None and agent.proc.poll() is None:
            agent.kill()
    assert_exactly_once(service, [agent], max_gaps=kills)


def test_a_full_spool_drops_the_oldest_and_the_service_counts_them(tmp_path: Path) -> None:
    service = Service(tmp_path / "instance")  # not started yet: the agent spools alone
    agent = AgentProcess(
        tmp_path / "agent",
        service.url,
        "full-spool",
        "--spool-size",
        "65536",
        interval=0.05,
        names=("virtual_memory", "cpu_times", "disk_usage", "net_if_stats"),
    ).start()
    try:
        eventually(lambda: agent.state()["dropped"] > 0, "the spool overflowed", timeout=120)
        assert agent.waiting_bytes() <= 65536
        service.start()
        eventually(lambda: len(agent.waiting()) <= 1, "the backlog drained")
        drained = stored_counts(service).get("full-spool", 0)
        # Batches spooled after the drain carry the final count.
        eventually(lambda: stored_counts(service).get("full-spool", 0) >= drained + 2, "batches after the drain")
        assert agent.stop() == 0
        dropped = agent.state()["dropped"]
        status, body = service.get("/hosts")
        assert [h["dropped"] for h in body["hosts"] if h["host"] == "full-spool"] == [dropped]
        status, text = service.get("/metrics")
        assert f'hostpulse_agent_dropped_samples_total{{host="full-spool"}} {float(dropped)!r}' in text
        assert "spool full" in agent.text()
        # The batches that were not dropped are all stored, once.
        state = agent.state()
        store = service.store()
        try:
            seqs = [seq for _, _, seq in store.batch_keys("full-spool")]
        finally:
            store.close()
        assert seqs == sorted(set(seqs)) and seqs[-1] == state["next_seq"] - 1
        assert len(seqs) + dropped == state["next_seq"]  # one sample per batch: stored + dropped = produced
    finally:
        if agent.proc is not None and agent.proc.poll() is None:
            agent.kill()
        service.stop()
