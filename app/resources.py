"""The port's resources: opened by ``create_app``, closed when serving stops, and reached
by a typed accessor each (as flaskr's ``get_db()``), never by a string key in a handler.

One object, :class:`Resources`, is the app's ``extensions["hostpulse"]``. The series store
is closed when serving stops and opened again if the same app serves again (a test client
may run an app's lifespan more than once); its group committer is made per event loop
(each test client runs its own) and its retention task runs while the app serves.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass, field

from quart import Quart, current_app

from hostpulse.health import StoreHealth, health_of
from hostpulse.instance import open_instance
from hostpulse.reload import stop_following
from hostpulse.series import GroupCommitter, SeriesStore
from hostpulse.settings import Settings
from hostpulse.store import Store

from .jobs import JobRunner

KEY = "hostpulse"
log = logging.getLogger("hostpulse.metrics")


def open_series(settings: Settings) -> SeriesStore:
    """The metrics store ``[store] url`` names: the service's SQLite file or PostgreSQL (its
    tables are ``series_*``)."""
    return SeriesStore.from_settings(settings)


@dataclass
class Resources:
    settings: Settings
    store: Store
    jobs: JobRunner
    health: StoreHealth
    series: SeriesStore | None
    committer: tuple[asyncio.AbstractEventLoop, GroupCommitter] | None = None
    pruner: tuple[asyncio.Event, asyncio.Task[None]] | None = field(default=None, repr=False)
    # requests in progress and WebSockets open, per token hash, in this worker (app/protocol.py)
    connections: Counter[str] = field(default_factory=Counter, repr=False)
    seed_body: bytes | None = field(default=None, repr=False)  # GET /data/, encoded once (app/views/data.py)

    def open_series(self) -> SeriesStore:
        if self.series is None:
            self.series = open_series(self.settings)
        return self.series

    async def start(self) -> None:
        """Serving starts: the series store open, compacted and pruned in the background."""
        series = self.open_series()
        stopping = asyncio.Event()
        self.pruner = (stopping, asyncio.create_task(_maintain_forever(series, stopping)))

    async def stop(self) -> None:
        """Serving stops: jobs killed whole and recorded, queued batches committed, the stores
        closed (their connections of this thread; the series store's every connection, once
        no call of the service uses it: the server has finished its requests by now)."""
        if self.pruner is not None:
            (stopping, pruner), self.pruner = self.pruner, None
            stopping.set()
            await pruner  # not cancelled: a prune running in its thread ends before the close
        await self.jobs.shutdown()
        stop_following(self.settings)
        if self.committer is not None:
            _, committer = self.committer
            self.committer = None
            await committer.close()
        if self.series is not None:
            series, self.series = self.series, None
            series.close()
        self.store.close()


# Seconds between compactions: an hour of the head is compacted COMPACT_GRACE (300 s) after it
# ends, so a minute's delay more is nothing; each pass is a few transactions of a few hosts.
COMPACT_EVERY = 60.0


async def _maintain_forever(series: SeriesStore, stopping: asyncio.Event) -> None:
    """Compact closed hours of the head every minute, and delete what each tier keeps no
    longer every tenth of the raw retention (1 s to 1 h), until ``stopping`` is set."""
    prune_every = min(3600.0, max(1.0, series.retention / 10))
    next_prune = 0.0
    while not stopping.is_set():
        try:
            await asyncio.to_thread(series.compact)
            if time.monotonic() >= next_prune:
                next_prune = time.monotonic() + prune_every
                deleted = await asyncio.to_thread(series.prune)
                if deleted:
                    log.info("retention: deleted %d samples older than %g s", deleted, series.retention)
        except Exception:  # a locked or full disk: try again next time
            log.exception("series store maintenance failed")
        try:
            await asyncio.wait_for(stopping.wait(), min(COMPACT_EVERY, prune_every))
        except TimeoutError:
            pass


def open_resources(app: Quart, settings: Settings) -> Resources:
    """Open every resource of ``app`` and tie their start and stop to its serving."""
    store = open_instance(settings)
    resources = Resources(settings, store, JobRunner(settings, store), health_of(settings), open_series(settings))
    app.extensions[KEY] = resources
    app.before_serving(resources.start)
    app.after_serving(resources.stop)
    return resources


def resources_of(app: Quart) -> Resources:
    """``app``'s resources, where there is no app context (the ASGI layer)."""
    resources: Resources = app.extensions[KEY]
    return resources


def get_resources() -> Resources:
    return resources_of(current_app)


def get_settings() -> Settings:
    return get_resources().settings


def get_store() -> Store:
    return get_resources().store


def get_jobs() -> JobRunner:
    return get_resources().jobs


def get_health() -> StoreHealth:
    return get_resources().health


def get_series() -> SeriesStore:
    return get_resources().open_series()


def get_committer() -> GroupCommitter:
    """The group committer of this event loop (a test client may run several apps' loops)."""
    resources = get_resources()
    loop = asyncio.get_running_loop()
    if resources.committer is None or resources.committer[0] is not loop:
        series = resources.open_series()
        resources.committer = (loop, GroupCommitter(series, max_batches=series.engine.max_group))
    return resources.committer[1]
