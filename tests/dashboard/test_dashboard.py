"""The dashboard in a real headless Chromium against the port under Hypercorn on loopback,
fed by agents' batches posted to ``/ingest`` (issue 14), and its live feed ``WS /ws/live``.

Screenshots of each page are kept in ``tmp/artefacts/dashboard/`` (not in git)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from app.live import Mailbox
from hostpulse.testing import write_test_config
from tests.agent.live import AGENT, TOKENS, VIEWER, Service, eventually
from tests.dashboard import simulate
from tests.dashboard.browser import Browser, chromium
from tests.support import ROOT, http

ARTEFACTS = ROOT / "tmp" / "artefacts" / "dashboard"


@pytest.fixture
def artefacts() -> Path:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    (ARTEFACTS.parent / ".gitignore").write_text("*\n")  # kept out of git whatever .gitignore says
    return ARTEFACTS


def start_service(tmp_path: Path, workers: int = 1) -> Service:
    chromium()  # fail at once, with the reason, when there is no browser
    made = Service(tmp_path / "instance", workers=workers)
    made.instance.mkdir(parents=True, exist_ok=True)
    return made.start()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    made = start_service(tmp_path)
    yield made
    made.stop()


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Browser]:
    made = Browser(tmp_path / "chromium-profile")
    try:
        yield await made.start()
    finally:
        await made.close()


seq = iter(range(1, 1_000_000))


def ingest(service: Service, host: str, values: dict[str, float], silent: float = 0.0) -> None:
    """One agent batch, acknowledged (200) before this returns; with ``silent``, the host
    is then made to look silent for that many seconds (its last-seen time, which is when
    the service received its newest batch, moved back in the service's SQLite file)."""
    batch = {"host": host, "run": "r1", "seq": next(seq), "samples": [{"ts": time.time() - silent, "values": values}]}
    status, _, body = http(
        "POST",
        service.url + "/ingest",
        headers={"Authorization": f"Bearer {AGENT}", "Content-Type": "application/json"},
        body=json.dumps(batch).encode(),
    )
    assert status == 200, body
    if silent:
        with closing(sqlite3.connect(service.instance / "hostpulse.sqlite3", timeout=10)) as db, db:
            db.execute("UPDATE series_hosts SET last_seen = last_seen - ? WHERE host = ?", (silent, host))


VALUES = {
    "cpu_percent": 12.5,
    "virtual_memory.percent": 61.0,
    "virtual_memory.used": 5 * 2**30,
    "virtual_memory.total": 8 * 2**30,
    "disk_usage./.percent": 40.0,
    "disk_usage./var.percent": 83.2,
    "getloadavg.0": 0.5,
    "getloadavg.1": 0.25,
    "getloadavg.2": 0.125,
    "net_io_counters.bytes_recv": 10 * 2**30,
    "net_io_counters.bytes_sent": 2**30,
}


async def login(browser: Browser, service: Service, token: str, path: str = "/dashboard") -> None:
    await browser.goto(service.url + path)
    await browser.wait_for("!document.querySelector('form#login').hidden", "the login form")
    await browser.eval(
        f"""(() => {{
        document.querySelector('form#login input[name=token]').value = {json.dumps(token)};
        document.querySelector('form#login').requestSubmit();
        return true;
    }})()"""
    )


CARDS = "[...document.querySelectorAll('[data-host]')].map(c => [c.dataset.host, c.dataset.state])"


def card(host: str, field: str) -> str:
    return f"document.querySelector('[data-host=\"{host}\"] [data-field={field}]').textContent"


async def test_the_pages_are_public_and_hold_no_data(service: Service) -> None:
    ingest(service, "secret-host", VALUES)
    for path in ("/dashboard", "/dashboard/hosts/secret-host"):
        status, headers, body = http("GET", service.url + path)
        assert status == 200 and headers["content-type"].startswith("text/html"), (path, status)
        assert b"secret-host" not in body and b'form id="login"' in body
    for name, kind in (
        ("dashboard.js", "javascript"),
        ("overview.js", "javascript"),
        ("host.js", "javascript"),
        ("uPlot.iife.min.js", "javascript"),
        ("dashboard.css", "text/css"),
        ("uPlot.min.css", "text/css"),
    ):
        status, headers, _ = http("GET", f"{service.url}/dashboard/static/{name}")
        assert status == 200 and kind in headers["content-type"], (name, status, headers)
    assert http("GET", service.url + "/dashboard/static/..%2F..%2Fresources.py")[0] == 404
    assert http("GET", service.url + "/dashboard/static/nothing.js")[0] == 404
    # the vendored chart library: its licence and version beside it
    static = ROOT / "app" / "static" / "dashboard"
    assert "MIT License" in (static / "uPlot.LICENSE").read_text()
    version = (static / "uPlot.iife.min.js").read_text()[:80]
    assert "(v1.6.32)" in version and "uPlot 1.6.32" in (static / "uPlot.NOTICE").read_text()


async def test_login_shows_a_card_per_host_with_its_state(service: Service, browser: Browser, artefacts: Path) -> None:
    ingest(service, "web-1", VALUES)
    ingest(service, "db-1", VALUES, silent=60)  # stale: three intervals (30 s) without a batch
    ingest(service, "old-1", {"cpu_percent": 1.0}, silent=500)  # down: ten intervals
    ingest(service, "app-1", {"cpu_percent": 3.0})
    await login(browser, service, VIEWER)
    cards = await browser.wait_for(f"{CARDS}.length === 4 && {CARDS}", "four host cards")
    # ordered by state, then name
    assert cards == [["app-1", "up"], ["web-1", "up"], ["db-1", "stale"], ["old-1", "down"]]
    text = await browser.eval("document.querySelector('[data-host=\"web-1\"]').innerText")
    for readable in ("12.5 %", "61.0 % (5.0 GiB of 8.0 GiB)", "83.2 % /var", "0.50 0.25 0.13", "s ago"):
        assert readable in text, (readable, text)
    # the token is in this tab's sessionStorage, never in the URL
    assert await browser.eval("sessionStorage.getItem('hostpulse.token')") == VIEWER
    assert VIEWER not in await browser.eval("location.href")
    assert await browser.eval("document.querySelector('[role=alert]').textContent") == ""
    shot = await browser.screenshot(artefacts / "overview-states.png")
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 1000

    # the name filter
    await browser.eval(
        "(() => { const f = document.querySelector('#filter'); f.value = 'DB'; f.dispatchEvent(new Event('input')); return 1; })()"
    )
    assert await browser.eval(CARDS) == [["db-1", "stale"]]

    # logging out forgets the token
    await browser.eval("document.querySelector('#logout').click()")
    await browser.wait_for("!document.querySelector('form#login').hidden", "the login form after logout")
    assert await browser.eval("sessionStorage.getItem('hostpulse.token')") is None
    assert await browser.eval(f"{CARDS}.length") == 0
    assert await browser.eval("document.querySelector('#content').hidden")
    # and the service never saw the token in a URL (the access log writes every target,
    # a WebSocket's when it ends)
    log = eventually(
        lambda: (text := service.log.read_text(errors="replace")) and "GET /ws/live" in text and text, "log"
    )
    assert VIEWER not in log


@pytest.mark.parametrize("page", ["/dashboard", "/dashboard/hosts/web-1"])
async def test_a_wrong_token_is_refused_with_an_alert(service: Service, browser: Browser, page: str) -> None:
    ingest(service, "web-1", VALUES)
    await login(browser, service, "not-a-token", page)
    alert = await browser.wait_for("document.querySelector('[role=alert]').textContent", "the alert")
    assert "refused" in alert
    assert await browser.eval("!document.querySelector('form#login').hidden")
    assert await browser.eval("document.querySelector('#content').hidden")
    assert await browser.eval("sessionStorage.getItem('hostpulse.token')") is None
    assert await browser.eval(f"{CARDS}.length") == 0
    # an agent's token is no viewer's
    await login(browser, service, AGENT, page)
    alert = await browser.wait_for(
        "document.querySelector('[role=alert]').textContent.includes('viewer') && "
        "document.querySelector('[role=alert]').textContent",
        "the alert for an agent token",
    )
    assert "may not read hosts" in alert


async def test_new_batches_show_within_2_s_over_the_live_feed(tmp_path: Path, browser: Browser) -> None:
    """Two workers: a batch is acknowledged by either, the browser's socket held by one."""
    service = start_service(tmp_path, workers=2)
    try:
        now = time.time()
        simulate.send_history(service.url, AGENT, "web-1", 1, [now - 900 + i * 10 for i in range(89)])
        await login(browser, service, VIEWER)
        await browser.wait_for("!!document.querySelector('[data-host=\"web-1\"]')", "the first card")
        # the sparklines: 15 minutes of history read once, then grown from the feed
        points = await browser.wait_for(
            "[...document.querySelectorAll('[data-host=\"web-1\"] canvas[data-spark]')]"
            ".every(c => +c.dataset.points >= 60) && "
            "[...document.querySelectorAll('[data-host=\"web-1\"] canvas[data-spark]')].map(c => +c.dataset.points)",
            "the sparklines' history",
        )
        assert len(points) == 5, points
        for n in range(6):
            value = 20.0 + n
            ingest(service, "web-1", {**VALUES, "cpu_percent": value})
            ingest(service, f"new-{n}", {"cpu_percent": 50.0})
            acked = time.monotonic()
            await browser.wait_for(f"{card('web-1', 'cpu')} === '{value:.1f} %'", "the new value", within=5)
            await browser.wait_for(f"!!document.querySelector('[data-host=\"new-{n}\"][data-state=up]')", "the card")
            assert time.monotonic() - acked < 2.0, n
        # the network rate: the change of two consecutive counters over the change of last_seen
        ingest(
            service,
            "web-1",
            {**VALUES, "net_io_counters.bytes_recv": VALUES["net_io_counters.bytes_recv"] + 64 * 2**20},
        )
        # (64 MiB between two batches at most 2 s apart: MiB/s or GiB/s received, nothing sent)
        rate = await browser.wait_for(
            f"/^↓ [0-9.]+ [MG]iB\\/s ↑ 0 B\\/s$/.test({card('web-1', 'network')}) && {card('web-1', 'network')}",
            "the network rate",
        )
        assert rate.startswith("↓ ") and rate.endswith("iB/s ↑ 0 B/s"), rate
        # all of it came over the live feed: the overview never polls GET /hosts
        reads = await browser.eval("performance.getEntriesByType('resource').map(e => new URL(e.name).pathname)")
        assert "/hosts" not in reads, reads
        assert sum(1 for r in reads if r.startswith("/hosts/web-1/series")) == 6, reads  # history, once
    finally:
        service.stop()


RANGES = {"900": "15 min", "3600": "1 h", "86400": "24 h", "604800": "7 d", "2592000": "30 d"}
GROUPS = ["cpu", "memory", "swap", "disk:/", "disk:/var", "disk-io", "network", "load"]
# Opaque pixels in a chart's plotting area: its series' lines (the grid is 7 % black).
DRAWN = """(() => { const out = {};
  for (const [id, u] of Object.entries(window.hostpulse.charts)) {
    const b = u.bbox, d = u.ctx.getImageData(b.left, b.top, b.width, b.height).data;
    let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 128) n++;
    out[id] = [n, +u.root.closest('.chart').dataset.points];
  } return out; })()"""


async def test_the_host_page_draws_its_charts_for_each_range(
    service: Service, browser: Browser, artefacts: Path
) -> None:
    simulate.send_history(service.url, AGENT, "web-1", 1, simulate.history_times(time.time()))
    simulate.send_now(service.url, AGENT, "web-1", 1)
    await login(browser, service, VIEWER)
    await browser.wait_for("!!document.querySelector('[data-host=\"web-1\"] a')", "the card")
    await browser.eval("document.querySelector('[data-host=\"web-1\"] a').click()")
    await browser.wait_for("location.pathname === '/dashboard/hosts/web-1'", "the host page")
    facts = await browser.wait_for(
        "document.querySelector('[data-fact=dropped-samples]') && Object.fromEntries("
        "[...document.querySelectorAll('#facts dd')].map(d => [d.dataset.fact, d.textContent]))",
        "the agent's facts",
    )
    assert facts["dropped-samples"] == "0" and facts["state"] == "up" and "s ago" in facts["last-seen"], facts
    # the facts follow the live feed (this host's every series)
    simulate.post(service.url, AGENT, "web-1", [{"ts": time.time(), "values": {"pids": 4321}}])
    acked = time.monotonic()
    await browser.wait_for("document.querySelector('[data-fact=processes]').textContent === '4321'", "the new fact")
    assert time.monotonic() - acked < 2.0
    for range_, label in RANGES.items():
        await browser.eval(
            f"[...document.querySelectorAll('#ranges button')].find(b => b.textContent === '{label}').click()"
        )
        await browser.wait_for(f"document.body.dataset.drawn === '{range_}'", f"the charts of {label}", within=20)
        drawn = await browser.eval(DRAWN)
        assert sorted(drawn) == sorted(GROUPS), drawn
        for group, (pixels, points) in drawn.items():
            assert points >= 2 and pixels > 50, (label, group, pixels, points)
        await browser.screenshot(artefacts / f"host-{range_}.png")
    # counters are drawn as rates (bytes per second), not as their totals of ~10 GiB
    peak = await browser.eval("Math.max(...window.hostpulse.charts.network.data[1].filter(v => v !== null))")
    assert 10_000 < peak < 10 * 2**20, peak
    # hover values, in units a person reads
    await browser.eval("document.querySelector('[data-range=\"900\"]').click()")
    await browser.wait_for("document.body.dataset.drawn === '900'", "the 15 min charts")
    box = await browser.eval(
        "(() => { const r = window.hostpulse.charts.cpu.over.getBoundingClientRect(); "
        "window.scrollTo(0, 0); return [r.left + r.width * 0.8, r.top + r.height / 2]; })()"
    )
    await browser.hover(box[0], box[1])
    legend = await browser.wait_for(
        "(() => { const v = [...window.hostpulse.charts.cpu.root.querySelectorAll('.u-legend .u-value')]"
        ".map(e => e.textContent); return v.length > 1 && v[1].endsWith(' %') && v; })()",
        "the hover values",
    )
    assert legend[1].endswith(" %"), legend
    await browser.screenshot(artefacts / "host.png")


async def test_100_hosts_render_in_under_1_s_within_300_kib(
    service: Service, browser: Browser, artefacts: Path
) -> None:
    for n in range(100):
        simulate.send_now(service.url, AGENT, f"sim-{n:03d}", n)
    await browser.send("Network.enable")
    await login(browser, service, VIEWER)
    count = await browser.wait_for(
        "window.hostpulse.timing.cardsShownAt && document.querySelectorAll('[data-host]').length", "100 cards"
    )
    assert count == 100
    # transferred until the cards showed, as DevTools saw it: every response (headers and
    # body, as sent) and every WebSocket frame received
    events = list(browser.events)
    wire = sum(e["params"]["encodedDataLength"] for e in events if e["method"] == "Network.loadingFinished")
    frames = sum(
        len(e["params"]["response"]["payloadData"].encode())
        for e in events
        if e["method"] == "Network.webSocketFrameReceived"
    )
    timing = await browser.eval(
        "(() => { const t = window.hostpulse.timing, shown = t.cardsShownAt;"
        " const all = performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'));"
        " return {renderMs: t.renderMs, cards: t.cards,"
        "  bodies: all.filter(e => e.responseEnd <= shown).reduce((n, e) => n + e.encodedBodySize, 0)}; })()"
    )
    print(f"100 hosts: render {timing['renderMs']:.0f} ms, wire {wire + frames} B ({frames} B of frames)", timing)
    assert timing["cards"] == 100 and timing["renderMs"] < 1000, timing
    assert wire + frames <= 300 * 1024, (wire, frames)
    assert timing["bodies"] <= 300 * 1024, timing
    texts = await browser.eval("[...document.querySelectorAll('[data-host] [data-field=cpu]')].map(e => e.textContent)")
    assert all(t.endswith(" %") for t in texts), texts
    await browser.screenshot(artefacts / "overview-100.png")


async def live_answer(url: str, first: object | None, headers: dict[str, str] | None = None) -> tuple[Any, int | None]:
    """The first message ``/ws/live`` sends and its close code (``None``: still open)."""
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url.replace("http", "ws", 1) + "/ws/live", headers=headers) as ws:
            if first is not None:
                await ws.send_str(first if isinstance(first, str) else json.dumps(first))
            msg = await ws.receive(timeout=5)
            answer = json.loads(msg.data)
            if "error" in answer:
                closing = await ws.receive(timeout=5)
                assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), closing
            return answer, ws.close_code


