"""The series store: agents' batches written once and on disk before the ack, compacted into
compressed tiers, queried, pruned, capped.

``synchronous=FULL`` (``hostpulse/sqlite.py``) because an acknowledgement promises the
batch is on disk: with WAL and ``NORMAL`` a power cut can lose the last commits.

Writing a batch (the ingest path) is a handful of small statements: its ``(host, run,
seq)`` checked and added to the run's acknowledged ranges (``series_acked``: a run's seqs
grow, so a run is usually one row, however many batches it sent), new series names given
ids, the samples as one uncompressed head row (``head.py``), the host's latest values.
Many batches share one transaction (``committer.py``); each has its own SAVEPOINT, so one
that fails (a cap on series, or anything unforeseen) is rolled back alone.

Compaction (:meth:`SeriesStore.compact`, run in the background by the service) moves the
head rows of closed hours into compressed tables (``codec.py``): a host's hour of raw
samples per row, and the 5-minute and hourly aggregates (``tiers.py``) per day, all in one
transaction, so every tier always holds what was compacted. Queries read the tier their
``step`` needs and add the head's samples on the fly: a query right after an ack sees the
batch in every tier.

Caps: ``series_counts`` keeps how many series (``series_names`` rows) each host has, and how
many in all (a batch's new names are added in one statement, ``schema.count_new``), so a
batch bringing new names is refused when it would pass ``max_series_per_host`` or
``max_series``.

Methods are synchronous; the async port calls them in a worker thread, and each thread
has its own connection.

Two engines run this logic (``engine.py``): the service's SQLite file, or PostgreSQL shared by
several nodes (issue 16). The SQL here is what both accept (``ON CONFLICT`` upserts, ``CASE``
for a larger of two, ``coalesce(sum(...), 0)`` for SQLite's ``total``, ``length`` of a blob,
SAVEPOINTs); an engine gives connections, the write lock and the schema.
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hostpulse.errorcodes import UNPROCESSABLE_ENTITY
from hostpulse.hoststate import host_state
from hostpulse.samples import Batch, BatchError
from hostpulse.series import codec, exposition, head, schema, tiers
from hostpulse.series.engine import Db, is_postgres_url, open_engine
from hostpulse.series.naming import describe
from hostpulse.settings import Settings, store_engine

MIN_STEP = 0.001  # seconds: the smallest step of a series query
# An hour is compacted once the service's clock is this far past its end: samples of an
# agent's batch (several samples, up to the clock skew allowed) come after their time.
COMPACT_GRACE = 300.0
HOSTS_PER_COMPACTION = 8  # hosts compacted per transaction: the writer lock is held briefly

# The newest batch also says the host's interval (NULL: an older agent; the state then
# uses the gap between the last two batches) and whether it was a goodbye; ``latest`` is
# NULL for a batch already stored (its values are not newer).
_UPSERT_HOST = """
INSERT INTO series_hosts (host, last_seen, interval, goodbye, latest, batches) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (host) DO UPDATE SET
    batches = series_hosts.batches + excluded.batches,
    previous_seen = series_hosts.last_seen,
    last_seen = CASE WHEN excluded.last_seen > series_hosts.last_seen THEN excluded.last_seen
        ELSE series_hosts.last_seen END,
    interval = excluded.interval,
    goodbye = excluded.goodbye,
    latest = coalesce(excluded.latest, series_hosts.latest)
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

    def as_json(self, now: float, latest: dict[str, float] | None = None) -> dict[str, Any]:
        """The host as ``GET /hosts`` (and the dashboard's live feed) gives it, its state at
        ``now`` (the service's clock, as ``last_seen`` is); ``latest``: these values instead."""
        return {
            "host": self.host,
            "last_seen": self.last_seen,
            "state": host_state(now, self.last_seen, self.interval, self.previous_seen, self.goodbye),
            "dropped": self.dropped,
            "latest": self.latest if latest is None else latest,
        }


@dataclass(frozen=True)
class HostSummary:
    """What ``hostpulse hosts`` lists."""

    host: str
    last_seen: float
    series: int
    samples: int


@dataclass
class _Written:
    """Series ids given and latest values written, by a batch or a transaction: known to the
    process's caches only once committed (a batch rolled back to its savepoint leaves none)."""

    ids: dict[str, dict[str, int]] = field(default_factory=dict)
    latest: dict[str, tuple[bytes, head.Latest]] = field(default_factory=dict)

    def take(self, other: _Written) -> None:
        for host, names in other.ids.items():
            self.ids.setdefault(host, {}).update(names)
        self.latest.update(other.latest)


