"""Issue 11, item 7: unbounded growth.

Legacy ``POST /`` bodies were kept forever (3 requests stored 84 MB): they now expire
after ``[store] legacy_retention`` (both apps share the store code). The number of series
was unlimited (10 batches of 100,000 new names made every ``/metrics`` scrape 146 MB): a
batch that would pass ``[store] max_series_per_host`` or ``[store] max_series`` is
refused with a clear error and its seq, and the refusals are counted in ``/metrics``.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from hostpulse.samples import Batch, Sample
from hostpulse.series import SeriesStore
from hostpulse.settings import Settings
from hostpulse.testing import write_test_config
from tests.agent.live import AGENT, TOKENS, Service
from tests.support import http

DAY = 24 * 3600.0


# --- legacy POST / -----------------------------------------------------------------------


def plant(instance: Path, *ages: float) -> None:
    """Legacy posts received ``age`` seconds ago, written straight into the service's file."""
    with sqlite3.connect(instance / "hostpulse.sqlite3") as db:
        db.executemany(
            "INSERT INTO legacy_posts (username, received, body) VALUES ('old', ?, ?)",
            [(time.time() - age, f"[{age}]") for age in ages],
        )


def kept(instance: Path) -> list[str]:
    with sqlite3.connect(instance / "hostpulse.sqlite3") as db:
        return [row[0] for row in db.execute("SELECT body FROM legacy_posts ORDER BY id")]


def legacy_post(service: Service, body: bytes) -> tuple[int, bytes]:
    status, _, reply = http("POST", service.url + "/", body=body, headers={"Authorization": f"Bearer {AGENT}"})
    return status, reply


def test_the_default_legacy_retention_is_documented() -> None:
    assert Settings().store.legacy_retention == 30 * DAY
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "legacy_retention = 2592000.0" in readme


@pytest.mark.parametrize("flavour", ["port", "flask"])
def test_legacy_posts_older_than_the_default_retention_go(tmp_path: Path, flavour: str) -> None:
    """Both apps, default config: a post older than 30 days is gone after the next one."""
    if flavour == "port":
        service = Service(tmp_path / "port")
    else:
        service = Service(tmp_path / "flask", factory="compat.flask_app:create_app()", server="gunicorn")
    service.start()
    try:
        plant(service.instance, 31 * DAY, 29 * DAY)
        assert legacy_post(service, b"[1, 2]") == (200, b"request: [1, 2]")
        assert kept(service.instance) == [f"[{29 * DAY}]", "[1, 2]"]
        assert legacy_post(service, b"not a list") == (200, b"request: not a list")  # echoed, not kept
        assert kept(service.instance) == [f"[{29 * DAY}]", "[1, 2]"]
    finally:
        service.stop()


def test_the_legacy_retention_comes_from_the_config(tmp_path: Path) -> None:
    service = Service(tmp_path / "port")
    write_test_config(service.instance, TOKENS, store={"legacy_retention": 3600.0})
    service.start()
    try:
        plant(service.instance, 7200.0, 60.0)
        assert legacy_post(service, b"[3]") == (200, b"request: [3]")
        assert kept(service.instance) == ["[60.0]", "[3]"]
    finally:
        service.stop()


# --- caps on series ----------------------------------------------------------------------

PER_HOST, TOTAL = 5, 8


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    running = Service(tmp_path_factory.mktemp("capped"))
    write_test_config(running.instance, TOKENS, store={"max_series_per_host": PER_HOST, "max_series": TOTAL})
    running.start()
    yield running
    running.stop()


def batch(host: str, seq: int, *names: str) -> dict[str, Any]:
    now = time.time()
    # Two samples with the same names: a name counts once however often it comes.
    return {
        "host": host,
        "run": "r",
        "seq": seq,
        "samples": [{"ts": now - 1, "values": {n: 1.0 for n in names}}, {"ts": now, "values": {n: 2.0 for n in names}}],
    }


