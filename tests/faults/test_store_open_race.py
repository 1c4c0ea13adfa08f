"""Workers starting together on a fresh SQLite file: every one opens the store.

Two Hypercorn workers booting at once on a new instance once failed here with
``database is locked`` from ``PRAGMA journal_mode=WAL`` (SQLite returns SQLITE_BUSY for
that switch without waiting on the busy handler), and the server exited."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

WORKERS = 6
ROUNDS = 8


def _open(path: str, start: multiprocessing.synchronize.Barrier, errors: multiprocessing.Queue) -> None:
    from hostpulse.series import SeriesStore
    from hostpulse.store import Store

    start.wait()
    try:
        Store(Path(path))
        SeriesStore(Path(path), 3600.0)
    except Exception as exc:  # reported to the test, which fails with it
        errors.put(f"{type(exc).__name__}: {exc}")


def test_workers_opening_a_fresh_store_at_once_all_succeed(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    errors = ctx.Queue()
    for round_ in range(ROUNDS):
        path = str(tmp_path / f"fresh-{round_}.sqlite3")
        start = ctx.Barrier(WORKERS)
        procs = [ctx.Process(target=_open, args=(path, start, errors)) for _ in range(WORKERS)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
            assert p.exitcode == 0
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert found == []
