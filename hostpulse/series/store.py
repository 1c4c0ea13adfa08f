"""The series store: agents' batches written once and on disk before the ack, queried, pruned, capped.

``synchronous=FULL`` (``hostpulse/sqlite.py``) because an acknowledgement promises the
batch is on disk: with WAL and ``NORMAL`` a power cut can lose the last commits.

Exactly-once: ``series_batches`` has the primary key ``(host, run, seq)``; a batch whose
key is already there is acknowledged again but its samples are not inserted twice.

Many batches, one transaction: :meth:`SeriesStore.store_batches` writes them with one
fsync (``committer.py`` gathers them from an event loop). Each batch is written inside its
own SAVEPOINT: a batch that fails (a cap on series, or anything unforeseen) is rolled back
alone and gets its own error, while the others of the transaction commit (issue 11, item 1:
one bad batch used to fail every honest batch beside it).

Caps: a series is a ``(host, name)`` with a latest value; ``series_counts`` keeps how many
each host has (and how many in all; a trigger counts each new one, pruning counts again),
so that a batch bringing new names is refused when it would pass ``max_series_per_host`` or
``max_series`` (``series_refused`` counts those refusals for ``/metrics``).

Methods are synchronous; the async port calls them in a worker thread, and each thread
has its own connection.
"""

from __future__ import annotations

import math
import os
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hostpulse import sqlite
from hostpulse.errorcodes import UNPROCESSABLE_ENTITY
from hostpulse.samples import Batch, BatchError
from hostpulse.series import exposition, schema

try:  # Unix: writers of several processes queue on a file lock
    import fcntl
except ImportError:  # pragma: no cover - Windows: SQLite's busy timeout alone
    fcntl = None  # type: ignore[assignment]

MIN_STEP = 0.001  # seconds: the smallest step of a series query

# Latest value of a series: only moves forward in time (a re-sent old batch does not win).
# A new series is counted in series_counts by the trigger series_latest_counted.
_UPSERT_LATEST = """
INSERT INTO series_latest (host, name, ts, value) VALUES (?, ?, ?, ?)
ON CONFLICT (host, name) DO UPDATE SET ts = excluded.ts, value = excluded.value
WHERE excluded.ts >= series_latest.ts
"""
# The newest batch also says the host's interval (NULL: an older agent; the state then
# uses the gap between the last two batches) and whether it was a goodbye.
_UPSERT_HOST = """
INSERT INTO series_hosts (host, last_seen, interval, goodbye) VALUES (?, ?, ?, ?)
ON CONFLICT (host) DO UPDATE SET
    previous_seen = series_hosts.last_seen,
    last_seen = max(series_hosts.last_seen, excluded.last_seen),
    interval = excluded.interval,
    goodbye = excluded.goodbye
"""
# An agent's drop counter as its newest batch reports it: a re-sent older batch does
# not change it (the agent may lower it, when a batch it dropped proves to be stored).
_UPSERT_RUN = """
INSERT INTO series_runs (host, run, dropped, seq) VALUES (?, ?, ?, ?)
ON CONFLICT (host, run) DO UPDATE SET dropped = excluded.dropped, seq = excluded.seq
WHERE excluded.seq >= series_runs.seq
"""


class SeriesLimitError(BatchError):
    """A batch that would pass a cap on series: refused whole (422), nothing of it stored."""

    def __init__(self, message: str, seq: int, cap: str) -> None:
        super().__init__(message, seq, UNPROCESSABLE_ENTITY, 422)
        self.cap = cap  # one of schema.CAPS


@dataclass(frozen=True)
class HostInfo:
    host: str
    last_seen: float
    latest: dict[str, float]
    dropped: int
    interval: float | None = None  # as its agent last said
    previous_seen: float | None = None  # the batch before the last
    goodbye: bool = False  # its last batch was a goodbye


