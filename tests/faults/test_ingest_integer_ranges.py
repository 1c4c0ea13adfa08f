"""Issue 11, item 1: one agent token must not stop everyone's ingest.

A batch whose ``seq`` or ``dropped`` was 2**63 or more passed validation and then
overflowed SQLite's INTEGER inside the group commit, so every honest batch in the same
transaction failed with it. Now every integer's range is checked at the door (HTTP and
WebSocket share ``validate_batch``), and a batch that still fails in the store fails
alone: the others of its group commit and are acknowledged.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hostpulse import samples
from hostpulse.samples import Batch, BatchError, Sample, validate_batch
from hostpulse.series import GroupCommitter, SeriesStore
from tests.agent.live import AGENT, Service

MAX_INTEGER = 2**63 - 1  # SQLite's largest INTEGER
TOO_BIG = 2**63


def wire(host: str, run: str, seq: int, dropped: int = 0, value: float = 1.0) -> dict[str, Any]:
    return {
        "host": host,
        "run": run,
        "seq": seq,
        "dropped": dropped,
        "samples": [{"ts": time.time(), "values": {"x": value, "y": 2.0}}],
    }


# --- at the door -------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["seq", "dropped"])
def test_integers_beyond_sqlite_are_refused_at_the_door(field: str) -> None:
    assert getattr(samples, "MAX_INTEGER", None) == MAX_INTEGER
    ok = validate_batch(wire("h", "r", 1) | {field: MAX_INTEGER})
    assert getattr(ok, field) == MAX_INTEGER
    for bad in (TOO_BIG, 2**64, 10**30):
        with pytest.raises(BatchError) as info:
            validate_batch(wire("h", "r", 1) | {field: bad})
        assert info.value.status == 400 and info.value.code == "bad_request"
        assert field in info.value.message and "2**63-1" in info.value.message
        # The seq is echoed when it is a seq the service could store, never the bad one.
        assert info.value.seq == (None if field == "seq" else 1)


# --- in the store: one bad batch fails alone ---------------------------------------------


def good(seq: int, host: str = "web-1") -> Batch:
    return Batch(host, "run1", seq, (Sample(1000.0 + seq, {"x": float(seq)}),), 0)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SeriesStore]:
    s = SeriesStore(tmp_path / "hostpulse.sqlite3", retention=3600.0)
    yield s
    s.close()


def test_a_batch_failing_in_the_group_commit_fails_alone(store: SeriesStore) -> None:
    # Built without validation, as a batch that got past the door would be.
    bad_seq = Batch("web-1", "run1", TOO_BIG, (Sample(1.0, {"x": 1.0}),), 0)
    bad_dropped = Batch("web-2", "run1", 5, (Sample(1.0, {"x": 1.0}),), TOO_BIG)
    results = store.store_batches([good(1), bad_seq, good(2), bad_dropped, good(3)])
    assert results[0::2] == [1, 2, 3]
    assert all(isinstance(r, Exception) for r in results[1::2]), results
    assert store.batch_keys() == [("web-1", "run1", 1), ("web-1", "run1", 2), ("web-1", "run1", 3)]
    assert store.sample_count() == 3
    # Nothing of the failed batches is left behind: no host, no run, no latest value.
    assert [h.host for h in store.hosts()] == ["web-1"]
    assert store.hosts()[0].dropped == 0


async def test_the_group_committer_answers_each_batch_its_own_way(store: SeriesStore) -> None:
    committer = GroupCommitter(store, max_batches=100, max_delay=0.05)
    bad = Batch("web-1", "run1", TOO_BIG, (Sample(1.0, {"x": 1.0}),), 0)
    results = await asyncio.gather(
        *(committer.submit(good(s)) for s in range(10)),
        committer.submit(bad),
        *(committer.submit(good(s)) for s in range(10, 20)),
        return_exceptions=True,
    )
    await committer.close()
    assert results[:10] + results[11:] == list(range(20))
    assert isinstance(results[10], Exception)
    assert len(store.batch_keys()) == 20


# --- end to end: honest agents and one bad token at once ---------------------------------


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    running = Service(tmp_path_factory.mktemp("instance")).start()
    yield running
    running.stop()


HEADERS = {"Authorization": f"Bearer {AGENT}"}


async def over_websocket(url: str, batches: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Send every batch (pipelined), then read one answer per batch."""
    answers: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url, headers=HEADERS, max_msg_size=0) as ws:
            for batch in batches:
                await ws.send_str(json.dumps(batch))
            for _ in batches:
                msg = await ws.receive(timeout=60)
                if msg.type != aiohttp.WSMsgType.TEXT:
                    answers.append({"closed": str(msg.type)})
                    break
                answers.append(json.loads(msg.data))
    return answers


