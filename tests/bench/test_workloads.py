"""The probed workloads of ``python -m bench`` at a tiny scale against real servers: the slow
traffic is really slow, the probes are all counted, and a server that misbehaves shows up
as errors. No assertion on a time: only on counts, and on bytes bounded by the pacing."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from bench import load
from bench.servers import TOKENS, Server, running

KiB = 1024
PROBES = {"probe_path": "/json/dict", "probes_per_s": 10, "probe_timeout": 1.0}


def auth(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[role]}"}


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    with running(["flask-gunicorn", "port-uvloop", "quart-bare"], tmp_path_factory.mktemp("bench")) as up:
        yield {s.name: s for s in up}


@pytest.fixture
def broken() -> Iterator[tuple[str, int]]:
    """A server that answers 503 to everything at once, as a server that fails would."""
    loop = asyncio.new_event_loop()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = loop.run_until_complete(asyncio.start_server(answer, "127.0.0.1", 0))
    port = server.sockets[0].getsockname()[1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield "127.0.0.1", port
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    server.close()


def run(coro: Any) -> dict[str, Any]:
    result: dict[str, Any] = asyncio.run(coro)
    return result


def upload_job(base: str, **changes: Any) -> dict[str, Any]:
    return {
        "kind": "slow_upload",
        "url": f"{base}/demo",
        "headers": auth("admin"),
        "clients": 4,
        "size": 5 * 1024 * KiB,
        "rate": 40 * KiB,
        "duration": 2.5,
        "ramp": 0.5,
        **PROBES,
        **changes,
    }


def test_slow_uploads_are_slow_and_probes_counted(servers: dict[str, Server]) -> None:
    job = upload_job(servers["port-uvloop"].base)
    out = run(load.slow_upload(job))
    assert out["slow_ok"] == 4 and out["slow_errors"] == 0 and out["slow_completed"] == 0
    # paced: no more than rate x time (plus one chunk) a client, far below the 5 MiB
    assert 4 * 10 * KiB <= out["slow_bytes"] <= 4 * (40 * KiB * 2.5 + 10 * KiB)
    assert out["probes"] == load._probes_during(job)[0] == 10
    assert out["errors"] == 0 and out["p99"] is not None


@pytest.mark.parametrize("name", ["port-uvloop", "quart-bare", "flask-gunicorn"])
def test_a_whole_slow_upload_is_accepted(servers: dict[str, Server], name: str) -> None:
    """The multipart body the slow clients send is one the servers take (200)."""
    out = run(load.slow_upload(upload_job(servers[name].base, clients=2, size=30 * KiB, rate=100 * KiB, duration=6.0)))
    assert out["answers"] == {"200": 2}, out
    assert out["slow_completed"] == 2 and out["slow_errors"] == 0


def test_slow_download_from_bare_quart(servers: dict[str, Server]) -> None:
    bare = servers["quart-bare"]
    assert bare.instance is not None
    (bare.instance / "uploads").mkdir(exist_ok=True)
    (bare.instance / "uploads" / "five.bin").write_bytes(os.urandom(5 * 1024 * KiB))
    job = {
        "kind": "slow_download",
        "url": f"{bare.base}/files/five.bin",
        "headers": {},
        "clients": 3,
        "rate": 40 * KiB,
        "duration": 2.5,
        "ramp": 0.5,
        "rcvbuf": 16 * KiB,
        **PROBES,
    }
    out = run(load.slow_download(job))
    assert out["slow_ok"] == 3 and out["slow_errors"] == 0 and out["errors"] == 0
    assert out["slow_bytes"] <= 3 * (40 * KiB * 2.5 + 10 * KiB)
    assert out["probes"] == 10


def test_idle_connections_held_by_the_port_closed_by_sync_workers(servers: dict[str, Server]) -> None:
    job = {"kind": "idle_keepalive", "clients": 20, "ramp": 0.2, "probes": 30, "duration": 1.0, **PROBES}
    port = run(load.idle_keepalive({**job, "url": f"{servers['port-uvloop'].base}/json/dict"}))
    assert port["idle_open"] == 20 and port["idle_errors"] == 0 and port["idle_closed_by_server"] == 0
    assert port["probes"] == 30 and port["errors"] == 0
    sync = run(load.idle_keepalive({**job, "url": f"{servers['flask-gunicorn'].base}/json/dict"}))
    assert sync["idle_open"] == 20 and sync["idle_closed_by_server"] == 20  # one answer a connection
    assert sync["probes"] == 30


def test_a_failing_server_shows_as_errors(broken: tuple[str, int]) -> None:
    base = f"http://{broken[0]}:{broken[1]}"
    uploads = run(load.slow_upload(upload_job(base, clients=3, duration=1.5, probe_timeout=0.5)))
    assert uploads["slow_errors"] == 3 and uploads["answers"] == {"503": 3}
    assert uploads["probes"] == uploads["errors"] == 5
    idle = run(
        load.idle_keepalive(
            {"url": f"{base}/json/dict", "clients": 5, "ramp": 0.1, "probes": 8, "duration": 0.5, **PROBES}
        )
    )
    assert idle["idle_errors"] == 5 and idle["idle_open"] == 0
    assert idle["probes"] == idle["errors"] == 8


def test_a_silent_server_times_probes_out() -> None:
    """A server that accepts and never answers: each probe fails at its timeout, counted as such."""
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        host, port = silent.getsockname()
        job = {"probe_path": "/json/dict", "probe_timeout": 0.3}
        out = run(load.probe_series(host, port, job, 4, 0.2))
    assert out["probes"] == out["errors"] == 4
    assert out["p99"] == 0.3


def test_agents_stream_to_the_port_while_probed(servers: dict[str, Server]) -> None:
    port = servers["port-uvloop"]
    job = {
        "kind": "agents_probed",
        "url": port.base,
        "agents": 20,
        "processes": 1,
        "ramp": 0.5,
        "duration": 3.0,
        "values": 2,
        **PROBES,
    }
    out = run(load.agents_probed(job))
    assert out["agents_held"] == 20 and out["agent_errors"] == 0, out
    assert out["acked"] >= 20  # at least a batch an agent
    assert out["probes"] == 10 and out["errors"] == 0


def test_the_agent_token_is_the_simulators() -> None:
    from bench.agents import AGENT_TOKEN

    assert TOKENS["agent"] == AGENT_TOKEN
