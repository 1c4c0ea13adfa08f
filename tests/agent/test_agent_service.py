"""End to end on loopback: real agents stream to the port under Hypercorn; the query API,
``/metrics`` and the store show what they sent; bad batches get clear errors."""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from hostpulse.samples import DEFAULT_LIMITS
from tests.agent.live import ADMIN, AGENT, VIEWER, AgentProcess, Service, eventually, sampled_batches

MEMORY_FIELDS = len(psutil.virtual_memory()._fields)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    running = Service(tmp_path_factory.mktemp("instance")).start()
    yield running
    running.stop()


def stored(service: Service, host: str) -> list[tuple[str, str, int]]:
    store = service.store()
    try:
        return store.batch_keys(host)
    finally:
        store.close()


def check_exactly_once(service: Service, agent: AgentProcess) -> list[tuple[str, str, int]]:
    """Every batch the agent produced is stored once, and nothing is left in its spool; the
    last is its goodbye (no samples)."""
    state = agent.state()
    keys = stored(service, agent.host)
    assert keys == [(agent.host, state["run"], seq) for seq in range(state["next_seq"])]
    assert agent.waiting() == []
    assert state["dropped"] == 0
    store = service.store()
    try:
        assert sampled_batches(store, agent.host) == len(keys) - 1
        assert store.sample_count(agent.host) == (len(keys) - 1) * MEMORY_FIELDS
    finally:
        store.close()
    return keys


@pytest.mark.parametrize("transport", ["ws", "http"])
def test_agent_streams_and_the_query_api_shows_every_sample(service: Service, tmp_path: Path, transport: str) -> None:
    host = f"e2e-{transport}"
    agent = AgentProcess(tmp_path / "agent", service.url, host, "--transport", transport).start()
    eventually(lambda: len(stored(service, host)) >= 5, "five batches stored")
    assert agent.stop() == 0
    keys = check_exactly_once(service, agent)
    log = agent.text()
    endpoint = "ws://" if transport == "ws" else "http://"
    assert f"connected to {endpoint}127.0.0.1:{service.port}" in log
    assert "all batches acknowledged" in log

    status, body = service.get("/hosts")
    assert status == 200
    mine = [h for h in body["hosts"] if h["host"] == host]
    assert len(mine) == 1 and mine[0]["dropped"] == 0
    assert 0 <= mine[0]["latest"]["virtual_memory.percent"] <= 100
    assert len(mine[0]["latest"]) == MEMORY_FIELDS

    status, body = service.get(f"/hosts/{host}/series?name=virtual_memory.percent")
    assert status == 200 and body["host"] == host and body["step"] is None
    times = [ts for ts, _ in body["points"]]
    assert len(times) == len(keys) - 1 and times == sorted(times)  # the goodbye has no samples
    assert all(0 <= value <= 100 for _, value in body["points"])

    since, until = times[1], times[-2]
    status, body = service.get(f"/hosts/{host}/series?name=virtual_memory.percent&since={since}&until={until}")
    assert [ts for ts, _ in body["points"]] == times[1:-1]

    status, body = service.get(f"/hosts/{host}/series?name=virtual_memory.total&step=3600")
    assert status == 200 and body["step"] == 3600
    assert 1 <= len(body["points"]) <= 2  # everything fell in one or two hour buckets
    assert body["points"][0][1] == psutil.virtual_memory().total


