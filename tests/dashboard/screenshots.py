"""The README's pictures of the dashboard: ``python -m tests.dashboard.screenshots [FOLDER]``
(default ``docs/``) serves the port on loopback with a few simulated hosts (15 minutes of
history each, web-1 with 30 days), logs in with Debian's Chromium as the tests do and writes
``dashboard-overview.png`` and ``dashboard-host.png``, the window's view of each page."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

from tests.agent.live import AGENT, VIEWER, Service
from tests.dashboard import simulate
from tests.dashboard.browser import Browser
from tests.support import ROOT

HOSTS = {"web-1": 1, "web-2": 2, "db-1": 3, "cache-1": 4, "batch-7": 5, "build-2": 6}
SILENT = {"batch-7": 60.0, "build-2": 400.0}  # stale, down


def silence(service: Service, host: str, seconds: float) -> None:
    """The host made to look silent: its last-seen time moved back in the service's file."""
    with closing(sqlite3.connect(service.instance / "hostpulse.sqlite3", timeout=10)) as db, db:
        db.execute("UPDATE series_hosts SET last_seen = last_seen - ? WHERE host = ?", (seconds, host))


async def shoot(folder: Path, work: Path) -> list[Path]:
    service = Service(work / "instance")
    service.instance.mkdir(parents=True, exist_ok=True)
    service.start()
    browser = Browser(work / "chromium-profile")
    try:
        now = time.time()
        simulate.send_history(service.url, AGENT, "web-1", 1, simulate.history_times(now))
        for host, n in HOSTS.items():
            last = now - SILENT.get(host, 0.0)
            simulate.send_history(service.url, AGENT, host, n, [last - 900 + i * 10 for i in range(91)])
            if host in SILENT:
                silence(service, host, SILENT[host])
        await browser.start()
        await browser.goto(service.url + "/dashboard")
        await browser.wait_for("!document.querySelector('form#login').hidden", "the login form")
        await browser.eval(
            f"(() => {{ document.querySelector('form#login input[name=token]').value = '{VIEWER}';"
            " document.querySelector('form#login').requestSubmit(); return true; })()"
        )
        await browser.wait_for(
            f"document.querySelectorAll('canvas[data-spark][data-points]').length === {5 * len(HOSTS)} && "
            "[...document.querySelectorAll('canvas[data-spark=cpu]')].every(c => +c.dataset.points > 50)",
            "the cards and their sparklines",
            within=20,
        )
        for host, n in HOSTS.items():  # a batch now: the cards' rates from the live feed
            if host not in SILENT:
                simulate.send_now(service.url, AGENT, host, n)
        await asyncio.sleep(1.5)
        shots = [await browser.screenshot(folder / "dashboard-overview.png", whole=False)]
        await browser.eval("document.querySelector('[data-host=\"web-1\"] a').click()")
        await browser.wait_for("document.body.dataset.drawn === '900'", "the host page's charts", within=20)
        await browser.eval("document.querySelector('[data-range=\"86400\"]').click()")
        await browser.wait_for("document.body.dataset.drawn === '86400'", "the 24 h charts", within=20)
        shots.append(await browser.screenshot(folder / "dashboard-host.png", whole=False))
        return shots
    finally:
        await browser.close()
        service.stop()


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs"
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        for shot in asyncio.run(shoot(folder, Path(work))):
            print(shot, shot.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