class SeriesStore:
    """Samples per host and series name, with the batches that brought them."""

    def __init__(
        self,
        path: Path,
        retention: float,
        max_series_per_host: int | None = None,
        max_series: int | None = None,
    ) -> None:
        """``max_series_per_host`` and ``max_series`` cap the series a host, and all hosts
        together, may have (``None``: no cap)."""
        if not retention > 0:
            raise ValueError("retention must be a positive number of seconds (math.inf keeps all)")
        self.path = Path(path)
        self.retention = float(retention)
        self.max_series_per_host = max_series_per_host
        self.max_series = max_series
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._writer = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer_fd: int | None = (
            os.open(self.path.with_name(self.path.name + ".series-lock"), os.O_RDWR | os.O_CREAT, 0o600)
            if fcntl is not None
            else None
        )
        with self._transaction() as db:
            schema.apply(db)

    # -- connections ------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite.connect(self.path)
            # A statement inside a batch's SAVEPOINT keeps a statement journal: in memory,
            # not a temporary file (that file cost 40% more CPU per batch here).
            db.execute("PRAGMA temp_store=MEMORY")
            self._local.db = db
            with self._lock:
                self._all.append(db)
        return db

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """One writer at a time, across threads and worker processes, handed over at once.

        SQLite's own busy handler makes a waiting writer sleep (1, 2, 5 ... 100 ms) and
        poll: with two Hypercorn workers committing all the time, that sleeping was most
        of the acknowledgement latency. A blocking ``flock`` wakes the next writer as soon
        as the lock is free.
        """
        with self._writer:
            if self._writer_fd is None:
                yield
                return
            fcntl.flock(self._writer_fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._writer_fd, fcntl.LOCK_UN)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE``: take the write lock up front (no upgrade deadlock)."""
        with self._writing(), sqlite.immediate(self._connect()) as db:
            yield db

    def close(self) -> None:
        """Close every thread's connection (at shutdown, once no call is running)."""
        with self._lock:
            connections, self._all = self._all, []
        for db in connections:
            db.close()
        self._local = threading.local()
        if self._writer_fd is not None:
            os.close(self._writer_fd)
            self._writer_fd = None

    # -- writing ----------------------------------------------------------------------

    def store_batches(self, batches: Sequence[Batch], now: float | None = None) -> list[int | Exception]:
        """Store the batches in one transaction; for each, the seq to acknowledge or its error.

        Call only with validated batches. A batch whose ``(host, run, seq)`` is already
        stored (or appears twice in ``batches``) is acknowledged without storing its
        samples again. Each batch has its own SAVEPOINT: one that fails (a
        :class:`SeriesLimitError`, or any error while writing it) is rolled back alone and
        its place in the result holds the exception, while the others commit. When this
        returns, the commit is on disk; when it raises (the transaction itself failed),
        nothing was stored.
        """
        received = time.time() if now is None else now
        results: list[int | Exception] = []
        with self._transaction() as db:
            for batch in batches:
                db.execute("SAVEPOINT batch")
                try:
                    self._store_one(db, batch, received)
                except Exception as exc:
                    if not db.in_transaction:  # SQLite rolled the whole transaction back
                        raise
                    db.execute("ROLLBACK TO batch")
                    db.execute("RELEASE batch")
                    if isinstance(exc, SeriesLimitError):
                        db.execute(
                            "INSERT INTO series_refused (cap, batches) VALUES (?, 1)"
                            " ON CONFLICT (cap) DO UPDATE SET batches = batches + 1",
                            (exc.cap,),
                        )
                    results.append(exc)
                else:
                    db.execute("RELEASE batch")
                    results.append(batch.seq)
        return results

    def _store_one(self, db: sqlite3.Connection, batch: Batch, received: float) -> None:
        inserted = db.execute(
            "INSERT OR IGNORE INTO series_batches (host, run, seq, received, samples) VALUES (?, ?, ?, ?, ?)",
            (batch.host, batch.run, batch.seq, received, len(batch.samples)),
        ).rowcount
        db.execute(_UPSERT_RUN, (batch.host, batch.run, batch.dropped, batch.seq))
        db.execute(_UPSERT_HOST, (batch.host, received, batch.interval, int(batch.goodbye)))
        if not inserted:
            return
        latest: dict[str, tuple[float, float]] = {}
        for sample in batch.samples:
            for name, value in sample.values.items():
                if name not in latest or sample.ts >= latest[name][0]:
                    latest[name] = (sample.ts, value)
        capped = self.max_series_per_host is not None or self.max_series is not None
        before = self._series_of(db, batch.host) if capped else 0
        db.executemany(
            _UPSERT_LATEST,
            [(batch.host, name, ts, value) for name, (ts, value) in latest.items()],
        )
        if capped:
            self._check_caps(db, batch, before)
        rows = [
            (batch.host, name, sample.ts, value) for sample in batch.samples for name, value in sample.values.items()
        ]
        db.executemany("INSERT INTO series_samples (host, name, ts, value) VALUES (?, ?, ?, ?)", rows)

    @staticmethod
    def _series_of(db: sqlite3.Connection, host: str) -> int:
        """Series the host has (``schema.ALL_HOSTS``: all hosts), as the trigger counts them."""
        row = db.execute("SELECT n FROM series_counts WHERE host = ?", (host,)).fetchone()
        return int(row[0]) if row else 0

    def _check_caps(self, db: sqlite3.Connection, batch: Batch, before: int) -> None:
        """:class:`SeriesLimitError` when the batch brought new series (counted by the
        trigger) past a cap; the caller rolls the batch back. A batch of known names
        always passes, even when a lowered cap is below what a host already has."""
        after = self._series_of(db, batch.host)
        new = after - before
        if new <= 0:
            return
        cap = self.max_series_per_host
        if cap is not None and after > cap:
            raise SeriesLimitError(
                f"host {batch.host!r} has {before} series and this batch brings {new} new;"
                f" the limit is {cap} per host ([store] max_series_per_host)",
                batch.seq,
                "per_host",
            )
        cap = self.max_series
        if cap is not None:
            total = self._series_of(db, schema.ALL_HOSTS)
            if total > cap:
                raise SeriesLimitError(
                    f"the service holds {total - new} series and this batch brings {new} new;"
                    f" the limit is {cap} for all hosts together ([store] max_series)",
                    batch.seq,
                    "total",
                )

    def prune(self, now: float | None = None) -> int:
        """Forget samples, batches and hosts older than the retention; return samples deleted."""
        if math.isinf(self.retention):
            return 0
        cutoff = (time.time() if now is None else now) - self.retention
        with self._transaction() as db:
            deleted = db.execute("DELETE FROM series_samples WHERE ts < ?", (cutoff,)).rowcount
            db.execute("DELETE FROM series_batches WHERE received < ?", (cutoff,))
            forgotten = db.execute("DELETE FROM series_latest WHERE ts < ?", (cutoff,)).rowcount
            gone = "SELECT host FROM series_hosts WHERE last_seen < ?"
            db.execute(f"DELETE FROM series_runs WHERE host IN ({gone})", (cutoff,))
            forgotten += db.execute(f"DELETE FROM series_latest WHERE host IN ({gone})", (cutoff,)).rowcount
            db.execute("DELETE FROM series_hosts WHERE last_seen < ?", (cutoff,))
            if forgotten:  # series gone: room under the caps again
                schema.recount(db)
        return deleted

    # -- reading ----------------------------------------------------------------------

    def hosts(self) -> list[HostInfo]:
        """Every host with its last-seen time (the service's clock), latest values and drops."""
        db = self._connect()
        latest: dict[str, dict[str, float]] = defaultdict(dict)
        for host, name, value in db.execute("SELECT host, name, value FROM series_latest ORDER BY host, name"):
            latest[host][name] = value
        # total(), a float, where sum() would overflow: each run may report up to 2**63-1.
        dropped = dict(db.execute("SELECT host, total(dropped) FROM series_runs GROUP BY host"))
        return [
            HostInfo(host, last_seen, latest.get(host, {}), int(dropped.get(host, 0)), interval, previous, bool(bye))
            for host, last_seen, interval, previous, bye in db.execute(
                "SELECT host, last_seen, interval, previous_seen, goodbye FROM series_hosts ORDER BY host"
            )
        ]

    def has_host(self, host: str) -> bool:
        """Whether any batch of the host is kept (a query for another host is a 404)."""
        db = self._connect()
        return db.execute("SELECT 1 FROM series_hosts WHERE host = ?", (host,)).fetchone() is not None

    def series(
        self,
        host: str,
        name: str,
        since: float | None = None,
        until: float | None = None,
        step: float | None = None,
        limit: int | None = None,
    ) -> list[tuple[float, float]]:
        """Points ``(ts, value)`` with ``since <= ts <= until``, oldest first.

        With ``step``, one point per step-aligned bucket that has samples: the bucket's
        start and the mean of its values (downsampling for long ranges).
        ``limit`` caps the number of points (the oldest are kept).
        """
        if step is not None and not step >= MIN_STEP:
            # Smaller steps saturate CAST(ts / step AS INTEGER): wrong bucket times.
            raise ValueError("step must be at least 0.001 seconds (1 ms)")
        low = -math.inf if since is None else since
        high = math.inf if until is None else until
        cap = -1 if limit is None else limit
        db = self._connect()
        if step is None:
            rows = db.execute(
                "SELECT ts, value FROM series_samples WHERE host = ? AND name = ?"
                " AND ts >= ? AND ts <= ? ORDER BY ts LIMIT ?",
                (host, name, low, high, cap),
            )
        else:
            # ts >= 0 (validated), so CAST truncation is the floor.
            rows = db.execute(
                "SELECT CAST(ts / ? AS INTEGER) * ? AS bucket, avg(value) FROM series_samples"
                " WHERE host = ? AND name = ? AND ts >= ? AND ts <= ?"
                " GROUP BY CAST(ts / ? AS INTEGER) ORDER BY bucket LIMIT ?",
                (step, step, host, name, low, high, step, cap),
            )
        return [(float(ts), float(value)) for ts, value in rows]

    def series_total(self) -> int:
        """Series of all hosts together, as the caps count them."""
        return self._series_of(self._connect(), schema.ALL_HOSTS)

    def refused(self) -> dict[str, int]:
        """Batches refused so far by each cap (``schema.CAPS``; a cap never hit is 0)."""
        counted = dict(self._connect().execute("SELECT cap, batches FROM series_refused"))
        return {cap: int(counted.get(cap, 0)) for cap in schema.CAPS}

    def batch_keys(self, host: str | None = None) -> list[tuple[str, str, int]]:
        """Stored ``(host, run, seq)`` keys (fault tests count them against what agents sent)."""
        db = self._connect()
        if host is None:
            rows = db.execute("SELECT host, run, seq FROM series_batches ORDER BY host, run, seq")
        else:
            rows = db.execute(
                "SELECT host, run, seq FROM series_batches WHERE host = ? ORDER BY run, seq",
                (host,),
            )
        return [(h, r, int(s)) for h, r, s in rows]

    def sample_count(self, host: str | None = None) -> int:
        """Samples kept, of one host or of all (tests check exactly-once with it)."""
        db = self._connect()
        if host is None:
            return int(db.execute("SELECT count(*) FROM series_samples").fetchone()[0])
        return int(db.execute("SELECT count(*) FROM series_samples WHERE host = ?", (host,)).fetchone()[0])

    def prometheus_text(self) -> str:
        """``/metrics``: :func:`hostpulse.series.exposition.prometheus_text` of this store."""
        return exposition.prometheus_text(self)


__all__ = ["MIN_STEP", "HostInfo", "SeriesLimitError", "SeriesStore"]
