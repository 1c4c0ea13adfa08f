"""Batches and raw reads shared by the series store's tests."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from hostpulse.samples import Batch, Sample
from hostpulse.series import SeriesStore

# A row breaking a constraint, on either engine
INTEGRITY_ERRORS: tuple[type[Exception], ...] = (sqlite3.IntegrityError,)
try:
    import psycopg

    INTEGRITY_ERRORS += (psycopg.IntegrityError,)
except ImportError:  # pragma: no cover - the server extra installs it
    pass


def batch(
    seq: int,
    host: str = "web-1",
    run: str = "run1",
    ts: float = 1000.0,
    values: dict[str, float] | None = None,
    dropped: int = 0,
    n: int = 1,
) -> Batch:
    """A valid batch of ``n`` samples one second apart (``values`` default: its seq)."""
    samples = tuple(Sample(ts + i, dict(values or {"cpu_percent": float(seq)})) for i in range(n))
    return Batch(host, run, seq, samples, dropped)


def rows(where: Path | SeriesStore, sql: str) -> list[tuple[Any, ...]]:
    """What another connection (another process, or node) reads: from a SQLite file, or from
    the store's database, whichever engine it is on."""
    if isinstance(where, SeriesStore) and where.path is None:
        import psycopg

        from hostpulse.series.engine import PostgresEngine

        assert isinstance(where.engine, PostgresEngine)
        with psycopg.connect(where.engine.url) as db:
            return [tuple(row) for row in db.execute(sql).fetchall()]
    path = where.path if isinstance(where, SeriesStore) else where
    assert path is not None
    with sqlite3.connect(path) as db:
        return db.execute(sql).fetchall()