class SeriesStore:
    """Samples per host and series name, with the batches that brought them."""

    def __init__(
        self,
        path: Path | str,
        retention: float,
        max_series_per_host: int | None = None,
        max_series: int | None = None,
        retention_medium: float | None = None,
        retention_hourly: float | None = None,
        migrate_limit: float = schema.MIGRATE_LIMIT,
    ) -> None:
        """``retention`` keeps raw samples, ``retention_medium`` and ``retention_hourly`` the
        5-minute and hourly tiers (``None``: as long as the raw ones; ``math.inf``: all).
        ``max_series_per_host`` and ``max_series`` cap the series a host, and all hosts
        together, may have (``None``: no cap). A file in the format before the tiers is
        converted when it holds at most ``migrate_limit`` samples, else refused
        (:class:`~hostpulse.series.schema.OldStoreError`). ``path`` is the SQLite file, or a
        ``postgresql://`` URL (whose schema ``hostpulse init`` made: ``engine.py``)."""
        self.retention = float(retention)
        self.retention_medium = self.retention if retention_medium is None else float(retention_medium)
        self.retention_hourly = self.retention if retention_hourly is None else float(retention_hourly)
        if not min(self.retention, self.retention_medium, self.retention_hourly) > 0:
            raise ValueError("retention must be a positive number of seconds (math.inf keeps all)")
        self.path: Path | None = None if is_postgres_url(path) else Path(path)  # None: PostgreSQL
        self.max_series_per_host = max_series_per_host
        self.max_series = max_series
        self._writer = threading.Lock()
        # host -> name -> series id, and host -> its latest values (the blob as written, and
        # decoded), as committed by this process; cleared when another process deleted series
        self._ids: dict[str, dict[str, int]] = {}
        self._latest: dict[str, tuple[bytes, head.Latest]] = {}
        self._generation: int | None = None
        self.engine = open_engine(path)
        try:
            with self._writer:
                self.engine.prepare(migrate_limit)
        except BaseException:
            self.engine.close()
            raise

    @classmethod
    def from_settings(cls, settings: Settings, migrate_limit: float = schema.MIGRATE_LIMIT) -> SeriesStore:
        """The series store ``[store] url`` names (the service's SQLite file, or PostgreSQL),
        as ``[store]`` configures it (a retention of 0 keeps forever, a cap of 0 is none)."""
        store = settings.store
        return cls(
            store.url if store_engine(store.url) == "postgresql" else settings.db_path,
            store.retention or math.inf,
            max_series_per_host=store.max_series_per_host or None,
            max_series=store.max_series or None,
            retention_medium=store.retention_medium or math.inf,
            retention_hourly=store.retention_hourly or math.inf,
            migrate_limit=migrate_limit,
        )

    @property
    def longest_retention(self) -> float:
        return max(self.retention, self.retention_medium, self.retention_hourly)

    def retention_of(self, tier: tiers.Tier) -> float:
        return {0: self.retention, 1: self.retention_medium, 2: self.retention_hourly}[tier.level]

    # -- connections ------------------------------------------------------------------

    def _connect(self) -> Db:
        return self.engine.connection()

    @contextmanager
    def _transaction(self) -> Iterator[Db]:
        """One writer at a time, across threads, worker processes and nodes: the engine's
        write lock (SQLite: ``flock`` and ``BEGIN IMMEDIATE``; PostgreSQL: an advisory
        lock), taken up front (no upgrade deadlock)."""
        with self._writer, self.engine.transaction() as db:
            yield db

    def close(self) -> None:
        """Close every thread's connection (at shutdown, once no call is running)."""
        self.engine.close()

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
        written = _Written()  # ids and latest values of this transaction: cached once it commits
        with self._transaction() as db:
            self._check_generation(db)
            for batch in batches:
                db.execute("SAVEPOINT batch")
                mine = _Written()
                try:
                    self._store_one(db, batch, received, written, mine)
                except Exception as exc:
                    if not db.in_transaction:  # SQLite rolled the whole transaction back
                        raise
                    db.execute("ROLLBACK TO batch")
                    db.execute("RELEASE batch")
                    if isinstance(exc, SeriesLimitError):
                        db.execute(
                            "INSERT INTO series_refused (cap, batches) VALUES (?, 1)"
                            " ON CONFLICT (cap) DO UPDATE SET batches = series_refused.batches + 1",
                            (exc.cap,),
                        )
                    results.append(exc)
                else:
                    db.execute("RELEASE batch")
                    written.take(mine)
                    results.append(batch.seq)
        for host, names in written.ids.items():
            self._ids.setdefault(host, {}).update(names)
        self._latest.update(written.latest)
        return results

    def _check_generation(self, db: Db) -> None:
        """Forget cached series ids when any process deleted series since we last looked."""
        generation = schema.generation(db)
        if generation != self._generation:
            self._ids.clear()
            self._latest.clear()
            self._generation = generation

    def _store_one(self, db: Db, batch: Batch, received: float, before: _Written, mine: _Written) -> None:
        stored = self._acknowledge(db, batch, received)
        db.execute(_UPSERT_RUN, (batch.host, batch.run, batch.dropped, batch.seq))
        if not stored or not batch.samples:
            latest = None
            if stored and not self._host_known(db, batch.host):
                latest = head.encode_latest({})
            db.execute(_UPSERT_HOST, (batch.host, received, batch.interval, int(batch.goodbye), latest, 0))
            return
        try:  # the common case: every name already has its id in this process
            data, newest = head.encode_samples(batch.samples, self._ids.get(batch.host, {}))
        except KeyError:
            data, newest = head.encode_samples(batch.samples, self._series_ids(db, batch, before, mine))
        times = [s.ts for s in batch.samples]
        db.execute(
            "INSERT INTO series_head (host, ts_min, ts_max, samples, data) VALUES (?, ?, ?, ?, ?)",
            (
                batch.host,
                head.to_ms(min(times)),
                head.to_ms(max(times)),
                sum(map(len, (s.values for s in batch.samples))),
                data,
            ),
        )
        latest = self._merge_latest(db, batch.host, newest, before, mine)
        db.execute(_UPSERT_HOST, (batch.host, received, batch.interval, int(batch.goodbye), latest, 1))

    def _merge_latest(
        self, db: Db, host: str, newest: dict[int, tuple[int, float]], before: _Written, mine: _Written
    ) -> bytes:
        """The host's latest values with this batch's: decoded only when another process
        wrote them since this one did (the common case reads a row and compares bytes)."""
        row = db.execute("SELECT latest FROM series_hosts WHERE host = ?", (host,)).fetchone()
        blob = row[0] if row else None
        known = before.latest.get(host) or self._latest.get(host)
        values = known[1].copy() if known is not None and known[0] == blob else head.Latest(blob)
        values.merge(newest)
        merged = values.to_bytes()
        mine.latest[host] = (merged, values)
        return merged

    @staticmethod
    def _host_known(db: Db, host: str) -> bool:
        return db.execute("SELECT 1 FROM series_hosts WHERE host = ?", (host,)).fetchone() is not None

    @staticmethod
    def _acknowledge(db: Db, batch: Batch, received: float) -> bool:
        """Add the batch's seq to its run's acknowledged ranges; False when it was there.

        One read finds the range at or before the seq and one starting right after it (a
        batch that arrived earlier than the seqs before it), which this one then joins."""
        host, run, seq = batch.key
        found = db.execute(
            "SELECT lo, hi FROM series_acked WHERE host = ? AND run = ? AND lo <= ? ORDER BY lo DESC LIMIT 2",
            (host, run, seq + 1),
        ).fetchall()
        after = found.pop(0) if found and found[0][0] == seq + 1 else None
        row = found[0] if found else None
        if row is not None and row[1] >= seq:
            return False
        hi = seq if after is None else int(after[1])
        if after is not None:
            db.execute("DELETE FROM series_acked WHERE host = ? AND run = ? AND lo = ?", (host, run, seq + 1))
        if row is not None and row[1] == seq - 1:  # right after a range: extend it
            db.execute(
                "UPDATE series_acked SET hi = ?, received = ? WHERE host = ? AND run = ? AND lo = ?",
                (hi, received, host, run, row[0]),
            )
        else:
            db.execute(
                "INSERT INTO series_acked (host, run, lo, hi, received) VALUES (?, ?, ?, ?, ?)",
                (host, run, seq, hi, received),
            )
        return True

    def _series_ids(self, db: Db, batch: Batch, before: _Written, mine: _Written) -> dict[str, int]:
        """Every name of the batch with its series id; new names get one (and are counted
        against the caps). Known names cost a dict lookup: ids are cached per host."""
        host = batch.host
        known = self._ids.get(host, {})
        missing = {name for sample in batch.samples for name in sample.values if name not in known}
        ids = dict(known)
        ids.update(before.ids.get(host, {}))
        created = 0
        for name in sorted(missing - ids.keys()):
            created += db.execute(
                "INSERT INTO series_names (host, name, last_ts) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (host, name, head.to_ms(batch.samples[0].ts)),
            ).rowcount
            ids[name] = int(
                db.execute("SELECT id FROM series_names WHERE host = ? AND name = ?", (host, name)).fetchone()[0]
            )
            mine.ids.setdefault(host, {})[name] = ids[name]
        if created:
            schema.count_new(db, host, created)
            self._check_caps(db, batch, created)
        return ids

    @staticmethod
    def _series_of(db: Db, host: str) -> int:
        """Series the host has (``schema.ALL_HOSTS``: all hosts), as ``series_counts`` has them."""
        row = db.execute("SELECT n FROM series_counts WHERE host = ?", (host,)).fetchone()
        return int(row[0]) if row else 0

    def _check_caps(self, db: Db, batch: Batch, new: int) -> None:
        """:class:`SeriesLimitError` when the batch's ``new`` series pass a cap; the caller
        rolls the batch back. A batch of known names always passes, even when a lowered cap
        is below what a host already has."""
        cap = self.max_series_per_host
        after = self._series_of(db, batch.host)
        if cap is not None and after > cap:
            raise SeriesLimitError(
                f"host {batch.host!r} has {after - new} series and this batch brings {new} new;"
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

    # -- compaction -------------------------------------------------------------------

    def compact(self, now: float | None = None, everything: bool = False) -> int:
        """Move the head's closed hours into the compressed tiers; return the head rows moved.

        An hour is closed ``COMPACT_GRACE`` seconds after its end (``everything``: every
        head row, open hours too: for tests and benchmarks). A few hosts per transaction,
        so batches keep committing in between.
        """
        current = time.time() if now is None else now
        cutoff = math.inf if everything else ((current - COMPACT_GRACE) * 1000 // tiers.HOUR_MS) * tiers.HOUR_MS
        bound = 2**63 - 1 if math.isinf(cutoff) else int(cutoff)
        moved = 0
        done: set[str] = set()
        while True:
            with self._transaction() as db:
                self._check_generation(db)
                hosts = [
                    h
                    for (h,) in db.execute(
                        "SELECT DISTINCT host FROM series_head WHERE ts_max < ? ORDER BY host", (bound,)
                    )
                    if h not in done
                ][:HOSTS_PER_COMPACTION]
                for host in hosts:
                    moved += self._compact_host(db, host, bound)
                    done.add(host)
            if len(hosts) < HOSTS_PER_COMPACTION:
                return moved

    def _compact_host(self, db: Db, host: str, bound: int) -> int:
        found = db.execute(
            "SELECT id, data FROM series_head WHERE host = ? AND ts_max < ? ORDER BY id", (host, bound)
        ).fetchall()
        rows = head.Rows(blob for _, blob in found)
        counters = self._counters(db, host)
        all_times, all_keys, all_values = tiers.by_series(rows.times_ms, rows.keys, rows.values)  # sorted once
        windows = tiers.window_of(all_times, tiers.RAW.span_ms)
        for start in np.unique(windows):
            chosen = windows == start
            times, keys, values = all_times[chosen], all_keys[chosen], all_values[chosen]
            self._write_raw(db, host, int(start), times, keys, values)
            for tier in tiers.AGGREGATES:
                buckets = tiers.aggregate(times, keys, values, tier.step_ms, counters, ordered=True)
                self._write_aggregates(db, host, tier, buckets, counters)
        if len(all_keys):  # each series' newest time: pruning forgets series that stopped
            keys, times = all_keys, all_times
            ends = np.append(np.flatnonzero(keys[1:] != keys[:-1]), len(keys) - 1)
            db.executemany(
                "UPDATE series_names SET last_ts = ? WHERE id = ? AND last_ts < ?",
                [(int(t), int(k), int(t)) for k, t in zip(keys[ends], times[ends])],
            )
        db.execute("DELETE FROM series_head WHERE host = ? AND ts_max < ?", (host, bound))
        return len(found)

    @staticmethod
    def _counters(db: Db, host: str) -> set[int]:
        return {
            i
            for i, name in db.execute("SELECT id, name FROM series_names WHERE host = ?", (host,))
            if describe(name).counter
        }

    @staticmethod
    def _write_raw(db: Db, host: str, start: int, times: tiers.Ints, keys: tiers.Ints, values: tiers.Floats) -> None:
        """The window's raw table, with what an earlier compaction left there (late samples)."""
        ordered = True
        row = db.execute(
            "SELECT data FROM series_chunks WHERE host = ? AND tier = 0 AND start = ?", (host, start)
        ).fetchone()
        if row is not None:
            ordered = False
            old = codec.decode(row[0])
            parts = [old.points(k) for k in old.keys()]
            times = np.concatenate([times] + [t for t, _ in parts])
            keys = np.concatenate([keys] + [np.full(len(t), k, np.int64) for k, (t, _) in zip(old.keys(), parts)])
            values = np.concatenate([values] + [v for _, v in parts])
        blob = _raw_table(times, keys, values, ordered)
        db.execute(
            "INSERT INTO series_chunks (host, tier, start, samples, data) VALUES (?, 0, ?, ?, ?)"
            " ON CONFLICT (host, tier, start) DO UPDATE SET samples = excluded.samples, data = excluded.data",
            (host, start, len(values), blob),
        )

    @staticmethod
    def _write_aggregates(db: Db, host: str, tier: tiers.Tier, buckets: tiers.Buckets, counters: set[int]) -> None:
        rows = tiers.window_of(buckets.starts, tier.span_ms)
        for start in np.unique(rows):
            chosen = rows == start
            part = tiers.Buckets(buckets.keys[chosen], buckets.starts[chosen], buckets.fields[chosen])
            found = db.execute(
                "SELECT data FROM series_chunks WHERE host = ? AND tier = ? AND start = ?",
                (host, tier.level, int(start)),
            ).fetchone()
            if found is not None:
                part = tiers.merge(tiers.decode_row(found[0]), part)
            db.execute(
                "INSERT INTO series_chunks (host, tier, start, samples, data) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (host, tier, start) DO UPDATE SET samples = excluded.samples, data = excluded.data",
                (
                    host,
                    tier.level,
                    int(start),
                    int(part.fields[:, tiers.COUNT].sum()),
                    tiers.encode_row(part),
                ),
            )

    # -- retention and deletion -------------------------------------------------------

    def prune(self, now: float | None = None) -> int:
        """Forget what each tier keeps no longer, and batches, series and hosts older than
        the longest retention; return the raw samples deleted."""
        current = time.time() if now is None else now
        deleted = 0
        with self._transaction() as db:
            if not math.isinf(self.retention):
                cutoff = int((current - self.retention) * 1000)
                deleted += db.execute(
                    "SELECT coalesce(sum(samples), 0) FROM series_head WHERE ts_max < ?", (cutoff,)
                ).fetchone()[0]
                db.execute("DELETE FROM series_head WHERE ts_max < ?", (cutoff,))
            for tier in tiers.TIERS:
                keep = self.retention_of(tier)
                if math.isinf(keep):
                    continue
                cutoff = int((current - keep) * 1000) - tier.span_ms  # rows wholly before it
                if tier is tiers.RAW:
                    deleted += db.execute(
                        "SELECT coalesce(sum(samples), 0) FROM series_chunks WHERE tier = 0 AND start < ?", (cutoff,)
                    ).fetchone()[0]
                db.execute("DELETE FROM series_chunks WHERE tier = ? AND start < ?", (tier.level, cutoff))
            if not math.isinf(self.longest_retention):
                oldest = current - self.longest_retention
                db.execute("DELETE FROM series_acked WHERE received < ?", (oldest,))
                gone = "SELECT host FROM series_hosts WHERE last_seen < ?"
                db.execute(f"DELETE FROM series_runs WHERE host IN ({gone})", (oldest,))
                forgotten = db.execute(f"DELETE FROM series_names WHERE host IN ({gone})", (oldest,)).rowcount
                forgotten += self._forget_stopped(db, int(oldest * 1000))
                db.execute("DELETE FROM series_hosts WHERE last_seen < ?", (oldest,))
                if forgotten:  # series gone: room under the caps again, and ids to forget
                    schema.recount(db)
                    schema.bump_generation(db)
        return int(deleted)

    @staticmethod
    def _forget_stopped(db: Db, cutoff_ms: int) -> int:
        """Delete series whose newest sample is older than ``cutoff_ms``: none compacted
        since, and none in the head (whose rows ``last_ts`` does not follow)."""
        stopped = db.execute("SELECT id, host FROM series_names WHERE last_ts < ?", (cutoff_ms,)).fetchall()
        hosts = {host for _, host in stopped}
        in_head: set[int] = set()
        for host in hosts:
            blobs = (blob for (blob,) in db.execute("SELECT data FROM series_head WHERE host = ?", (host,)))
            in_head.update(head.Rows(blobs).keys.tolist())
        gone = [(i,) for i, _ in stopped if i not in in_head]
        db.executemany("DELETE FROM series_names WHERE id = ?", gone)
        return len(gone)

    def delete_host(self, host: str) -> bool:
        """Forget the host: every series, sample, aggregate and batch of it (``hostpulse
        host-delete``); False when there was no such host."""
        with self._transaction() as db:
            known = (
                self._host_known(db, host)
                or db.execute("SELECT 1 FROM series_names WHERE host = ?", (host,)).fetchone() is not None
            )
            for table in (
                "series_head",
                "series_chunks",
                "series_acked",
                "series_runs",
                "series_names",
                "series_hosts",
            ):
                db.execute(f"DELETE FROM {table} WHERE host = ?", (host,))
            schema.recount(db)
            schema.bump_generation(db)
        return known

    # -- reading ----------------------------------------------------------------------

    def _names(self, db: Db, host: str | None = None) -> dict[int, str]:
        if host is None:
            return dict(db.execute("SELECT id, name FROM series_names"))
        return dict(db.execute("SELECT id, name FROM series_names WHERE host = ?", (host,)))

    def hosts(self) -> list[HostInfo]:
        """Every host with its last-seen time (the service's clock), latest values and drops."""
        db = self._connect()
        names = self._names(db)
        # A float sum (SQLite's integer sum would overflow: each run may report up to 2**63-1).
        dropped = dict(db.execute("SELECT host, sum(CAST(dropped AS DOUBLE PRECISION)) FROM series_runs GROUP BY host"))
        found = []
        for host, last_seen, interval, previous, bye, latest in db.execute(
            "SELECT host, last_seen, interval, previous_seen, goodbye, latest FROM series_hosts ORDER BY host"
        ):
            values = {names[k]: v for k, v in head.Latest(latest).items() if k in names}
            found.append(
                HostInfo(
                    host,
                    last_seen,
                    dict(sorted(values.items())),
                    int(dropped.get(host, 0)),
                    interval,
                    previous,
                    bool(bye),
                )
            )
        return found

    def host_summaries(self) -> list[HostSummary]:
        """Each host with its series and raw samples kept (``hostpulse hosts``)."""
        db = self._connect()
        series = dict(db.execute("SELECT host, n FROM series_counts WHERE host != ?", (schema.ALL_HOSTS,)))
        samples: dict[str, int] = defaultdict(int)
        for table, where in (("series_head", ""), ("series_chunks", " WHERE tier = 0")):
            for host, n in db.execute(f"SELECT host, coalesce(sum(samples), 0) FROM {table}{where} GROUP BY host"):
                samples[host] += int(n)
        return [
            HostSummary(host, last_seen, int(series.get(host, 0)), samples[host])
            for host, last_seen in db.execute("SELECT host, last_seen FROM series_hosts ORDER BY host")
        ]

    def has_host(self, host: str) -> bool:
        """Whether any batch of the host is kept (a query for another host is a 404)."""
        db = self._connect()
        return self._host_known(db, host)

    def names(self, host: str) -> list[str]:
        """The host's series names, sorted."""
        return sorted(self._names(self._connect(), host).values())

    def series(
        self,
        host: str,
        name: str,
        since: float | None = None,
        until: float | None = None,
        step: float | None = None,
        limit: int | None = None,
        rate: bool = False,
    ) -> list[tuple[float, float]]:
        """Points ``(ts, value)`` with ``since <= ts <= until``, oldest first.

        With ``step``, one point per step-aligned bucket that has samples: the bucket's
        start and the mean of its values (downsampling for long ranges), read from the
        coarsest tier whose buckets a step of that size is made of (a multiple of 3600 s:
        the hourly tier; of 300 s: the 5-minute tier; else raw samples); a step-aligned
        bucket of a tier is taken whole when its start is in the range. With ``rate`` (a
        counter), the increase per second instead of the value. ``limit`` caps the number
        of points (the oldest are kept).
        """
        if step is not None and not step >= MIN_STEP:
            # Smaller steps would round to 0 ms.
            raise ValueError("step must be at least 0.001 seconds (1 ms)")
        low = -(2**62) if since is None else math.ceil(since * 1000)
        high = 2**62 if until is None else math.floor(until * 1000)
        db = self._connect()
        found = db.execute("SELECT id FROM series_names WHERE host = ? AND name = ?", (host, name)).fetchone()
        if found is None or low > high:
            return []
        key = int(found[0])
        step_ms = None if step is None else max(1, round(step * 1000))
        tier = self._tier_for(step_ms, low, since is not None)
        if tier is tiers.RAW:
            times, values = self._raw_points(db, host, key, low, high)
            if step_ms is None:
                if rate:
                    times, values = tiers.rates(times, values)
            else:
                counters = {key} if rate else set()
                buckets = tiers.aggregate(times, np.full(len(times), key, np.int64), values, step_ms, counters)
                times, values = tiers.answer(buckets, step_ms, rate)
        else:
            assert step_ms is not None
            buckets = self._aggregates(db, host, key, tier, low, high, rate)
            times, values = tiers.answer(buckets, step_ms, rate)
        if limit is not None:
            times, values = times[:limit], values[:limit]
        return [(t / 1000.0, float(v)) for t, v in zip(times.tolist(), values)]

    def _tier_for(self, step_ms: int | None, low: int, given: bool) -> tiers.Tier:
        """The coarsest tier the step is made of; when ``since`` is older than that tier
        keeps, the first coarser tier that still covers it (coarser points, not none)."""
        if step_ms is None:
            return tiers.RAW
        chosen = tiers.RAW
        for tier in tiers.AGGREGATES:
            if step_ms % tier.step_ms == 0:
                chosen = tier
        if not given:
            return chosen
        now = time.time() * 1000
        candidates = tiers.TIERS[chosen.level :]
        for tier in candidates:
            if low >= now - self.retention_of(tier) * 1000:
                return tier
        return max(candidates, key=lambda t: (self.retention_of(t), -t.level))

    def _head_rows(self, db: Db, host: str, low: int, high: int) -> head.Rows:
        return head.Rows(
            blob
            for (blob,) in db.execute(
                "SELECT data FROM series_head WHERE host = ? AND ts_max >= ? AND ts_min <= ? ORDER BY id",
                (host, low, high),
            )
        )

    def _raw_points(self, db: Db, host: str, key: int, low: int, high: int) -> tuple[tiers.Ints, tiers.Floats]:
        times, values = [], []
        for (blob,) in db.execute(
            "SELECT data FROM series_chunks WHERE host = ? AND tier = 0 AND start > ? AND start <= ? ORDER BY start",
            (host, low - tiers.RAW.span_ms, high),
        ):
            t, v = codec.decode(blob).points(key)
            times.append(t)
            values.append(v)
        t, v = self._head_rows(db, host, low, high).points(key)
        times.append(t)
        values.append(v)
        all_times, all_values = np.concatenate(times), np.concatenate(values)
        order = np.argsort(all_times, kind="stable")
        all_times, all_values = all_times[order], all_values[order]
        keep = (all_times >= low) & (all_times <= high)
        return all_times[keep], all_values[keep]

    def _aggregates(
        self, db: Db, host: str, key: int, tier: tiers.Tier, low: int, high: int, rate: bool
    ) -> tiers.Buckets:
        """The tier's buckets of one series with a start in the range, the head's included."""
        first = (low // tier.step_ms) * tier.step_ms if low > -(2**62) else low
        parts = [
            tiers.decode_row(blob, {key})
            for (blob,) in db.execute(
                "SELECT data FROM series_chunks WHERE host = ? AND tier = ? AND start > ? AND start <= ? ORDER BY start",
                (host, tier.level, first - tier.span_ms, high),
            )
        ]
        t, v = self._head_rows(db, host, first, high).points(key)
        parts.append(tiers.aggregate(t, np.full(len(t), key, np.int64), v, tier.step_ms, {key} if rate else set()))
        buckets = tiers.merge(*parts)
        keep = (buckets.starts >= first) & (buckets.starts <= high)
        return tiers.Buckets(buckets.keys[keep], buckets.starts[keep], buckets.fields[keep])

    def series_total(self) -> int:
        """Series of all hosts together, as the caps count them."""
        return self._series_of(self._connect(), schema.ALL_HOSTS)

    def refused(self) -> dict[str, int]:
        """Batches refused so far by each cap (``schema.CAPS``; a cap never hit is 0)."""
        counted = dict(self._connect().execute("SELECT cap, batches FROM series_refused"))
        return {cap: int(counted.get(cap, 0)) for cap in schema.CAPS}

    def tier_bytes(self) -> dict[str, int]:
        """Bytes of stored data per tier (``head``: batches not compacted yet), for ``/metrics``."""
        db = self._connect()
        sizes = {"head": int(db.execute("SELECT coalesce(sum(length(data)), 0) FROM series_head").fetchone()[0])}
        counted = dict(db.execute("SELECT tier, coalesce(sum(length(data)), 0) FROM series_chunks GROUP BY tier"))
        sizes.update({tier.name: int(counted.get(tier.level, 0)) for tier in tiers.TIERS})
        return sizes

    def batch_keys(self, host: str | None = None) -> list[tuple[str, str, int]]:
        """Stored ``(host, run, seq)`` keys (fault tests count them against what agents sent)."""
        db = self._connect()
        if host is None:
            found = db.execute("SELECT host, run, lo, hi FROM series_acked ORDER BY host, run, lo")
        else:
            found = db.execute("SELECT host, run, lo, hi FROM series_acked WHERE host = ? ORDER BY run, lo", (host,))
        return [(h, r, seq) for h, r, lo, hi in found for seq in range(int(lo), int(hi) + 1)]

    def stored_batches(self, host: str) -> int:
        """The host's batches stored with samples (a goodbye carries none), each counted once."""
        row = self._connect().execute("SELECT batches FROM series_hosts WHERE host = ?", (host,)).fetchone()
        return int(row[0]) if row else 0

    def sample_count(self, host: str | None = None) -> int:
        """Samples kept raw, of one host or of all (tests check exactly-once with it)."""
        db = self._connect()
        where, args = ("", ()) if host is None else (" AND host = ?", (host,))
        total = db.execute(f"SELECT coalesce(sum(samples), 0) FROM series_head WHERE TRUE{where}", args).fetchone()[0]
        total += db.execute(
            f"SELECT coalesce(sum(samples), 0) FROM series_chunks WHERE tier = 0{where}", args
        ).fetchone()[0]
        return int(total)

    def prometheus_text(self) -> str:
        """``/metrics``: :func:`hostpulse.series.exposition.prometheus_text` of this store."""
        return exposition.prometheus_text(self)


def _raw_table(times: tiers.Ints, keys: tiers.Ints, values: tiers.Floats, ordered: bool) -> bytes:
    """Samples ``(time, key, value)`` (``ordered``: by series, then time) as one table: a row
    per time (one more for each repeat of a series at the same time), a column per series."""
    t, k, v = (times, keys, values) if ordered else tiers.by_series(times, keys, values)
    same = np.zeros(len(t), bool)
    same[1:] = (t[1:] == t[:-1]) & (k[1:] == k[:-1])
    if same.any():  # the nth value of a series at one time goes to that time's nth row
        repeat = np.zeros(len(t), np.int64)
        for i in np.flatnonzero(same):
            repeat[i] = repeat[i - 1] + 1
        pairs, row_of = np.unique(np.stack((t, repeat), axis=1), axis=0, return_inverse=True)
        row_times, row_of = pairs[:, 0], row_of.reshape(-1)
    else:
        row_times = np.unique(t)
        row_of = np.searchsorted(row_times, t)
    columns: dict[int, codec.Column] = {}
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]]) if len(k) else np.empty(0, np.int64)
    for first, end in zip(starts, np.append(starts[1:], len(k))):
        mask = np.zeros(len(row_times), bool)
        mask[row_of[first:end]] = True
        # a series' values in time order are in its rows' order (repeats: nth to the nth row)
        order = np.argsort(row_of[first:end], kind="stable")
        columns[int(k[first])] = codec.Column(v[first:end][order], mask)
    return codec.encode(row_times.astype(np.int64), columns)


__all__ = ["MIN_STEP", "HostInfo", "HostSummary", "SeriesLimitError", "SeriesStore"]
