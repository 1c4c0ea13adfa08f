"""The dashboard in a real headless Chromium against the port under Hypercorn on loopback,
fed by agents' batches posted to ``/ingest`` (issue 14, first slice).

Screenshots are kept in the test's tmp folder (``overview.png``, ``host.png``)."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from tests.agent.live import AGENT, VIEWER, Service
from tests.dashboard.browser import Browser, chromium
from tests.support import http


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    chromium()  # fail at once, with the reason, when there is no browser
    made = Service(tmp_path / "instance")
    made.instance.mkdir(parents=True, exist_ok=True)
    made.start()
    yield made
    made.stop()


@pytest.fixture
async def browser(tmp_path: Path, service: Service) -> AsyncIterator[Browser]:
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
}


async def login(browser: Browser, service: Service, token: str) -> None:
    await browser.goto(service.url + "/dashboard")
    await browser.wait_for("!document.querySelector('form#login').hidden", "the login form")
    await browser.eval(
        f"""(() => {{
        document.querySelector('form#login input[name=token]').value = {json.dumps(token)};
        document.querySelector('form#login').requestSubmit();
        return true;
    }})()"""
    )


CARDS = "[...document.querySelectorAll('[data-host]')].map(c => [c.dataset.host, c.dataset.state])"


async def test_the_pages_are_public_and_hold_no_data(service: Service) -> None:
    ingest(service, "secret-host", VALUES)
    for path in ("/dashboard", "/dashboard/hosts/secret-host"):
        status, headers, body = http("GET", service.url + path)
        assert status == 200 and headers["content-type"].startswith("text/html"), (path, status)
        assert b"secret-host" not in body and b'form id="login"' in body
    for name, kind in (("dashboard.js", "javascript"), ("dashboard.css", "text/css")):
        status, headers, _ = http("GET", f"{service.url}/dashboard/static/{name}")
        assert status == 200 and kind in headers["content-type"], (name, status, headers)
    assert http("GET", service.url + "/dashboard/static/..%2F..%2Fresources.py")[0] == 404
    assert http("GET", service.url + "/dashboard/static/nothing.js")[0] == 404


async def test_login_shows_a_card_per_host_with_its_state(service: Service, browser: Browser, tmp_path: Path) -> None:
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
    shot = await browser.screenshot(tmp_path / "overview.png")
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
    assert await browser.eval(f"{CARDS}.length") == 0 or await browser.eval("document.querySelector('#content').hidden")


async def test_a_wrong_token_is_refused_with_an_alert(service: Service, browser: Browser) -> None:
    ingest(service, "web-1", VALUES)
    await login(browser, service, "not-a-token")
    alert = await browser.wait_for("document.querySelector('[role=alert]').textContent", "the alert")
    assert "refused" in alert
    assert await browser.eval("!document.querySelector('form#login').hidden")
    assert await browser.eval("document.querySelector('#content').hidden")
    assert await browser.eval("sessionStorage.getItem('hostpulse.token')") is None
    assert await browser.eval(f"{CARDS}.length") == 0


async def test_a_new_host_shows_within_2_s(service: Service, browser: Browser) -> None:
    ingest(service, "web-1", VALUES)
    await login(browser, service, VIEWER)
    await browser.wait_for("!!document.querySelector('[data-host=\"web-1\"]')", "the first card")
    for n in range(3):
        ingest(service, f"new-{n}", {"cpu_percent": 50.0})
        acked = time.monotonic()
        await browser.wait_for(f"!!document.querySelector('[data-host=\"new-{n}\"][data-state=up]')", "the new card")
        assert time.monotonic() - acked < 2.0


async def test_the_host_page_shows_the_latest_values(service: Service, browser: Browser, tmp_path: Path) -> None:
    ingest(service, "web-1", VALUES)
    await login(browser, service, VIEWER)
    await browser.wait_for("!!document.querySelector('[data-host=\"web-1\"] a')", "the card")
    await browser.eval("document.querySelector('[data-host=\"web-1\"] a').click()")
    await browser.wait_for("location.pathname === '/dashboard/hosts/web-1'", "the host page")
    rows: Any = await browser.wait_for(
        "Object.fromEntries([...document.querySelectorAll('tr[data-series]')]"
        ".map(r => [r.dataset.series, r.cells[1].textContent]))",
        "the series table",
    )
    assert rows == {name: str(value).removesuffix(".0") for name, value in VALUES.items()}
    await browser.screenshot(tmp_path / "host.png")