async def test_ws_live_refuses_wrong_absent_and_agent_tokens(service: Service) -> None:
    ingest(service, "web-1", VALUES)
    for first, error in (
        ({"token": "not-a-token"}, "unauthorized"),
        ({}, "unauthorized"),
        ({"token": ""}, "unauthorized"),
        ("not json", "bad_request"),
        ({"token": AGENT}, "forbidden"),
    ):
        answer, code = await live_answer(service.url, first)
        assert answer["error"] == error and answer["message"], (first, answer)
        assert code in (1008, 1003), (first, code)
    # a client that can send Authorization: checked on the handshake
    async with aiohttp.ClientSession() as session:
        for token, status in (("not-a-token", 401), (AGENT, 403)):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(
                    service.url.replace("http", "ws", 1) + "/ws/live", headers={"Authorization": f"Bearer {token}"}
                )
            assert refused.value.status == status
    answer, code = await live_answer(service.url, None, {"Authorization": f"Bearer {VIEWER}"})
    assert answer == {"type": "hello", "user": "viewer"} and code is None
    # a viewer's first message: hello, then every host with the cards' series
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(service.url.replace("http", "ws", 1) + "/ws/live") as ws:
            await ws.send_json({"token": VIEWER})
            assert (await ws.receive_json(timeout=5))["type"] == "hello"
            hosts = await ws.receive_json(timeout=5)
            assert hosts["type"] == "hosts" and [h["host"] for h in hosts["hosts"]] == ["web-1"]
            assert hosts["hosts"][0]["latest"]["cpu_percent"] == 12.5 and hosts["hosts"][0]["state"] == "up"
    assert http("GET", service.url + "/ws/live")[0] == 426


