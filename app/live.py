"""The dashboard's live feed (``WS /ws/live``): what changed in the hosts' latest values,
pushed to every browser connected to this worker.

Hypercorn runs several workers, and a batch may be acknowledged by another worker than
the one holding a browser's socket, so the feed does not hook the ingest path. One task
per worker, running only while it has subscribers, reads the store's latest values every
:data:`POLL_INTERVAL` seconds and pushes the hosts that changed (a batch, a new state, a
drop count). Each connection has a bounded mailbox, the newest entry per host: a slow
browser skips the updates it had no time for and never holds the poll or anyone back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable
from typing import Any

from quart import Quart

from hostpulse.hoststate import host_state
from hostpulse.series import HostInfo

from .resources import resources_of

POLL_INTERVAL = 0.5  # seconds: with the browser's own work, a batch shows within 2 s of its ack
KEY = "hostpulse.live"
log = logging.getLogger("hostpulse.live")

# What a host card shows (the overview's page asks for no more): a host's full latest values
# are ~80 series, 3-4 KB; the cards' ~20 keep 100 hosts well under the page's 300 KiB.
CARD_SERIES = re.compile(
    r"cpu_percent|virtual_memory\.(percent|used|total)|swap_memory\.percent|disk_usage\..+\.percent"
    r"|net_io_counters\.bytes_(sent|recv)|disk_io_counters\.(read|write)_bytes|getloadavg\.[012]"
)

Entry = dict[str, Any]


def host_entry(h: HostInfo, now: float, full: bool = False) -> Entry:
    """A host as ``GET /hosts`` gives it; ``latest`` trimmed to the cards' series unless ``full``."""
    return h.as_json(now, None if full else {k: v for k, v in h.latest.items() if CARD_SERIES.fullmatch(k)})


class Mailbox:
    """One connection's pending updates: at most one entry per host, the newest."""

    def __init__(self, only: frozenset[str] | None = None) -> None:
        self.only = only  # None: every host, the cards' series; else these hosts, every series
        self.pending: dict[str, Entry] = {}
        self.ready = asyncio.Event()

    def offer(self, found: list[HostInfo], now: float, cards: list[Entry] | None = None) -> None:
        """These hosts' entries as this connection wants them (``cards``: made already)."""
        if self.only is None:
            self.put(cards if cards is not None else [host_entry(h, now) for h in found])
        else:
            self.put([host_entry(h, now, full=True) for h in found if h.host in self.only])

    def put(self, entries: list[Entry]) -> None:
        for entry in entries:
            self.pending.pop(entry["host"], None)  # re-inserted last: updates keep their order
            self.pending[entry["host"]] = entry
        if self.pending:
            self.ready.set()

    async def take(self) -> list[Entry]:
        """Everything pending, once there is something."""
        await self.ready.wait()
        self.ready.clear()
        entries, self.pending = list(self.pending.values()), {}
        return entries


class Hub:
    """The worker's one poller and its subscribers."""

    def __init__(self, read: Callable[[], list[HostInfo]], interval: float = POLL_INTERVAL) -> None:
        self.read = read  # blocking: run in a thread
        self.interval = interval
        self.mailboxes: set[Mailbox] = set()
        self.hosts: dict[str, HostInfo] = {}  # as last read, for a newcomer's first snapshot
        self.seen: dict[str, tuple[float, str, int]] = {}
        self.task: asyncio.Task[None] | None = None
        self.failing = False

    def subscribe(self, only: frozenset[str] | None = None) -> Mailbox:
        """A mailbox that gets its hosts now (once the poller has read them), then changes."""
        box = Mailbox(only)
        self.mailboxes.add(box)
        if self.hosts:
            box.offer(list(self.hosts.values()), time.time())
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._run())
        return box

    def unsubscribe(self, box: Mailbox) -> None:
        self.mailboxes.discard(box)

    async def _run(self) -> None:
        """Poll while anyone listens; the next subscriber starts a new task."""
        while self.mailboxes:
            await self.poll()
            await asyncio.sleep(self.interval)
        self.hosts.clear()  # stale once nobody polls: a newcomer waits for a fresh read
        self.seen.clear()

    async def poll(self) -> None:
        """Read the latest values once and hand what changed to every mailbox."""
        try:
            found = await asyncio.to_thread(self.read)
        except Exception:  # the store busy or closing: try again next time, logged once
            if not self.failing:
                log.exception("the live feed could not read the hosts")
            self.failing = True
            return
        self.failing = False
        now = time.time()
        changed: list[HostInfo] = []
        for h in found:
            mark = (h.last_seen, host_state(now, h.last_seen, h.interval, h.previous_seen, h.goodbye), h.dropped)
            if self.seen.get(h.host) != mark:
                self.seen[h.host] = mark
                changed.append(h)
        self.hosts = {h.host: h for h in found}
        if not changed:
            return
        cards = [host_entry(h, now) for h in changed]
        for box in self.mailboxes:
            box.offer(changed, now, cards)

    async def close(self) -> None:
        """Serving stops: the poller ends before the store closes."""
        self.mailboxes.clear()
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


def install(app: Quart) -> Hub:
    """``app``'s hub, stopped when serving stops."""
    hub = Hub(lambda: resources_of(app).open_series().hosts())  # get_series(), outside an app context
    app.extensions[KEY] = hub
    app.after_serving(hub.close)
    return hub


def hub_of(app: Quart) -> Hub:
    hub: Hub = app.extensions[KEY]
    return hub
