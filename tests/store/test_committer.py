"""The group committer: many submissions, one transaction, each acked only after it."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from hostpulse.samples import Batch, Sample
from hostpulse.series import GroupCommitter, SeriesStore
from tests.store.support import INTEGRITY_ERRORS, batch, rows


async def test_group_committer_commits_many_submissions_together(store: SeriesStore) -> None:
    committer = GroupCommitter(store, max_batches=1000, max_delay=0.05)
    acks = await asyncio.gather(*(committer.submit(batch(s)) for s in range(100)))
    assert acks == list(range(100))
    assert committer.commits < 100  # grouped: fewer transactions than batches
    assert len(store.batch_keys()) == 100
    await committer.close()


async def test_group_committer_respects_max_batches(store: SeriesStore) -> None:
    committer = GroupCommitter(store, max_batches=10, max_delay=0.2)
    acks = await asyncio.gather(*(committer.submit(batch(s)) for s in range(35)))
    assert acks == list(range(35))
    assert committer.commits >= 4  # never more than 10 per transaction
    await committer.close()


async def test_ack_only_after_the_commit_is_visible(store: SeriesStore) -> None:
    committer = GroupCommitter(store)
    ack = await committer.submit(batch(5))
    # Another connection (another process would see the same) finds the batch already.
    assert ack == 5
    assert rows(store, "SELECT lo, hi FROM series_acked") == [(5, 5)]
    assert await committer.submit(batch(5)) == 5
    assert store.sample_count() == 1
    await committer.close()


async def test_a_failed_batch_reaches_only_its_caller(store: SeriesStore) -> None:
    committer = GroupCommitter(store, max_delay=0.05)
    bad = Batch(None, "run1", 2, (Sample(1.0, {"a": 1.0}),))  # type: ignore[arg-type]
    results = await asyncio.gather(committer.submit(batch(1)), committer.submit(bad), return_exceptions=True)
    assert results[0] == 1 and isinstance(results[1], INTEGRITY_ERRORS)
    assert await committer.submit(batch(3)) == 3
    assert store.batch_keys() == [("web-1", "run1", 1), ("web-1", "run1", 3)]
    await committer.close()


async def test_failed_commit_reaches_every_caller_and_committer_recovers(
    store: SeriesStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    committer = GroupCommitter(store, max_delay=0.05)

    def full(*args: object, **kwargs: object) -> list[int]:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(store, "store_batches", full)
    results = await asyncio.gather(committer.submit(batch(1)), committer.submit(batch(2)), return_exceptions=True)
    assert all(isinstance(r, sqlite3.OperationalError) for r in results)
    monkeypatch.undo()
    assert await committer.submit(batch(3)) == 3
    assert store.batch_keys() == [("web-1", "run1", 3)]
    await committer.close()


async def test_close_commits_what_is_queued(store: SeriesStore) -> None:
    committer = GroupCommitter(store, max_delay=0.2)
    pending = [asyncio.ensure_future(committer.submit(batch(s))) for s in range(5)]
    await asyncio.sleep(0)
    await committer.close()
    assert await asyncio.gather(*pending) == list(range(5))
    assert len(store.batch_keys()) == 5
    with pytest.raises(RuntimeError):
        await committer.submit(batch(9))


async def test_a_cancelled_caller_does_not_cancel_the_commit(store: SeriesStore) -> None:
    committer = GroupCommitter(store, max_delay=0.05)
    waiting = asyncio.ensure_future(committer.submit(batch(1)))
    other = asyncio.ensure_future(committer.submit(batch(2)))
    await asyncio.sleep(0)
    waiting.cancel()
    assert await other == 2
    await committer.close()
    assert store.batch_keys() == [("web-1", "run1", 1), ("web-1", "run1", 2)]
