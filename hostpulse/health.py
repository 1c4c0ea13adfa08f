"""The ``/healthz`` answer: alive, and whether the store can be written, with no write.

``/healthz`` is public, so it must cost no disk write: it used to insert a row and commit
(an fsync) per call, and 50 unauthenticated clients polling it cut ingest from 691 to 44
batches/s. Now each worker keeps the result of its last check for :data:`MAX_AGE`
seconds and answers every call in between from it. A check writes nothing:

- a commit by anyone since the last check (SQLite's ``data_version`` moved) proves the
  store was written, and is taken as the answer;
- else the write lock is taken and released (``BEGIN IMMEDIATE``; ``ROLLBACK``: a lock in
  the shared-memory index, no page written), waiting at most :data:`LOCK_TIMEOUT`;
- the file system must be mounted read-write, have free space, and let the service
  write its folder and the database's files.

While one check runs, other calls answer the previous result (at most ``MAX_AGE +
LOCK_TIMEOUT`` old) rather than queue behind it.

On PostgreSQL (``[store] url``, issue 16) :class:`PostgresHealth` checks the database every
node writes, with no write either: the server is reachable and not a read-only standby, and
the store's write lock (its advisory lock) is taken and released within ``LOCK_TIMEOUT``.
:func:`health_of` picks the one ``[store] url`` names.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from hostpulse.errorcodes import SERVICE_UNAVAILABLE
from hostpulse.settings import Settings, store_engine

MAX_AGE = 1.0  # seconds a check's result is reused
LOCK_TIMEOUT = 2.0  # seconds a check waits for the write lock (a probe must answer soon)


def health_answer(writable: bool) -> tuple[dict[str, Any], int]:
    if writable:
        return {"status": "ok", "store": "ok"}, 200
    return {
        "error": SERVICE_UNAVAILABLE,
        "message": "the store cannot be written",
        "status": "error",
        "store": "unavailable",
    }, 503


class StoreHealth:
    """Whether the SQLite file at ``path`` can be written, checked without writing it."""

    def __init__(self, path: Path, max_age: float = MAX_AGE, lock_timeout: float = LOCK_TIMEOUT) -> None:
        self.path = Path(path)
        self.max_age = max_age
        self.lock_timeout = lock_timeout
        self._result: tuple[bool, float] | None = None  # (writable, time.monotonic() of the check)
        self._checking = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._data_version: int | None = None

    def fresh(self) -> bool | None:
        """The last result if it is recent enough, or while another check runs; else None."""
        result = self._result
        if result is None:
            return None
        if time.monotonic() - result[1] < self.max_age or self._checking.locked():
            return result[0]
        return None

    def writable(self) -> bool:
        """The answer, checking (blocking, up to ``lock_timeout``) only when the last is stale."""
        known = self.fresh()
        if known is not None:
            return known
        with self._checking:
            result = self._result
            if result is not None and time.monotonic() - result[1] < self.max_age:
                return result[0]
            ok = self._check()
            self._result = (ok, time.monotonic())
            return ok

    # -- the check (one at a time: under self._checking) ----------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            # mode=rw: a missing file is an error, never a new empty database.
            self._db = sqlite3.connect(
                f"file:{self.path}?mode=rw",
                uri=True,
                timeout=self.lock_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
            self._data_version = None
        return self._db

    def _check(self) -> bool:
        try:
            if not self._file_system_writable():
                return False
            db = self._connection()
            (version,) = db.execute("PRAGMA data_version").fetchone()
            committed = self._data_version is not None and version != self._data_version
            self._data_version = version
            if not committed:
                db.execute("BEGIN IMMEDIATE")
                db.execute("ROLLBACK")
            return True
        except (OSError, sqlite3.Error):
            if self._db is not None:
                self._db.close()
                self._db = None
            return False

    def _file_system_writable(self) -> bool:
        folder = self.path.parent
        if hasattr(os, "statvfs"):  # Unix
            st = os.statvfs(folder)
            if st.f_flag & os.ST_RDONLY:
                return False
            if (st.f_bfree if os.geteuid() == 0 else st.f_bavail) == 0:  # root may use the reserve
                return False
        files = [folder, self.path] + [self.path.with_name(self.path.name + s) for s in ("-wal", "-shm")]
        return all(os.access(p, os.W_OK) for p in files if p == folder or p.exists())


class PostgresHealth(StoreHealth):
    """Whether the PostgreSQL store at ``url`` can be written, checked without writing it."""

    def __init__(self, url: str, max_age: float = MAX_AGE, lock_timeout: float = LOCK_TIMEOUT) -> None:
        super().__init__(Path("."), max_age, lock_timeout)
        self.url = url
        self._pg: Any = None  # psycopg.Connection, made at the first check

    def _check(self) -> bool:
        import psycopg

        from hostpulse.store_pg import WRITE_LOCK

        try:
            if self._pg is None or self._pg.closed or self._pg.broken:
                self._pg = psycopg.connect(self.url, autocommit=True, connect_timeout=max(1, round(self.lock_timeout)))
            with self._pg.transaction(force_rollback=True):
                self._pg.execute(f"SET LOCAL lock_timeout = {int(self.lock_timeout * 1000)}")
                self._pg.execute(f"SET LOCAL statement_timeout = {int(self.lock_timeout * 1000)}")
                row = self._pg.execute("SELECT pg_is_in_recovery() OR current_setting('transaction_read_only') = 'on'")
                if row.fetchone()[0]:  # a standby, or a read-only database
                    return False
                self._pg.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            return True
        except psycopg.Error:
            if self._pg is not None:
                self._pg.close()
                self._pg = None
            return False


def health_of(settings: Settings) -> StoreHealth:
    """The health check of the store ``[store] url`` names."""
    if store_engine(settings.store.url) == "postgresql":
        return PostgresHealth(settings.store.url)
    return StoreHealth(settings.db_path)
