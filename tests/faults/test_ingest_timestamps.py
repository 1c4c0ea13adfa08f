"""Issue 11, item 6 (timestamps): a sample cannot pin the future or arrive from the past.

One sample with ``ts`` 100 years ahead pinned its host's latest value in ``/hosts`` and
``/metrics`` for good (retention never removes it). SPEC, "Agents and their hosts": a
sample whose ``ts`` is more than the configured skew ahead of the service's clock
(``[store] max_skew``, default 300 s) or older than the retention is refused, with its
``seq``, and the connection kept.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from hostpulse.testing import write_test_config
from tests.agent.live import AGENT, TOKENS, Service

DAY = 24 * 3600.0
RETENTION = 30 * DAY
HEADERS = {"Authorization": f"Bearer {AGENT}"}


def batch(host: str, seq: int, *offsets: float, value: float = 1.0) -> dict[str, Any]:
    """A batch with one sample per offset from now (seconds; positive is the future)."""
    now = time.time()
    return {
        "host": host,
        "run": "r",
        "seq": seq,
        "samples": [{"ts": now + offset, "values": {"x": value}} for offset in offsets],
    }


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    running = Service(tmp_path_factory.mktemp("instance"))
    write_test_config(running.instance, TOKENS, store={"retention": RETENTION})  # max_skew: its default
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    running = Service(tmp_path_factory.mktemp("strict"))
    write_test_config(running.instance, TOKENS, store={"retention": 3600.0, "max_skew": 10.0})
    running.start()
    yield running
    running.stop()


async def send_all(service: Service, transport: str, batches: list[dict[str, Any]]) -> list[tuple[int, dict]]:
    """Each batch's answer: ``(HTTP status, body)``; over the WebSocket the status is 0
    and every answer comes on the one connection."""
    answers = []
    async with aiohttp.ClientSession() as session:
        if transport == "ws":
            url = service.url.replace("http", "ws") + "/ws/agent"
            async with session.ws_connect(url, headers=HEADERS) as ws:
                for body in batches:
                    await ws.send_str(json.dumps(body))
                    msg = await ws.receive(timeout=60)
                    assert msg.type == aiohttp.WSMsgType.TEXT, msg
                    answers.append((0, json.loads(msg.data)))
        else:
            for body in batches:
                async with session.post(
                    service.url + "/ingest",
                    data=json.dumps(body),
                    headers={**HEADERS, "Content-Type": "application/json"},
                ) as resp:
                    answers.append((resp.status, await resp.json(content_type=None)))
    return answers


def stored(service: Service, host: str) -> list[int]:
    store = service.store()
    try:
        return [seq for _, _, seq in store.batch_keys(host)]
    finally:
        store.close()


@pytest.mark.parametrize("transport", ["ws", "http"])
async def test_samples_from_the_future_or_beyond_retention_are_refused(service: Service, transport: str) -> None:
    host = f"clock-{transport}"
    refused_status = 0 if transport == "ws" else 400
    answers = await send_all(
        service,
        transport,
        [
            batch(host, 1, 0.0, value=10.0),  # now: stored
            batch(host, 2, 100 * 365 * DAY, value=99.0),  # a century ahead
            batch(host, 3, 3600.0, value=98.0),  # an hour ahead
            batch(host, 4, -1.0, 400.0, value=97.0),  # one good sample, one too far ahead
            batch(host, 5, -RETENTION - 3600.0, value=96.0),  # older than retention
            batch(host, 6, 120.0, value=11.0),  # ahead, but within 300 s: stored
            batch(host, 7, -RETENTION + 3600.0, value=12.0),  # old, but within retention: stored
        ],
    )
    ok = 0 if transport == "ws" else 200
    assert answers[0] == (ok, {"ack": 1, "run": "r"})
    for (status, body), seq, words in zip(answers[1:5], (2, 3, 4, 5), ("ahead", "ahead", "ahead", "retention")):
        assert status == refused_status, body
        assert body["error"] == "bad_request" and body["seq"] == seq, body
        assert words in body["message"], body
    assert "300" in answers[2][1]["message"]  # the message names the limit
    assert "samples[1]" in answers[3][1]["message"]  # and the sample
    assert answers[5:] == [(ok, {"ack": 6, "run": "r"}), (ok, {"ack": 7, "run": "r"})]
    assert stored(service, host) == [1, 6, 7]
    # The century-ahead value pinned nothing: the latest is the newest honest sample.
    status, body = service.get("/hosts")
    (mine,) = [h for h in body["hosts"] if h["host"] == host]
    assert mine["latest"] == {"x": 11.0}
    status, text = service.get("/metrics")
    assert f'hostpulse_x{{host="{host}"}} 11.0' in text


async def test_the_skew_and_the_retention_come_from_the_config(strict: Service) -> None:
    answers = await send_all(
        strict,
        "http",
        [
            batch("strict-1", 1, 5.0),  # within 10 s
            batch("strict-1", 2, 120.0),  # 120 s ahead: over max_skew = 10
            batch("strict-1", 3, -7200.0),  # two hours old: over retention = 3600
            batch("strict-1", 4, -1800.0),  # half an hour old: kept
        ],
    )
    assert answers[0] == (200, {"ack": 1, "run": "r"})
    assert answers[1][0] == 400 and answers[1][1]["seq"] == 2 and "10" in answers[1][1]["message"]
    assert answers[2][0] == 400 and answers[2][1]["seq"] == 3 and "3600" in answers[2][1]["message"]
    assert answers[3] == (200, {"ack": 4, "run": "r"})
    assert stored(strict, "strict-1") == [1, 4]
