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
import math
from collections import Counter
from dataclasses import dataclass, field

from quart import Quart, current_app

from hostpulse.health import StoreHealth
from hostpulse.instance import open_instance
from hostpulse.series import GroupCommitter, SeriesStore
from hostpulse.settings import Settings
from hostpulse.store import Store

from .jobs import JobRunner

KEY = "hostpulse"
log = logging.getLogger("hostpulse.metrics")


def open_series(settings: Settings) -> SeriesStore:
    """The metrics store, in the service's SQLite file (its tables are ``series_*``)."""
    return SeriesStore(
        settings.db_path,
        settings.store.retention or math.inf,
        max_series_per_host=settings.store.max_series_per_host or None,
        max_series=settings.store.max_series or None,
    )


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
        """Serving starts: the series store open, its retention pruned in the background."""
        series = self.open_series()
        if not math.isinf(series.retention):
            stopping = asyncio.Event()
            self.pruner = (stopping, asyncio.create_task(_prune_forever(series, stopping)))

    async def stop(self) -> None:
        """Serving stops: jobs killed whole and recorded, queued batches committed, the stores
        closed (their connections of this thread; the series store's every connection, once
        no call of the service uses it: the server has finished its requests by now)."""
        if self.pruner is not None:
            (stopping, pruner), self.pruner = self.pruner, None
            stopping.set()
            await pruner  # not cancelled: a prune running in its thread ends before the close
        await self.jobs.shutdown()
        if self.committer is not None:
            _, committer = self.committer
            self.committer = None
            await committer.close()
        if self.series is not None:
            series, self.series = self.series, None
            series.close()
        self.store.close()


async def _prune_forever(series: SeriesStore, stopping: asyncio.Event) -> None:
    """Delete samples older than the retention, every tenth of it (1 s to 1 h), until
    ``stopping`` is set."""
    period = min(3600.0, max(1.0, series.retention / 10))
    while not stopping.is_set():
        try:
            deleted = await asyncio.to_thread(series.prune)
            if deleted:
                log.info("retention: deleted %d samples older than %g s", deleted, series.retention)
        except Exception:  # a locked or full disk: try again next period
            log.exception("retention pruning failed")
        try:
            await asyncio.wait_for(stopping.wait(), period)
        except TimeoutError:
            pass


def open_resources(app: Quart, settings: Settings) -> Resources:
    """Open every resource of ``app`` and tie their start and stop to its serving."""
    store = open_instance(settings)
    resources = Resources(
        settings, store, JobRunner(settings, store), StoreHealth(settings.db_path), open_series(settings)
    )
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
        resources.committer = (loop, GroupCommitter(resources.open_series()))
    return resources.committer[1]