async def test_live_feeds_count_against_their_tokens_cap(tmp_path: Path) -> None:
    # A browser's token comes in the first message, not the handshake: it is counted all the
    # same ([limits] connections_per_token), and given back when the socket closes.
    made = Service(tmp_path / "instance")
    write_test_config(made.instance, TOKENS, limits={"connections_per_token": 2})
    made.start()
    url = made.url.replace("http", "ws", 1) + "/ws/live"
    try:
        async with aiohttp.ClientSession() as session:
            held = []
            for _ in range(2):
                ws = await session.ws_connect(url)
                await ws.send_json({"token": VIEWER})
                assert (await ws.receive_json(timeout=5))["type"] == "hello"
                held.append(ws)
            answer, code = await live_answer(made.url, {"token": VIEWER})
            assert answer["error"] == "too_many_requests" and code == 1013, (answer, code)
            await held.pop().close()
            answer, code = await eventually_async(lambda: live_answer(made.url, {"token": VIEWER}))
            assert answer == {"type": "hello", "user": "viewer"} and code is None
            for ws in held:
                await ws.close()
    finally:
        made.stop()


async def eventually_async(call: Any) -> Any:
    """``call()``'s answer once it is not a refusal, or its last within 10 s (a closed
    socket's slot comes back when the server has seen the close)."""
    deadline = time.monotonic() + 10.0
    while True:
        answer = await call()
        if "error" not in answer[0] or time.monotonic() > deadline:
            return answer
        await asyncio.sleep(0.1)


async def test_a_mailbox_keeps_the_newest_update_per_host() -> None:
    """A browser too slow for the feed skips updates: its mailbox never grows past one
    entry per host, and what it reads next is each host's newest."""
    box = Mailbox()
    for n in range(1000):
        box.put([{"host": "a", "n": n}, {"host": f"b{n % 3}", "n": n}])
    entries = await asyncio.wait_for(box.take(), 1)
    assert sorted((e["host"], e["n"]) for e in entries) == [("a", 999), ("b0", 999), ("b1", 997), ("b2", 998)]
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(box.take(), 0.1)
