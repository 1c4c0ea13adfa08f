"""Two real service nodes (Hypercorn, each with its own instance folder) on one PostgreSQL
database: a job started on node A is seen, polled and finished through node B, and the job
limit holds across both (issue 16)."""

from __future__ import annotations

import json
import signal
import subprocess
import textwrap
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from hostpulse import tokens_store
from hostpulse.processes import signal_group
from hostpulse.settings import Token
from hostpulse.store_pg import migrate
from hostpulse.testing import write_test_config
from hostpulse.tokens import hash_token
from tests.support import free_port, http, hypercorn_argv, serve

ADMIN = "admin-token-two-nodes"
TOKENS = {"admin": ADMIN, "viewer": "viewer-token-two-nodes", "agent": "agent-token-two-nodes"}

# Runs in node A's scripts folder until the test creates ``release`` there.
HOLD = """
    import os, sys, time
    print("holding", flush=True)
    deadline = time.monotonic() + 30
    while not os.path.exists("release"):
        if time.monotonic() > deadline:
            sys.exit(4)
        time.sleep(0.02)
    print("released", flush=True)
"""


class Node:
    def __init__(self, instance: Path, port: int, proc: subprocess.Popen[bytes]) -> None:
        self.instance = instance
        self.url = f"http://127.0.0.1:{port}"
        self.proc = proc

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {ADMIN}"}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        status, _, raw = http(method, self.url + path, headers=headers, body=data)
        return status, json.loads(raw)

    def exec(self, job_id: str, cmd: str) -> dict[str, Any]:
        status, answer = self.call("POST", f"/api/exec/{job_id}", {"cmd": cmd})
        assert status == 200, answer
        return dict(answer)

    def poll(self, job_id: str) -> dict[str, Any]:
        status, answer = self.call("POST", f"/api/poll/{job_id}")
        assert status == 200, answer
        return dict(answer)


@pytest.fixture
def nodes(pg_url: str, tmp_path: Path) -> Iterator[tuple[Node, Node]]:
    migrate(pg_url)  # hostpulse init's part for the shared database
    for role, token in TOKENS.items():  # tokens live in the database, not in a node's config
        tokens_store.add_token(pg_url, Token(hash_token(token), role, f"{role}@localhost", 0, (role,)))
    with ExitStack() as stack:
        started = []
        for name in ("a", "b"):
            instance = tmp_path / name
            write_test_config(instance, {})
            (instance / "scripts").mkdir()
            (instance / "scripts" / "hold.py").write_text(textwrap.dedent(HOLD))
            port = free_port()
            env = {"HOSTPULSE_INSTANCE": str(instance), "HOSTPULSE_STORE_URL": pg_url}
            proc = stack.enter_context(serve(hypercorn_argv(port), port, env=env, log=tmp_path / f"{name}.log"))
            started.append(Node(instance, port, proc))
        yield started[0], started[1]


def wait_for(check: Any, what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout} s")


def wait_polls(node: Node, job_id: str) -> list[dict[str, Any]]:
    """Every answer of ``node``'s polls of the job, until it is finished."""
    polls: list[dict[str, Any]] = []
    wait_for(lambda: polls.append(node.poll(job_id)) or polls[-1]["status"] == "finished", f"{job_id} to finish")
    return polls


def test_exec_on_one_node_is_polled_on_the_other(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    assert a.exec("shared-job", "python3 hold.py") == {"mode": "exec", "status": "accepted"}
    # the limit (one job at a time) holds across the nodes: B sees A's job running
    assert b.exec("other-job", "uptime") == {"mode": "exec", "status": "busy"}
    running = wait_for(lambda: (s := b.poll("shared-job"))["output"] and s, "A's job's output, polled on B")
    assert running == {"mode": "poll", "status": "running", "output": "holding"}
    (a.instance / "scripts" / "release").touch()
    polls = wait_polls(b, "shared-job")  # a poll before its end may show its last line
    assert polls[-1] == {"mode": "poll", "status": "finished", "returncode": 0, "output": polls[-1]["output"]}
    assert [p["output"] for p in polls if p["output"]] == ["released"]
    assert a.poll("shared-job") == {"mode": "poll", "status": "finished", "returncode": 0, "output": ""}
    # the limit is free again, for either node; a job B runs is polled on A
    assert b.exec("df-job", "df -h") == {"mode": "exec", "status": "accepted"}
    polls = wait_polls(a, "df-job")
    assert polls[-1]["returncode"] == 0
    assert any(p["output"] for p in polls)  # its lines, whichever polls showed them


def test_a_poll_of_an_unknown_job_is_the_same_on_both(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    assert a.call("POST", "/api/poll/nobody") == b.call("POST", "/api/poll/nobody")


def test_a_job_of_a_killed_node_is_recorded_killed_in_the_shared_store(nodes: tuple[Node, Node]) -> None:
    # The worker's guard (hostpulse/containment.py) records its jobs in the store the URL
    # names: B tells at once what happened, not only after the job's timeout plus 10 s.
    a, b = nodes
    assert a.exec("doomed-job", "python3 hold.py") == {"mode": "exec", "status": "accepted"}
    wait_for(lambda: b.poll("doomed-job")["output"] == "holding", "the job running")
    signal_group(a.proc.pid, signal.SIGKILL)
    a.proc.wait()
    started = time.monotonic()
    polls = wait_polls(b, "doomed-job")
    assert polls[-1] == {"mode": "poll", "status": "finished", "returncode": -9, "output": ""}
    assert time.monotonic() - started < 10  # the job's timeout is 60 s
