"""Where the series store's SQL runs: the service's SQLite file, or PostgreSQL shared by
several nodes (issue 16). The store's logic (``store.py``) is written once, in the SQL both
engines share; an engine gives it connections, the write transaction and its lock, and the
schema.

- :class:`SqliteEngine`: a connection per thread on the file; one writer at a time across
  threads and worker processes (a blocking ``flock``, then ``BEGIN IMMEDIATE``); the schema
  made (and an older file converted) when the store opens, as each worker may be first.
- :class:`PostgresEngine`: a connection per thread (psycopg 3, sync: the store's methods run
  in worker threads), ``?`` placeholders turned into ``%s``; a write transaction takes a
  transaction-level advisory lock (:data:`SERIES_LOCK`), so every worker of every node writes
  the series one at a time, as on SQLite: a batch's ``(host, run, seq)`` is checked and added
  to ``series_acked`` atomically, whichever node a re-sent batch reaches. The schema is made
  and migrated by ``hostpulse init`` / ``hostpulse migrate`` (``hostpulse.store_pg``), never
  when a worker opens the store: a node whose database is behind refuses to start.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from hostpulse import sqlite
from hostpulse.series import schema

if TYPE_CHECKING:
    from hostpulse.store_pg import PgDb

try:  # Unix: writers of several processes queue on a file lock
    import fcntl
except ImportError:  # pragma: no cover - Windows: SQLite's busy timeout alone
    fcntl = None  # type: ignore[assignment]

SERIES_LOCK = 0x73657269  # "seri": the advisory lock key of the series store's writes (PostgreSQL)


class Db(Protocol):
    """What the store's logic needs of a connection: sqlite3's, or psycopg's behind
    :class:`hostpulse.store_pg.PgDb`."""

    @property
    def in_transaction(self) -> bool: ...

    def execute(self, sql: str, params: Any = ..., /) -> Any: ...

    def executemany(self, sql: str, params: Any, /) -> Any: ...


class Engine(Protocol):
    dialect: str  # "sqlite" | "postgresql"
    location: str  # what the store is on, for messages (never a password)
    max_group: int  # batches one group commit may hold (each has its SAVEPOINT)

    def connection(self) -> Db:
        """This thread's connection."""
        ...

    def transaction(self) -> Any:
        """A context manager: the write lock and a transaction on this thread's connection."""
        ...

    def prepare(self, migrate_limit: float) -> None:
        """Make the schema ready at open (SQLite), or check that it is (PostgreSQL)."""
        ...

    def close(self) -> None:
        """Close every thread's connection (once no call is running)."""
        ...


def is_postgres_url(where: Path | str) -> bool:
    return isinstance(where, str) and where.split(":", 1)[0].lower() in ("postgresql", "postgres")


def open_engine(where: Path | str) -> Engine:
    """A PostgreSQL URL (``postgresql://``, ``postgres://``), else the SQLite file's path."""
    if is_postgres_url(where):
        return PostgresEngine(str(where))
    return SqliteEngine(Path(where))


class _Connections:
    """A connection per thread, and every one of them, to close them all at the end."""

    def __init__(self) -> None:
        self.local = threading.local()
        self.all: list[Any] = []
        self.lock = threading.Lock()

    def add(self, db: Any) -> None:
        self.local.db = db
        with self.lock:
            self.all.append(db)

    def take_all(self) -> list[Any]:
        with self.lock:
            found, self.all = self.all, []
        self.local = threading.local()
        return found


class SqliteEngine:
    dialect = "sqlite"
    max_group = 512

    def __init__(self, path: Path) -> None:
        self.path = path
        self.location = str(path)
        self._connections = _Connections()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer_fd: int | None = (
            os.open(self.path.with_name(self.path.name + ".series-lock"), os.O_RDWR | os.O_CREAT, 0o600)
            if fcntl is not None
            else None
        )

    def connection(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._connections.local, "db", None)
        if db is None:
            db = sqlite.connect(self.path)
            # A statement inside a batch's SAVEPOINT keeps a statement journal: in memory,
            # not a temporary file (that file cost 40% more CPU per batch here).
            db.execute("PRAGMA temp_store=MEMORY")
            self._connections.add(db)
        return db

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One writer at a time across worker processes, handed over at once, then ``BEGIN
        IMMEDIATE`` (the write lock up front: no upgrade deadlock).

        SQLite's own busy handler makes a waiting writer sleep (1, 2, 5 ... 100 ms) and
        poll: with two Hypercorn workers committing all the time, that sleeping was most
        of the acknowledgement latency. A blocking ``flock`` wakes the next writer as soon
        as the lock is free.
        """
        if self._writer_fd is None:
            with sqlite.immediate(self.connection()) as db:
                yield db
            return
        fcntl.flock(self._writer_fd, fcntl.LOCK_EX)
        try:
            with sqlite.immediate(self.connection()) as db:
                yield db
        finally:
            fcntl.flock(self._writer_fd, fcntl.LOCK_UN)

    def prepare(self, migrate_limit: float) -> None:
        with self.transaction() as db:
            schema.apply(db, migrate_limit)

    def close(self) -> None:
        for db in self._connections.take_all():
            db.close()
        if self._writer_fd is not None:
            os.close(self._writer_fd)
            self._writer_fd = None


class PostgresEngine:
    dialect = "postgresql"
    # PostgreSQL caches 64 subtransactions (savepoints) of a transaction; past that, every
    # other session's snapshot looks them up in pg_subtrans, and a burst of agents made the
    # groups, and that cost, grow together (bench.agents --store postgresql).
    max_group = 64

    def __init__(self, url: str) -> None:
        import psycopg  # the server extra only

        from hostpulse import store_pg

        self._pg = store_pg
        self._operational_error = psycopg.OperationalError
        self.url = url
        self.location = "the PostgreSQL store"
        self._connections = _Connections()

    def connection(self) -> PgDb:
        """This thread's connection; a new one after the server closed it (a restart)."""
        db: PgDb | None = getattr(self._connections.local, "db", None)
        if db is None or db.conn.closed or db.conn.broken:
            db = self._pg.PgDb(self._pg.connect(self.url))
            self._connections.add(db)
        return db

    @contextmanager
    def transaction(self) -> Iterator[PgDb]:
        """``BEGIN``, then the series' advisory lock, held to the commit (or rollback).

        A connection the server ended since its last use is found out at ``BEGIN``, when
        nothing was done yet: one new connection is tried then."""
        db = self.connection()
        try:
            db.conn.execute("BEGIN")
        except self._operational_error:
            if not db.conn.broken:
                raise
            db = self.connection()
            db.conn.execute("BEGIN")
        try:
            db.conn.execute("SELECT pg_advisory_xact_lock(%s)", (SERIES_LOCK,))
            yield db
        except BaseException:
            if not db.conn.broken and db.in_transaction:
                db.conn.execute("ROLLBACK")
            raise
        db.conn.execute("COMMIT")

    def prepare(self, migrate_limit: float) -> None:
        """The series tables must be there: ``hostpulse init`` / ``hostpulse migrate`` make them."""
        self._pg.require_schema(self.connection().conn, self._pg.SERIES_VERSION)

    def close(self) -> None:
        for db in self._connections.take_all():
            db.conn.close()


__all__ = ["SERIES_LOCK", "Db", "Engine", "PostgresEngine", "SqliteEngine", "is_postgres_url", "open_engine"]