def test_metrics_parse_with_prometheus_client(service: Service, tmp_path: Path) -> None:
    agent = AgentProcess(tmp_path / "agent", service.url, "e2e-metrics", names=("virtual_memory", "pids")).start()
    eventually(lambda: len(stored(service, "e2e-metrics")) >= 2, "two batches stored")
    assert agent.stop() == 0
    status, text = service.get("/metrics")
    assert status == 200
    samples = {
        (s.name, s.labels.get("host")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert 0 <= samples[("hostpulse_memory_used_percent", "e2e-metrics")] <= 100
    assert samples[("hostpulse_processes", "e2e-metrics")] >= 1
    assert samples[("hostpulse_agent_dropped_samples_total", "e2e-metrics")] == 0
    assert ("hostpulse_host_last_seen_seconds", "e2e-metrics") in samples


def test_query_errors(service: Service) -> None:
    assert service.get("/hosts/nobody/series?name=x")[0] == 404
    status, body = service.get("/hosts/nobody/series")
    assert (status, body["error"]) == (400, "missing_field")
    for query in ("name=x&step=0", "name=x&since=soon", "name=x&until=nan"):
        status, body = service.get(f"/hosts/e2e-ws/series?{query}")
        assert (status, body["error"]) == (400, "bad_request"), query
    assert service.get("/hosts", token=AGENT)[0] == 403  # an agent may only send
    assert service.get("/metrics", token="not-a-token")[0] == 401


# --- bad batches -------------------------------------------------------------------------

# A whole second of now: samples older than the retention are refused (SPEC).
NOW = float(int(time.time()))
GOOD = {"host": "e2e-bad", "run": "bad-run", "seq": 0, "samples": [{"ts": NOW, "values": {"x": 1.0}}]}


def text_of(obj: dict) -> str:
    return json.dumps(obj)


BAD_BATCHES = [
    # (body text, error code, words in the message, seq echoed)
    (text_of({**GOOD, "seq": "1"}), "bad_request", "seq", None),
    (text_of({**GOOD, "seq": 1, "host": "bad_host"}), "bad_request", "RFC 1123", 1),
    (text_of({**GOOD, "seq": 2, "host": "-lead"}), "bad_request", "RFC 1123", 2),
    (text_of({**GOOD, "seq": 3, "host": "wé"}), "bad_request", "RFC 1123", 3),
    (text_of({**GOOD, "seq": 4, "samples": [{"ts": NOW, "values": {"x": True}}]}), "bad_request", "finite number", 4),
    (text_of({**GOOD, "seq": 5, "samples": [{"ts": NOW, "values": {"x": "1"}}]}), "bad_request", "finite number", 5),
    (text_of({**GOOD, "seq": 6}).replace('"x": 1.0', '"x": NaN'), "bad_request", "finite number", 6),
    (text_of({**GOOD, "seq": 7}).replace('"x": 1.0', '"x": Infinity'), "bad_request", "finite number", 7),
    (text_of({**GOOD, "seq": 8}).replace(f'"ts": {NOW}', '"ts": -Infinity'), "bad_request", "ts", 8),
    (text_of({k: v for k, v in {**GOOD, "seq": 9}.items() if k != "run"}), "missing_field", "run", 9),
    (text_of({**GOOD, "seq": 10, "samples": []}), "bad_request", "empty", 10),
    (text_of({**GOOD, "seq": 11, "extra": 1}), "bad_request", "unknown field", 11),
    ("[1, 2, 3]", "bad_request", "object", None),
    ("{not json", "invalid_json", "not valid JSON", None),
    (text_of({**GOOD, "seq": 12, "samples": [{"ts": NOW, "values": {"x" * 201: 1}}]}), "bad_request", "200", 12),
    ("{" + " " * (4 * 1024 * 1024) + "}", "payload_too_large", "larger than", None),
    (
        text_of({**GOOD, "seq": 13, "samples": [{"ts": float(i), "values": {"x": 1}} for i in range(1001)]}),
        "payload_too_large",
        "1001 samples",
        13,
    ),
]


async def test_bad_batches_over_websocket_get_errors_and_the_socket_stays_usable(service: Service) -> None:
    url = service.url.replace("http", "ws") + "/ws/agent"
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url, headers={"Authorization": f"Bearer {AGENT}"}, max_msg_size=0) as ws:
            for body, code, words, seq in BAD_BATCHES:
                await ws.send_str(body)
                answer = json.loads((await ws.receive(timeout=60)).data)
                assert answer["error"] == code, body[:80]
                assert words in answer["message"] and answer["seq"] == seq, answer
            await ws.send_str(text_of({**GOOD, "seq": 100}))
            assert json.loads((await ws.receive(timeout=60)).data) == {"ack": 100, "run": "bad-run"}
            await ws.send_str(text_of({**GOOD, "seq": 100}))  # again: acknowledged, stored once
            assert json.loads((await ws.receive(timeout=60)).data) == {"ack": 100, "run": "bad-run"}
    assert stored(service, "e2e-bad") == [("e2e-bad", "bad-run", 100)]


async def test_bad_batches_over_http_get_4xx_json(service: Service) -> None:
    url = service.url + "/ingest"
    headers = {"Authorization": f"Bearer {AGENT}", "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as session:
        # (The 4 MiB body is left out here: the service may answer its 413 and close before
        # the client has written it all, so what a client sees is a race. Over the
        # WebSocket above it is a message like any other.)
        for body, code, words, seq in BAD_BATCHES:
            if len(body) > 1024 * 1024:
                continue
            async with session.post(url, data=body.encode(), headers=headers) as resp:
                answer = await resp.json(content_type=None)
            assert resp.status == (413 if code == "payload_too_large" else 400), body[:80]
            assert answer["error"] == code, answer
            assert words in answer["message"] and answer["seq"] == seq, answer
        async with session.post(url, data=b"{}", headers={**headers, "Content-Type": "text/plain"}) as resp:
            assert resp.status == 415 and (await resp.json())["error"] == "unsupported_media_type"
        ok = text_of({**GOOD, "host": "e2e-bad-http", "seq": 5})
        async with session.post(url, data=ok, headers=headers) as resp:
            assert (resp.status, await resp.json()) == (200, {"ack": 5, "run": "bad-run"})
    assert stored(service, "e2e-bad-http") == [("e2e-bad-http", "bad-run", 5)]


def test_ingest_over_http_takes_a_batch_of_exactly_the_limit_and_refuses_one_byte_more(service: Service) -> None:
    """The edge over HTTP, as a careful client meets it: the 4 MiB batch is stored; one byte
    more is refused from its declared length, before the client has sent the body."""
    limit = DEFAULT_LIMITS.max_bytes
    host, port = service.url.removeprefix("http://").split(":")
    head = (
        f"POST /ingest HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {AGENT}\r\n"
        "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n"
    )
    ok = text_of({**GOOD, "host": "e2e-edge", "seq": 3}).encode()
    for body, declared, sent in ((ok + b" " * (limit - len(ok)), limit, True), (b"", limit + 1, False)):
        with socket.create_connection((host, int(port)), timeout=60) as sock:
            sock.sendall(head.format(declared).encode() + (body if sent else b""))
            answer = http.client.HTTPResponse(sock)
            answer.begin()
            reply = json.loads(answer.read())
        if sent:
            assert (answer.status, reply) == (200, {"ack": 3, "run": "bad-run"})
        else:
            assert answer.status == 413 and reply["error"] == "payload_too_large", reply
    assert stored(service, "e2e-edge") == [("e2e-edge", "bad-run", 3)]


async def test_tokens_without_the_agent_role_cannot_send(service: Service) -> None:
    ws_url = service.url.replace("http", "ws") + "/ws/agent"
    body = text_of({**GOOD, "host": "e2e-roles"})
    for headers, status in (
        ({"Authorization": f"Bearer {VIEWER}"}, 403),
        ({}, 401),
        ({"Authorization": "Bearer wrong"}, 401),
    ):
        # One session each: aiohttp may pool the connection of a refused handshake.
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await session.ws_connect(ws_url, headers=headers)
            assert info.value.status == status
        async with aiohttp.ClientSession() as session:
            async with session.post(
                service.url + "/ingest", data=body, headers={**headers, "Content-Type": "application/json"}
            ) as resp:
                assert resp.status == status
                assert (await resp.json())["error"] == ("forbidden" if status == 403 else "unauthorized")
                if status == 401:
                    assert resp.headers["WWW-Authenticate"] == "Bearer"
    # admin may do everything, agents' work included
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(ws_url, headers={"Authorization": f"Bearer {ADMIN}"}) as ws:
            await ws.send_str(body)
            assert json.loads((await ws.receive(timeout=60)).data)["ack"] == 0
    assert stored(service, "e2e-roles") == [("e2e-roles", "bad-run", 0)]
    # The access log has each handshake: two refused with their status, one accepted (101).
    statuses = re.findall(r'"GET /ws/agent 1\.1" (\d+) ', (await eventually_logged(service, '/ws/agent 1.1" 101')))
    assert {"401", "403", "101"} <= set(statuses), statuses


async def test_a_plain_get_of_the_websocket_route_is_told_to_upgrade(service: Service) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(service.url + "/ws/agent", headers={"Authorization": f"Bearer {AGENT}"}) as resp:
            assert resp.status == 426 and resp.headers["Upgrade"] == "websocket"
            assert (await resp.json())["error"] == "upgrade_required"
        async with session.get(service.url + "/ws/agent") as resp:  # the token is checked first
            assert resp.status == 401 and (await resp.json())["error"] == "unauthorized"


async def eventually_logged(service: Service, text: str) -> str:
    """The service log once ``text`` is in it (lines are written as exchanges end)."""
    for _ in range(100):
        log = service.log.read_text(errors="replace")
        if text in log:
            return log
        await asyncio.sleep(0.05)
    raise AssertionError(f"{text!r} never reached {service.log}")


def test_an_agent_with_a_viewer_token_keeps_its_batches_and_says_why(service: Service, tmp_path: Path) -> None:
    agent = AgentProcess(tmp_path / "agent", service.url, "e2e-viewer", "--flush-timeout", "1", token=VIEWER).start()
    eventually(
        lambda: "refused the token (HTTP 403)" in agent.text() and len(agent.waiting()) >= 2,
        "the refusal logged and batches kept",
    )
    assert agent.stop() == 0
    assert stored(service, "e2e-viewer") == []
    assert len(agent.waiting()) >= 2  # kept for when the token is fixed
    assert "batches left in the spool for the next start" in agent.text()


# --- seed 000: --once against both apps ---------------------------------------------------


def once(url: str, tmp_path: Path) -> tuple[int, str, str]:
    import subprocess
    import sys

    from tests.support import ROOT

    done = subprocess.run(
        [sys.executable, "-m", "agent", "--once", "--server", url, "--token", AGENT, "virtual_memory", "boot_time"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, done.stdout, done.stderr


def legacy_posts(instance: Path) -> list[str]:
    with sqlite3.connect(instance / "hostpulse.sqlite3") as db:
        return [row[0] for row in db.execute("SELECT body FROM legacy_posts")]


def test_once_posts_seed_000s_list_to_the_port(service: Service, tmp_path: Path) -> None:
    before = len(legacy_posts(service.instance))
    status, out, err = once(service.url, tmp_path)
    assert status == 0, err
    assert out.startswith("request: [[")
    posted = json.loads(out.removeprefix("request: "))
    assert posted[0][0] == psutil.virtual_memory().total and posted[1] == psutil.boot_time()
    kept = legacy_posts(service.instance)
    assert len(kept) == before + 1 and json.loads(kept[-1]) == posted


def test_once_posts_to_the_flask_version(tmp_path: Path) -> None:
    flask = Service(tmp_path / "flask", factory="compat.flask_app:create_app()", server="gunicorn").start()
    try:
        status, out, err = once(flask.url, tmp_path)
        assert status == 0, err
        assert out.startswith("request: [[")
        assert len(legacy_posts(flask.instance)) == 1
        status, out, err = once(flask.url.replace("http://", "ws://"), tmp_path)  # a ws:// base works too
        assert status == 0, err
    finally:
        flask.stop()


def test_once_with_a_wrong_token_exits_1_and_prints_the_answer(service: Service, tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.support import ROOT

    done = subprocess.run(
        [sys.executable, "-m", "agent", "--once", "--server", service.url, "--token", "nope", "boot_time"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert json.loads(done.stdout)["error"] == "unauthorized"
    assert "HTTP 401" in done.stderr


def test_series_queries_take_metric_names_labels_and_rates(service: Service, tmp_path: Path) -> None:
    names = ("cpu_percent", "disk_usage", "net_io_counters", "virtual_memory")
    agent = AgentProcess(tmp_path / "agent", service.url, "e2e-labels", names=names).start()
    eventually(lambda: len(stored(service, "e2e-labels")) >= 4, "four batches stored")
    assert agent.stop() == 0
    base = "/hosts/e2e-labels/series?name="

    # A metric name and its labels pick the psutil series they stand for.
    status, by_name = service.get(base + "disk_usage./.percent")
    status, by_labels = service.get(base + "filesystem_used_percent&mountpoint=/")
    assert status == 200 and by_labels["name"] == "disk_usage./.percent"
    assert by_labels["points"] == by_name["points"] and len(by_name["points"]) >= 3
    status, body = service.get(base + "hostpulse_cpu_core_percent&cpu=0")
    assert status == 200 and body["name"] == "cpu_percent.0"
    if (psutil.cpu_count() or 1) > 1:  # one metric, several series: labels are needed
        status, body = service.get(base + "cpu_core_percent")
        assert status == 400 and "give labels" in body["message"]
    status, body = service.get(base + "filesystem_used_percent&mountpoint=/no/such/mount")
    assert status == 404

    # A counter answers its rate per second, never negative; a gauge has no rate.
    status, body = service.get(base + "net_io_counters.bytes_recv&rate=1")
    assert status == 200 and body["rate"] is True
    assert len(body["points"]) >= 2 and all(value >= 0 for _, value in body["points"])
    status, raw = service.get(base + "net_io_counters.bytes_recv")
    (t0, v0), (t1, v1) = raw["points"][:2]
    # epoch seconds as doubles carry ~0.2 µs: over the ~1 s between two batches the store's
    # rate and this one agree to a few parts in a million (CI once saw 1.06e-6), not to 1e-6
    assert body["points"][0] == [t1, pytest.approx((v1 - v0) / (t1 - t0), rel=1e-5)]
    status, body = service.get(base + "net_io_counters.bytes_recv&rate=1&step=3600")
    assert status == 200 and len(body["points"]) in (1, 2)
    status, body = service.get(base + "virtual_memory.percent&rate=1")
    assert status == 400 and "gauge" in body["message"]
    status, body = service.get(base + "virtual_memory.percent&rate=maybe")
    assert status == 400
