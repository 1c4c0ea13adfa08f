"""The service store (jobs, legacy posts, the health probe), shared by every worker process
and, on PostgreSQL, by every node.

Jobs live here rather than in a worker's memory, so that ``poll`` answers correctly
whichever Hypercorn worker (or node) receives it. Methods are synchronous; the async port
calls them in a worker thread. Each thread keeps its own connection.

:class:`Store` is the interface and its logic, written once, on the embedded SQLite file
(the default engine); :class:`hostpulse.store_pg.PostgresStore` runs the same logic on
PostgreSQL, replacing only the engine: connections, transactions, the schema and its
migrations. :func:`hostpulse.store_url.open_store` picks one from ``[store] url``. The SQL
both run is the subset the two engines share (``?`` placeholders, turned into ``%s`` for
psycopg; ``ON CONFLICT`` upserts; ``RETURNING``).

Legacy posts are kept ``legacy_retention`` seconds (``[store] legacy_retention``): older
ones are deleted when the store opens and with each new post, so both apps, which share
this code, keep the table bounded without a background task.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from hostpulse import sqlite
from hostpulse.settings import Store as StoreSettings

SCHEMA = """
CREATE TABLE IF NOT EXISTS legacy_posts (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL,
    received REAL NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS legacy_posts_received ON legacy_posts (received);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    argv TEXT NOT NULL,
    status TEXT NOT NULL,          -- running | finished
    returncode INTEGER,
    started REAL NOT NULL,
    deadline REAL NOT NULL,
    finished REAL,
    next_line INTEGER NOT NULL DEFAULT 0,
    polled INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS job_lines (
    job_id TEXT NOT NULL,
    n INTEGER NOT NULL,
    line TEXT NOT NULL,
    PRIMARY KEY (job_id, n)
);
CREATE TABLE IF NOT EXISTS health (
    key TEXT PRIMARY KEY,
    at REAL NOT NULL
);
"""
# The version both engines' schemas are at: PostgreSQL's migrations (hostpulse/store_pg.py)
# record it; 2 and 3 added the series tables, tokens and the allow-list there (SQLite keeps
# the series in its file from hostpulse/series/schema.py, tokens in config.toml).
SCHEMA_VERSION = 3

# A job still "running" this long after its deadline lost its worker (killed, crashed):
# the worker that owned it would have killed it at the deadline and recorded the end.
ORPHAN_GRACE = 10.0
ORPHAN_RETURNCODE = -9


class StoreError(RuntimeError):
    """The store cannot be opened or written."""


class Db(Protocol):
    """What the shared logic needs of a connection: sqlite3's, or psycopg's behind an adapter."""

    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Any: ...

    def executemany(self, sql: str, params: Sequence[Sequence[Any]], /) -> Any: ...


class Store:
    """The service store on the embedded SQLite file, and the interface every engine has."""

    engine = "sqlite"

    def __init__(self, path: Path, legacy_retention: float = StoreSettings.legacy_retention) -> None:
        """``legacy_retention``: seconds a legacy post is kept (0 or ``math.inf``: forever)."""
        self.path = Path(path)
        self.legacy_retention = legacy_retention if legacy_retention > 0 else math.inf
        self._local = threading.local()
        self._open()
        if not math.isinf(self.legacy_retention):
            with self.transaction() as db:
                self._expire_legacy_posts(db, time.time())

    def _open(self) -> None:
        """Make the schema (SQLite: at every open, idempotent, as the file may be new)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._sqlite().executescript(SCHEMA)

    def _connect(self) -> Db:
        return self._sqlite()

    def _sqlite(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite.connect(self.path)
            self._local.db = db
        return db

    @property
    def location(self) -> str:
        """Where the store is, for a process that opens it again (the jobs' guard):
        :func:`hostpulse.store_url.open_location` takes it."""
        return str(self.path)

    def transaction(self) -> AbstractContextManager[Db]:
        """A write transaction holding the store's write lock: check-then-write is atomic."""
        return sqlite.immediate(self._sqlite())

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    # health -------------------------------------------------------------------------

    def check_writable(self, timeout_ms: int = 2000) -> bool:
        """A real write, waiting at most ``timeout_ms`` for the lock: a probe must answer soon."""
        try:
            db = self._sqlite()
            db.execute(f"PRAGMA busy_timeout={int(timeout_ms)}")
            try:
                with self.transaction():
                    self._probe(db)
            finally:
                db.execute(f"PRAGMA busy_timeout={sqlite.BUSY_TIMEOUT_MS}")
        except sqlite3.Error:
            self.close()
            return False
        return True

    @staticmethod
    def _probe(db: Db) -> None:
        db.execute(
            "INSERT INTO health (key, at) VALUES ('probe', ?) ON CONFLICT (key) DO UPDATE SET at = excluded.at",
            (time.time(),),
        )

    # legacy posts (seed 000) ----------------------------------------------------------

    def _expire_legacy_posts(self, db: Db, now: float) -> None:
        if not math.isinf(self.legacy_retention):
            db.execute("DELETE FROM legacy_posts WHERE received < ?", (now - self.legacy_retention,))

    def add_legacy_post(self, username: str, body: str) -> int:
        """Keep the post; forget those older than the retention in the same transaction."""
        now = time.time()
        with self.transaction() as db:
            self._expire_legacy_posts(db, now)
            (post_id,) = db.execute(
                "INSERT INTO legacy_posts (username, received, body) VALUES (?, ?, ?) RETURNING id",
                (username, now, body),
            ).fetchone()
            return int(post_id)

    def legacy_posts(self) -> list[dict[str, Any]]:
        rows = self._connect().execute("SELECT id, username, received, body FROM legacy_posts ORDER BY id")
        return [dict(zip(("id", "username", "received", "body"), row)) for row in rows]

    # jobs (seed 004) ------------------------------------------------------------------

    def _reap_orphans(self, db: Db, now: float) -> None:
        db.execute(
            "UPDATE jobs SET status = 'finished', returncode = ?, finished = ? "
            "WHERE status = 'running' AND deadline + ? < ?",
            (ORPHAN_RETURNCODE, now, ORPHAN_GRACE, now),
        )

    def start_job(self, job_id: str, argv: list[str], limit: int, timeout: float) -> bool:
        """Record a new running job unless the limit is reached or this id still runs."""
        now = time.time()
        with self.transaction() as db:
            self._reap_orphans(db, now)
            (running,) = db.execute("SELECT count(*) FROM jobs WHERE status = 'running'").fetchone()
            same = db.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if running >= limit or (same and same[0] == "running"):
                return False
            db.execute("DELETE FROM job_lines WHERE job_id = ?", (job_id,))
            db.execute(  # a finished job of the same id starts afresh: every column reset
                "INSERT INTO jobs (id, argv, status, started, deadline) VALUES (?, ?, 'running', ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET argv = excluded.argv, status = 'running', returncode = NULL, "
                "started = excluded.started, deadline = excluded.deadline, finished = NULL, next_line = 0, polled = 0",
                (job_id, json.dumps(argv), now, now + timeout),
            )
        return True

    def add_job_lines(self, job_id: str, lines: list[str], keep: int) -> None:
        """Append output; only the newest ``keep`` lines can ever be polled, so older go."""
        if not lines:
            return
        with self.transaction() as db:
            (start,) = db.execute("SELECT next_line FROM jobs WHERE id = ?", (job_id,)).fetchone()
            end = start + len(lines)
            db.executemany(
                "INSERT INTO job_lines (job_id, n, line) VALUES (?, ?, ?)",
                [(job_id, start + i, line) for i, line in enumerate(lines) if start + i >= end - keep],
            )
            db.execute("DELETE FROM job_lines WHERE job_id = ? AND n < ?", (job_id, end - keep))
            db.execute("UPDATE jobs SET next_line = ? WHERE id = ?", (end, job_id))

    def finish_job(self, job_id: str, returncode: int) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE jobs SET status = 'finished', returncode = ?, finished = ? WHERE id = ?",
                (returncode, time.time(), job_id),
            )

    def poll_job(self, job_id: str, line_num: int) -> dict[str, Any] | None:
        """The job's state and the newest ``line_num`` lines not yet polled (then marked polled),
        running or finished (a job's last lines, written after the last poll, are still shown
        once: issue 11 item 13)."""
        with self.transaction() as db:
            self._reap_orphans(db, time.time())
            row = db.execute("SELECT status, returncode, polled FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return None
            status, returncode, polled = row
            lines = db.execute(
                "SELECT n, line FROM job_lines WHERE job_id = ? AND n >= ? ORDER BY n DESC LIMIT ?",
                (job_id, polled, line_num),
            ).fetchall()
            if lines:
                db.execute("UPDATE jobs SET polled = ? WHERE id = ?", (lines[0][0] + 1, job_id))
            output = "\n".join(line for _, line in reversed(lines))
            if status == "finished":
                return {"status": "finished", "returncode": returncode, "output": output}
            return {"status": "running", "output": output}
