"""The series tables in SQLite, and bringing an older file up to them.

Tables are prefixed ``series_`` so they live beside the service's own tables
(``hostpulse/store.py``) in the same file. Every statement is ``IF NOT EXISTS``: each
worker applies the schema when it opens the store, in one write transaction.
"""

from __future__ import annotations

import sqlite3

SCHEMA = """
CREATE TABLE IF NOT EXISTS series_batches (
    host TEXT NOT NULL,
    run TEXT NOT NULL,
    seq INTEGER NOT NULL,
    received REAL NOT NULL,
    samples INTEGER NOT NULL,
    PRIMARY KEY (host, run, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS series_batches_received ON series_batches (received);
CREATE TABLE IF NOT EXISTS series_samples (
    host TEXT NOT NULL,
    name TEXT NOT NULL,
    ts REAL NOT NULL,
    value REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS series_samples_host_name_ts ON series_samples (host, name, ts);
CREATE INDEX IF NOT EXISTS series_samples_ts ON series_samples (ts);
CREATE TABLE IF NOT EXISTS series_latest (
    host TEXT NOT NULL,
    name TEXT NOT NULL,
    ts REAL NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (host, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS series_hosts (
    host TEXT PRIMARY KEY,
    last_seen REAL NOT NULL,
    previous_seen REAL,             -- the batch before the last (the service's clock)
    interval REAL,                  -- seconds between batches, as its agent last said (NULL: not said)
    goodbye INTEGER NOT NULL DEFAULT 0  -- 1: its last batch was a goodbye
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
    n INTEGER NOT NULL      -- rows of series_latest
) WITHOUT ROWID;
-- Fires only for a new series (an upsert that updates does not insert).
CREATE TRIGGER IF NOT EXISTS series_latest_counted AFTER INSERT ON series_latest BEGIN
    INSERT INTO series_counts (host, n) VALUES (new.host, 1), ('', 1)
    ON CONFLICT (host) DO UPDATE SET n = n + 1;
END;
CREATE TABLE IF NOT EXISTS series_refused (
    cap TEXT PRIMARY KEY,   -- one of CAPS
    batches INTEGER NOT NULL
) WITHOUT ROWID;
"""
# Columns added to a table after it first shipped: a file from before them gets them by
# ALTER TABLE (CREATE TABLE IF NOT EXISTS leaves an existing table as it is).
ADDED_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "series_hosts": (
        ("previous_seen", "REAL"),
        ("interval", "REAL"),
        ("goodbye", "INTEGER NOT NULL DEFAULT 0"),
    ),
}
# The caps on series, as series_refused names them: per host ([store] max_series_per_host)
# and all hosts together ([store] max_series).
CAPS = ("per_host", "total")
ALL_HOSTS = ""  # series_counts' row for every host together


def statements(script: str) -> list[str]:
    """The script's statements one by one (a trigger's body holds semicolons of its own)."""
    found, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            found.append(current.strip())
            current = ""
    return found


def apply(db: sqlite3.Connection) -> None:
    """Create what is missing; call inside a write transaction.

    A file from before ``series_counts`` has series its trigger never counted: they are
    counted once, here, so the caps hold for them too. A table from before one of
    ``ADDED_COLUMNS`` gets the column (``NULL`` or its default in existing rows).
    """
    counted = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = 'series_latest_counted'"
    ).fetchone()
    for statement in statements(SCHEMA):
        db.execute(statement)
    for table, columns in ADDED_COLUMNS.items():
        have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        for name, declaration in columns:
            if name not in have:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {declaration}")
    if not counted:
        recount(db)


def recount(db: sqlite3.Connection) -> None:
    """Count every host's series again (after pruning forgot some, or for an older file)."""
    db.execute("DELETE FROM series_counts")
    db.execute("INSERT INTO series_counts (host, n) SELECT host, count(*) FROM series_latest GROUP BY host")
    db.execute("INSERT INTO series_counts (host, n) SELECT ?, count(*) FROM series_latest", (ALL_HOSTS,))


__all__ = ["ADDED_COLUMNS", "ALL_HOSTS", "CAPS", "SCHEMA", "apply", "recount", "statements"]