async def over_http(url: str, batches: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    answers = []
    async with aiohttp.ClientSession() as session:
        for batch in batches:
            async with session.post(
                url, data=json.dumps(batch), headers={**HEADERS, "Content-Type": "application/json"}
            ) as resp:
                answers.append((resp.status, await resp.json(content_type=None)))
    return answers


async def test_one_bad_token_cannot_fail_honest_batches(service: Service) -> None:
    ws_url = service.url.replace("http", "ws") + "/ws/agent"
    ingest = service.url + "/ingest"
    per_agent = 60
    honest_ws = {
        f"honest-ws-{i}": [wire(f"honest-ws-{i}", "r", s, value=s) for s in range(per_agent)] for i in range(3)
    }
    honest_http = {
        f"honest-http-{i}": [wire(f"honest-http-{i}", "r", s, value=s) for s in range(per_agent // 3)] for i in range(2)
    }
    # The attacker: seq past SQLite's range, and a valid seq with such a drop count.
    bad = [wire("evil", "r", TOO_BIG + k) if k % 2 else wire("evil", "r", k, dropped=TOO_BIG + k) for k in range(150)]
    results = await asyncio.gather(
        *(over_websocket(ws_url, batches) for batches in honest_ws.values()),
        *(over_http(ingest, batches) for batches in honest_http.values()),
        over_websocket(ws_url, bad[:100]),
        over_http(ingest, bad[100:]),
    )
    ws_answers, http_answers = results[:3], results[3:5]
    bad_ws, bad_http = results[5], results[6]

    for host, answers in zip(honest_ws, ws_answers):
        assert sorted(answers, key=lambda a: a.get("ack", -1)) == [{"ack": s, "run": "r"} for s in range(per_agent)], (
            host
        )
    for host, answers in zip(honest_http, http_answers):
        assert answers == [(200, {"ack": s, "run": "r"}) for s in range(per_agent // 3)], host

    def refused(answer: dict[str, Any], sent: dict[str, Any]) -> bool:
        expected_seq = None if sent["seq"] > 2**63 - 1 else sent["seq"]
        return answer.get("error") == "bad_request" and answer.get("seq") == expected_seq

    assert len(bad_ws) == 100  # every one answered; the socket stayed open
    assert all(refused(a, sent) for a, sent in zip(bad_ws, bad[:100])), bad_ws[:3]
    assert all(status == 400 and refused(a, sent) for (status, a), sent in zip(bad_http, bad[100:])), bad_http[:3]

    store = service.store()
    try:
        for host, batches in {**honest_ws, **honest_http}.items():
            assert store.batch_keys(host) == [(host, "r", b["seq"]) for b in batches]
            assert store.sample_count(host) == 2 * len(batches)
        assert store.batch_keys("evil") == []
    finally:
        store.close()
    assert "Traceback" not in service.log.read_text(errors="replace")


async def test_the_largest_drop_counts_add_up_without_overflow(service: Service) -> None:
    """Two runs each at the largest count: the sums in /hosts and /metrics must not overflow."""
    ingest = service.url + "/ingest"
    answers = await over_http(ingest, [wire("many-drops", run, 1, dropped=MAX_INTEGER) for run in ("a", "b", "c")])
    assert [status for status, _ in answers] == [200, 200, 200]
    status, body = service.get("/hosts")
    assert status == 200, body
    (mine,) = [h for h in body["hosts"] if h["host"] == "many-drops"]
    assert mine["dropped"] == pytest.approx(3 * MAX_INTEGER, rel=1e-9)
    status, text = service.get("/metrics")
    assert status == 200
    assert 'hostpulse_agent_dropped_samples_total{host="many-drops"} 2.7670116110564327e+19' in text