async def send(service: Service, transport: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {AGENT}"}
    async with aiohttp.ClientSession() as session:
        if transport == "ws":
            url = service.url.replace("http", "ws") + "/ws/agent"
            async with session.ws_connect(url, headers=headers) as ws:
                await ws.send_str(json.dumps(body))
                msg = await ws.receive(timeout=60)
                return 0, json.loads(msg.data)
        async with session.post(
            service.url + "/ingest", data=json.dumps(body), headers={**headers, "Content-Type": "application/json"}
        ) as resp:
            return resp.status, await resp.json(content_type=None)


def refusals(service: Service) -> dict[str, float]:
    status, text = service.get("/metrics")
    assert status == 200
    return {
        s.labels["limit"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "hostpulse_series_refused_batches_total"
    }


async def test_series_caps_refuse_new_names_with_a_clear_error_and_count_it(capped: Service) -> None:
    a = [f"a{i}" for i in range(1, 7)]
    assert await send(capped, "http", batch("cap-a", 1, *a[:5])) == (200, {"ack": 1, "run": "r"})
    assert refusals(capped) == {"per_host": 0, "total": 0}

    # A sixth name for cap-a: over the per-host cap, over either transport.
    status, body = await send(capped, "http", batch("cap-a", 2, *a))
    assert status == 422 and body["error"] == "unprocessable_entity" and body["seq"] == 2, body
    assert "max_series_per_host" in body["message"] and str(PER_HOST) in body["message"], body
    status, body = await send(capped, "ws", batch("cap-a", 3, a[5]))
    assert body["error"] == "unprocessable_entity" and body["seq"] == 3, body
    # Its known names still go in.
    assert await send(capped, "ws", batch("cap-a", 4, *a[:5])) == (0, {"ack": 4, "run": "r"})

    # Another host fills the total (5 + 3 = 8); then nobody gets a new name.
    assert await send(capped, "http", batch("cap-b", 1, "b1", "b2", "b3")) == (200, {"ack": 1, "run": "r"})
    status, body = await send(capped, "http", batch("cap-c", 1, "c1"))
    assert status == 422 and body["seq"] == 1 and "max_series" in body["message"], body
    status, body = await send(capped, "http", batch("cap-b", 2, "b1", "b4"))
    assert status == 422 and body["seq"] == 2, body
    assert await send(capped, "http", batch("cap-b", 3, "b1")) == (200, {"ack": 3, "run": "r"})

    assert refusals(capped) == {"per_host": 2, "total": 2}
    status, hosts = capped.get("/hosts")
    latest = {h["host"]: sorted(h["latest"]) for h in hosts["hosts"]}
    assert latest == {"cap-a": a[:5], "cap-b": ["b1", "b2", "b3"]}
    store = capped.store()
    try:
        assert [seq for _, _, seq in store.batch_keys("cap-a")] == [1, 4]
        assert store.batch_keys("cap-c") == []
        assert store.sample_count() == 2 * (5 + 5 + 3 + 1)
    finally:
        store.close()
    status, text = capped.get("/metrics")
    assert "hostpulse_a6" not in text and "cap-c" not in text
    assert "\nhostpulse_series 8.0\n" in text


def test_retention_frees_room_under_the_caps(tmp_path: Path) -> None:
    store = SeriesStore(tmp_path / "s.sqlite3", retention=3600.0, max_series_per_host=2, max_series=3)
    try:

        def one(seq: int, host: str, ts: float, *names: str) -> Batch:
            return Batch(host, "r", seq, (Sample(ts, {n: 1.0 for n in names}),))

        assert store.store_batches([one(1, "h1", 1000.0, "x", "y"), one(1, "h2", 5000.0, "z")], now=5000.0) == [1, 1]
        (refused,) = store.store_batches([one(2, "h2", 5000.0, "w")], now=5000.0)
        assert isinstance(refused, Exception)
        store.prune(now=1000.0 + 3601.0)  # h1's series expire
        assert store.store_batches([one(3, "h2", 5000.0, "w"), one(1, "h3", 5000.0, "v")], now=5000.0) == [3, 1]
        (refused,) = store.store_batches([one(2, "h3", 5000.0, "u")], now=5000.0)
        assert isinstance(refused, Exception)
    finally:
        store.close()


def test_a_store_from_before_the_caps_counts_its_series_and_a_lowered_cap_keeps_known_names(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    store = SeriesStore(path, retention=3600.0)
    store.store_batches([Batch("old", "r", 1, (Sample(1000.0, {"a": 1.0, "b": 1.0, "c": 1.0}),))], now=1000.0)
    store.close()
    with sqlite3.connect(path) as db:  # as a file written before the counts existed
        db.execute("DROP TABLE series_counts")
    store = SeriesStore(path, retention=3600.0, max_series_per_host=2, max_series=100)
    try:
        assert store.store_batches([Batch("old", "r", 2, (Sample(1001.0, {"a": 2.0, "c": 2.0}),))], now=1001.0) == [
            2
        ]  # known names: taken, though over the cap
        (refused,) = store.store_batches([Batch("old", "r", 3, (Sample(1002.0, {"a": 3.0, "d": 3.0}),))], now=1002.0)
        assert getattr(refused, "status", None) == 422, refused
        assert "has 3 series and this batch brings 1 new" in str(refused)
        assert store.series("old", "a") == [(1000.0, 1.0), (1001.0, 2.0)]  # nothing of batch 3
    finally:
        store.close()
