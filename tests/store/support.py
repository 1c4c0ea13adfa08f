"""Batches and raw reads shared by the series store's tests."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from hostpulse.samples import Batch, Sample


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


def rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    """What another connection (another process) reads from the file."""
    with sqlite3.connect(path) as db:
        return db.execute(sql).fetchall()
