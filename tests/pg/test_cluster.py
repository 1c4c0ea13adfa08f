"""Issue 16's test: a real PostgreSQL, two real Hypercorn nodes on it, 20 agents spread over
both (each given both, its own node first). Node A is SIGKILLed while they stream: no
acknowledged batch is lost, none is stored twice, and every agent carries on through node B.
Before that: an exec on A is polled on B, and a token revoked on A (``hostpulse
token-revoke``, run with A's instance folder) is refused by B within 2 s."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psutil
import pytest

from hostpulse import tokens_store
from hostpulse.processes import signal_group
from hostpulse.series import SeriesStore
from hostpulse.settings import Token
from hostpulse.store_pg import migrate
from hostpulse.testing import write_test_config
from hostpulse.tokens import hash_token
from tests.agent.live import ADMIN, AGENT, VIEWER, AgentProcess, eventually
from tests.support import ROOT, free_port, http, hypercorn_argv, serve

AGENTS = 20
MEMORY_FIELDS = len(psutil.virtual_memory()._fields)
DOOMED = "doomed-viewer-token"


class Node:
    def __init__(self, instance: Path, port: int, proc: subprocess.Popen[bytes]) -> None:
        self.instance = instance
        self.url = f"http://127.0.0.1:{port}"
        self.proc = proc

    def status(self, method: str, path: str, token: str, body: bytes | None = None) -> tuple[int, bytes]:
        headers = {"Authorization": f"Bearer {token}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        status, _, raw = http(method, self.url + path, headers=headers, body=body, timeout=10)
        return status, raw

    def kill(self) -> None:
        signal_group(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


@pytest.fixture
def cluster(pg_url: str, tmp_path: Path) -> Iterator[tuple[str, Node, Node]]:
    migrate(pg_url)  # hostpulse init's part for the shared database
    for role, token in (("agent", AGENT), ("viewer", VIEWER), ("admin", ADMIN), ("doomed", DOOMED)):
        roles = ("viewer",) if role == "doomed" else (role,)
        tokens_store.add_token(pg_url, Token(hash_token(token), role, f"{role}@localhost", 0, roles))
    with ExitStack() as stack:
        nodes = []
        for name in ("a", "b"):
            instance = tmp_path / name
            write_test_config(instance, {}, store={"retention": 30 * 24 * 3600.0})
            port = free_port()
            env = {"HOSTPULSE_INSTANCE": str(instance), "HOSTPULSE_STORE_URL": pg_url}
            proc = stack.enter_context(serve(hypercorn_argv(port), port, env=env, log=tmp_path / f"{name}.log"))
            nodes.append(Node(instance, port, proc))
        yield pg_url, nodes[0], nodes[1]


def stored(url: str) -> Counter[str]:
    """Batches stored per host, read through the store's API as any node would."""
    store = SeriesStore(url, retention=float("inf"))
    try:
        return Counter(host for host, _, _ in store.batch_keys())
    finally:
        store.close()


def test_two_nodes_on_postgresql_survive_a_sigkill(cluster: tuple[str, Node, Node], tmp_path: Path) -> None:
    url, a, b = cluster
    # an exec on A, polled on B until it is finished
    assert a.status("POST", "/api/exec/cluster-job", ADMIN, b'{"cmd": "uptime"}') == (
        200,
        b'{"mode":"exec","status":"accepted"}\n',
    )
    polled = eventually(
        lambda: (
            (answer := b.status("POST", "/api/poll/cluster-job", ADMIN))[0] == 200
            and b'"finished"' in answer[1]
            and answer
        ),
        "A's job finished, polled on B",
    )
    assert b'"returncode":0' in polled[1]

    # a token revoked on A is refused by B within 2 s
    assert b.status("GET", "/hosts", DOOMED)[0] == 200
    env = {**os.environ, "HOSTPULSE_STORE_URL": url}
    revoke = [sys.executable, "-m", "hostpulse", "--instance", str(a.instance), "token-revoke", "doomed"]
    done = subprocess.run(revoke, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    revoked = time.monotonic()
    assert done.returncode == 0, done.stderr
    eventually(lambda: b.status("GET", "/hosts", DOOMED)[0] == 401, "B refusing the revoked token", timeout=2.0)
    assert time.monotonic() - revoked < 2.0
    assert a.status("GET", "/hosts", DOOMED)[0] == 401 and b.status("GET", "/hosts", VIEWER)[0] == 200

    # 20 agents, half with A first, half with B first
    agents = []
    for i in range(AGENTS):
        first, other = (a, b) if i % 2 == 0 else (b, a)
        agent = AgentProcess(tmp_path / f"agent-{i}", first.url, f"host-{i}", "--server", other.url, interval=0.25)
        agents.append(agent.start())
    try:
        eventually(lambda: all(stored(url)[x.host] >= 3 for x in agents), "every agent's batches stored", 45)
        reader = SeriesStore(url, retention=float("inf"))
        acked_before = {x.host: set(reader.batch_keys(x.host)) for x in agents}
        reader.close()
        a.kill()
        killed = stored(url)
        eventually(
            lambda: all(stored(url)[x.host] >= killed[x.host] + 10 for x in agents),
            "every agent carrying on through B",
            45,
        )
        for agent in agents:
            assert agent.proc is not None and agent.proc.poll() is None
            agent.proc.send_signal(signal.SIGTERM)  # a clean stop: it flushes what it holds to B
        assert [agent.proc.wait(timeout=60) for agent in agents if agent.proc] == [0] * AGENTS
    finally:
        for agent in agents:
            if agent.proc is not None and agent.proc.poll() is None:
                agent.kill()
    assert all(f"failing over to {b.url.replace('http', 'ws')}" in x.text() for x in agents[::2])

    store = SeriesStore(url, retention=float("inf"))
    try:
        for agent in agents:
            state: dict[str, Any] = agent.state()
            keys = store.batch_keys(agent.host)
            assert acked_before[agent.host] <= set(keys), agent.host  # nothing stored before the kill lost
            seqs = [seq for _, _, seq in keys]
            assert {run for _, run, _ in keys} == {state["run"]}
            assert sorted(seqs) == list(range(state["next_seq"])), agent.host  # each batch it made, once
            assert agent.waiting() == [] and state["dropped"] == 0
            batches = store.stored_batches(agent.host)  # with samples: all but the goodbye
            assert len(seqs) - 1 <= batches <= len(seqs)
            assert store.sample_count(agent.host) == batches * MEMORY_FIELDS
            for name in store.names(agent.host):
                times = [ts for ts, _ in store.series(agent.host, name)]
                assert len(times) == len(set(times)) == batches, (agent.host, name)
    finally:
        store.close()
