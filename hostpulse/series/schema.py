"""The series tables in SQLite (:data:`SCHEMA`) and in PostgreSQL (:data:`POSTGRES`), and
bringing an older SQLite file up to them.

Tables are prefixed ``series_`` so they live beside the service's own tables
(``hostpulse/store.py``) in the same file. Every statement is ``IF NOT EXISTS``: each
worker applies the schema when it opens the store, in one write transaction.

A file from before the compressed tiers kept a row per value (``series_samples``, 96 bytes
a sample) and a row per batch (``series_batches``): :func:`apply` converts it, its samples
into head rows that compaction then compresses. A file with more than ``MIGRATE_LIMIT``
such rows is refused instead, with the command that converts it (``hostpulse migrate``),
so that a service never spends minutes converting at startup while its agents wait.

On PostgreSQL the same tables are one step of the database's versioned migrations
(``hostpulse.store_pg.MIGRATIONS``, run by ``hostpulse init`` / ``hostpulse migrate``), never
made by a worker. The functions below that write (:func:`recount`, :func:`bump_generation`)
run on either engine.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Callable
from itertools import groupby
from typing import Any, Protocol

from hostpulse.samples import Sample
from hostpulse.series import head


class Db(Protocol):
    """A connection of either engine (``hostpulse.series.engine.Db``)."""

    def execute(self, sql: str, params: Any = ..., /) -> Any: ...


SCHEMA = """
CREATE TABLE IF NOT EXISTS series_names (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: a deleted series' id stays dead
    host TEXT NOT NULL,
    name TEXT NOT NULL,
    last_ts INTEGER NOT NULL,              -- ms: its newest sample compacted (or its first)
    UNIQUE (host, name)
);
CREATE TABLE IF NOT EXISTS series_head (
    id INTEGER PRIMARY KEY,
    host TEXT NOT NULL,
    ts_min INTEGER NOT NULL,               -- ms
    ts_max INTEGER NOT NULL,
    samples INTEGER NOT NULL,              -- values in it
    data BLOB NOT NULL                     -- hostpulse.series.head.encode_samples
);
CREATE INDEX IF NOT EXISTS series_head_host ON series_head (host, ts_max);
CREATE TABLE IF NOT EXISTS series_chunks (
    id INTEGER PRIMARY KEY,
    host TEXT NOT NULL,
    tier INTEGER NOT NULL,                 -- hostpulse.series.tiers: 0 raw, 1 5-minute, 2 hourly
    start INTEGER NOT NULL,                -- ms: the row's window (an hour raw, a day aggregated)
    samples INTEGER NOT NULL,              -- raw values in it (aggregates: values they sum up)
    data BLOB NOT NULL,                    -- hostpulse.series.codec table
    UNIQUE (host, tier, start)
);
CREATE INDEX IF NOT EXISTS series_chunks_age ON series_chunks (tier, start);
CREATE TABLE IF NOT EXISTS series_acked (
    host TEXT NOT NULL,
    run TEXT NOT NULL,
    lo INTEGER NOT NULL,                   -- seqs lo..hi of the run are stored
    hi INTEGER NOT NULL,
    received REAL NOT NULL,                -- when the newest of them came
    PRIMARY KEY (host, run, lo)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS series_acked_received ON series_acked (received);
CREATE TABLE IF NOT EXISTS series_hosts (
    host TEXT PRIMARY KEY,
    last_seen REAL NOT NULL,
    previous_seen REAL,             -- the batch before the last (the service's clock)
    interval REAL,                  -- seconds between batches, as its agent last said (NULL: not said)
    goodbye INTEGER NOT NULL DEFAULT 0,  -- 1: its last batch was a goodbye
    latest BLOB,                    -- hostpulse.series.head.encode_latest
    batches INTEGER NOT NULL DEFAULT 0  -- batches with samples stored
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS series_runs (
    host TEXT NOT NULL,
    run TEXT NOT NULL,
    dropped INTEGER NOT NULL,
    seq INTEGER NOT NULL,  -- the batch that reported ``dropped``
    PRIMARY KEY (host, run)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS series_counts (
    host TEXT PRIMARY KEY,  -- '' (no host name is empty): every host's series together
    n INTEGER NOT NULL      -- rows of series_names
) WITHOUT ROWID;
-- An earlier build counted each new name with a trigger: every new series updated the
-- all-hosts row once, which on PostgreSQL (a row version each) made a burst of new hosts fall
-- behind. The store now adds a batch's new series in one statement (count_new).
DROP TRIGGER IF EXISTS series_names_counted;
CREATE TABLE IF NOT EXISTS series_refused (
    cap TEXT PRIMARY KEY,   -- one of CAPS
    batches INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS series_meta (
    key TEXT PRIMARY KEY,   -- 'generation': bumped whenever series are deleted
    value INTEGER NOT NULL
) WITHOUT ROWID;
"""
# The same tables in PostgreSQL: migration step 2 of hostpulse.store_pg.MIGRATIONS. Released
# steps are never edited: a change of these tables is a new step there. Times and counts are
# BIGINT, REAL is DOUBLE PRECISION (PostgreSQL's REAL has 4 bytes), BLOB is BYTEA; identity
# columns never reuse an id, as AUTOINCREMENT. (Step 2 lost its counting trigger before any
# release: the store counts a batch's new series itself.)
POSTGRES = """
CREATE TABLE series_names (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    host TEXT NOT NULL,
    name TEXT NOT NULL,
    last_ts BIGINT NOT NULL,
    UNIQUE (host, name)
);
CREATE TABLE series_head (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    host TEXT NOT NULL,
    ts_min BIGINT NOT NULL,
    ts_max BIGINT NOT NULL,
    samples BIGINT NOT NULL,
    data BYTEA NOT NULL
);
CREATE INDEX series_head_host ON series_head (host, ts_max);
CREATE TABLE series_chunks (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    host TEXT NOT NULL,
    tier INTEGER NOT NULL,
    start BIGINT NOT NULL,
    samples BIGINT NOT NULL,
    data BYTEA NOT NULL,
    UNIQUE (host, tier, start)
);
CREATE INDEX series_chunks_age ON series_chunks (tier, start);
CREATE TABLE series_acked (
    host TEXT NOT NULL,
    run TEXT NOT NULL,
    lo BIGINT NOT NULL,
    hi BIGINT NOT NULL,
    received DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (host, run, lo)
);
CREATE INDEX series_acked_received ON series_acked (received);
CREATE TABLE series_hosts (
    host TEXT PRIMARY KEY,
    last_seen DOUBLE PRECISION NOT NULL,
    previous_seen DOUBLE PRECISION,
    interval DOUBLE PRECISION,
    goodbye INTEGER NOT NULL DEFAULT 0,
    latest BYTEA,
    batches BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE series_runs (
    host TEXT NOT NULL,
    run TEXT NOT NULL,
    dropped BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    PRIMARY KEY (host, run)
);
CREATE TABLE series_counts (
    host TEXT PRIMARY KEY,
    n BIGINT NOT NULL
);
CREATE TABLE series_refused (
    cap TEXT PRIMARY KEY,
    batches BIGINT NOT NULL
);
CREATE TABLE series_meta (
    key TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
"""
# Columns added to a table after it first shipped: a file from before them gets them by
# ALTER TABLE (CREATE TABLE IF NOT EXISTS leaves an existing table as it is).
ADDED_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "series_hosts": (
        ("previous_seen", "REAL"),
        ("interval", "REAL"),
        ("goodbye", "INTEGER NOT NULL DEFAULT 0"),
        ("latest", "BLOB"),
        ("batches", "INTEGER NOT NULL DEFAULT 0"),
    ),
}
# The caps on series, as series_refused names them: per host ([store] max_series_per_host)
# and all hosts together ([store] max_series).
CAPS = ("per_host", "total")
ALL_HOSTS = ""  # series_counts' row for every host together
OLD_TABLES = ("series_samples", "series_batches", "series_latest")
MIGRATE_LIMIT = 2_000_000  # rows of series_samples converted when the store opens
SAMPLES_PER_HEAD_ROW = 1000


class OldStoreError(RuntimeError):
    """A store file in the row-per-value format, too large to convert while opening."""


def statements(script: str) -> list[str]:
    """The script's statements one by one (a trigger's body holds semicolons of its own)."""
    found, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            found.append(current.strip())
            current = ""
    return found


def _tables(db: sqlite3.Connection) -> set[str]:
    return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def apply(db: sqlite3.Connection, migrate_limit: float = MIGRATE_LIMIT) -> None:
    """Create what is missing and convert an older file (SQLite); call inside a write transaction.

    A file without ``series_counts`` (from before the caps) has its series counted once,
    here, so the caps hold for them too."""
    had = _tables(db)
    counted = "series_counts" in had
    if "series_samples" in had:
        rows = db.execute("SELECT count(*) FROM series_samples").fetchone()[0]
        if rows > migrate_limit:
            raise OldStoreError(
                f"the series store holds {rows} samples in the format before compressed tiers;"
                " convert it once with `hostpulse migrate` (the service refuses to spend its startup on it)"
            )
    for statement in statements(SCHEMA):
        db.execute(statement)
    for table, columns in ADDED_COLUMNS.items():
        have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        for name, declaration in columns:
            if name not in have:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {declaration}")
    if "series_samples" in had:
        _convert(db)
        bump_generation(db)
    if "series_samples" in had or not counted:
        recount(db)


def _convert(db: sqlite3.Connection) -> None:
    """The row-per-value tables into names, head rows, acknowledged ranges and latest values."""
    ids: dict[tuple[str, str], int] = {}

    def id_of(host: str, name: str, ts_ms: int) -> int:
        key = (host, name)
        if key not in ids:
            db.execute(
                "INSERT INTO series_names (host, name, last_ts) VALUES (?, ?, ?)"
                " ON CONFLICT (host, name) DO UPDATE SET last_ts = max(last_ts, excluded.last_ts)",
                (host, name, ts_ms),
            )
            ids[key] = int(db.execute("SELECT id FROM series_names WHERE host = ? AND name = ?", key).fetchone()[0])
        return ids[key]

    latest: dict[str, dict[int, tuple[int, float]]] = defaultdict(dict)
    for host, name, ts, value in db.execute("SELECT host, name, ts, value FROM series_latest").fetchall():
        latest[host][id_of(host, name, head.to_ms(ts))] = (head.to_ms(ts), value)
    for host, values in latest.items():
        db.execute("UPDATE series_hosts SET latest = ? WHERE host = ?", (head.encode_latest(values), host))
    found = db.execute("SELECT host, ts, name, value FROM series_samples ORDER BY host, ts, rowid")
    for host, rows in groupby(found, key=lambda row: row[0]):
        samples: list[Sample] = []
        for ts, group in groupby(rows, key=lambda row: row[1]):
            samples.append(Sample(ts, {}))
            for _, _, name, value in group:
                if name in samples[-1].values:  # the same series twice at one time: a sample each
                    samples.append(Sample(ts, {}))
                samples[-1].values[name] = value
            if len(samples) >= SAMPLES_PER_HEAD_ROW:
                _write_head(db, host, samples, id_of)
                samples = []
        if samples:
            _write_head(db, host, samples, id_of)
    found = db.execute("SELECT host, run, seq, received FROM series_batches ORDER BY host, run, seq")
    for (host, run), rows in groupby(found, key=lambda row: (row[0], row[1])):
        ranges: list[list[float]] = []
        for _, _, seq, received in rows:
            if ranges and ranges[-1][1] == seq - 1:
                ranges[-1][1] = seq
                ranges[-1][2] = max(ranges[-1][2], received)
            else:
                ranges.append([seq, seq, received])
        db.executemany(
            "INSERT INTO series_acked (host, run, lo, hi, received) VALUES (?, ?, ?, ?, ?)",
            [(host, run, int(lo), int(hi), received) for lo, hi, received in ranges],
        )
    for table in OLD_TABLES:
        db.execute(f"DROP TABLE {table}")


def _write_head(
    db: sqlite3.Connection, host: str, samples: list[Sample], id_of: Callable[[str, str, int], int]
) -> None:
    ids = {name: id_of(host, name, head.to_ms(s.ts)) for s in samples for name in s.values}
    times = [head.to_ms(s.ts) for s in samples]
    data, _ = head.encode_samples(samples, ids)
    db.execute(
        "INSERT INTO series_head (host, ts_min, ts_max, samples, data) VALUES (?, ?, ?, ?, ?)",
        (host, min(times), max(times), sum(len(s.values) for s in samples), data),
    )


def count_new(db: Db, host: str, new: int) -> None:
    """``new`` series of ``host`` added to the counts (the host's and all hosts')."""
    db.execute(
        "INSERT INTO series_counts (host, n) VALUES (?, ?), (?, ?)"
        " ON CONFLICT (host) DO UPDATE SET n = series_counts.n + excluded.n",
        (host, new, ALL_HOSTS, new),
    )


def recount(db: Db) -> None:
    """Count every host's series again (after pruning or deleting forgot some, or after a conversion)."""
    db.execute("DELETE FROM series_counts")
    db.execute("INSERT INTO series_counts (host, n) SELECT host, count(*) FROM series_names GROUP BY host")
    db.execute("INSERT INTO series_counts (host, n) SELECT CAST(? AS TEXT), count(*) FROM series_names", (ALL_HOSTS,))


def generation(db: Db) -> int:
    """Changes whenever series are deleted (their ids cached by a process are then stale)."""
    row = db.execute("SELECT value FROM series_meta WHERE key = 'generation'").fetchone()
    return int(row[0]) if row else 0


def bump_generation(db: Db) -> None:
    db.execute(
        "INSERT INTO series_meta (key, value) VALUES ('generation', 1)"
        " ON CONFLICT (key) DO UPDATE SET value = series_meta.value + 1"
    )


__all__ = [
    "ADDED_COLUMNS",
    "ALL_HOSTS",
    "CAPS",
    "MIGRATE_LIMIT",
    "POSTGRES",
    "SCHEMA",
    "OldStoreError",
    "apply",
    "bump_generation",
    "count_new",
    "generation",
    "recount",
    "statements",
]
