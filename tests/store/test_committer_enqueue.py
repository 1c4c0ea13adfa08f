"""The group committer's callback form (issue 12, item 4): ``enqueue`` gives a future, the
wait is a timer, a full group goes at once, and a batch handed over stays handed over."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import pytest

from hostpulse.samples import Batch
from hostpulse.series import GroupCommitter
from tests.store.support import batch


class FakeStore:
    """Records each commit's seqs; a seq in ``failing`` fails alone, as a SAVEPOINT would."""

    def __init__(self, failing: frozenset[int] = frozenset()) -> None:
        self.commits: list[list[int]] = []
        self.failing = failing

    def store_batches(self, batches: Sequence[Batch], now: float | None = None) -> list[int | Exception]:
        self.commits.append([b.seq for b in batches])
        return [ValueError(f"bad {b.seq}") if b.seq in self.failing else b.seq for b in batches]


async def test_enqueue_answers_through_the_future_in_one_group() -> None:
    store = FakeStore(failing=frozenset({3}))
    committer = GroupCommitter(store, max_delay=0.05)  # type: ignore[arg-type]
    futures = [committer.enqueue(batch(seq)) for seq in range(6)]
    done = await asyncio.gather(*futures, return_exceptions=True)
    assert [d if isinstance(d, int) else str(d) for d in done] == [0, 1, 2, "bad 3", 4, 5]
    assert store.commits == [[0, 1, 2, 3, 4, 5]]  # one transaction for all of them
    await committer.close()


async def test_a_full_group_does_not_wait_for_the_delay() -> None:
    store = FakeStore()
    committer = GroupCommitter(store, max_batches=10, max_delay=30.0)  # type: ignore[arg-type]
    started = time.monotonic()
    futures = [committer.enqueue(batch(seq)) for seq in range(25)]
    assert await asyncio.gather(*futures[:20]) == list(range(20))  # two full groups, at once
    assert time.monotonic() - started < 5
    await committer.close()  # the last 5 (a group not full) go at close, not after 30 s
    assert await asyncio.gather(*futures[20:]) == list(range(20, 25))
    assert time.monotonic() - started < 5
    assert store.commits[:2] == [list(range(10)), list(range(10, 20))]


async def test_a_lone_batch_waits_at_most_the_delay() -> None:
    store = FakeStore()
    committer = GroupCommitter(store, max_delay=0.02)  # type: ignore[arg-type]
    for seq in range(3):  # idle in between: each wakes the committer
        started = time.monotonic()
        assert await committer.enqueue(batch(seq)) == seq
        assert time.monotonic() - started < 2
        await asyncio.sleep(0.05)
    assert store.commits == [[0], [1], [2]]
    await committer.close()


async def test_a_cancelled_future_does_not_take_its_batch_back() -> None:
    store = FakeStore()
    committer = GroupCommitter(store, max_delay=0.05)  # type: ignore[arg-type]
    gone = committer.enqueue(batch(1))
    kept = committer.enqueue(batch(2))
    gone.cancel()  # the client left
    assert await kept == 2
    assert store.commits == [[1, 2]]
    await committer.close()
    with pytest.raises(RuntimeError):
        committer.enqueue(batch(3))
