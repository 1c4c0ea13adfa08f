"""Group commit: batches submitted from one event loop, written together, acked after the commit.

A commit under ``synchronous=FULL`` waits for the disk; one transaction for every batch
that arrived meanwhile waits once for all of them (SQLite has one writer anyway).
"""

from __future__ import annotations

import asyncio

from hostpulse.samples import Batch
from hostpulse.series.store import SeriesStore


class GroupCommitter:
    """Gathers batches submitted from one event loop and commits them together.

    ``await submit(batch)`` returns the seq to acknowledge only after the transaction
    holding the batch has committed; :meth:`enqueue` is the same without a coroutine, for
    a caller that answers from a callback (``/ws/agent``). Submissions are collected for
    up to ``max_delay`` seconds or ``max_batches`` batches, then one worker-thread call of
    :meth:`SeriesStore.store_batches` writes them all; while it runs, new submissions
    queue up for the next commit. One commit at a time: SQLite has one writer anyway.

    The wait is a timer and a future, not ``asyncio.wait_for`` on an event, which made a
    task per commit; with ``enqueue`` a batch costs the loop no task switch of its own
    (README, "Ingest cost").

    ``max_delay`` is 20 ms: each commit hands its group to a worker thread and back, ~53 us
    whatever its size (``python -m bench.agents --micro``: 53 us a batch alone, 5 us a
    batch in groups of 20). At 1,000 batches/s a 2 ms wait made groups of 2-3 and the
    hand-offs a quarter of a batch's cost; 20 ms makes groups of ~20 and adds at most
    20 ms to an ack (``--cost``: 0.255 ms a batch at 2 ms, 0.184 at 10 ms, 0.162 at 25 ms).
    """

    def __init__(self, store: SeriesStore, max_batches: int = 512, max_delay: float = 0.02) -> None:
        self.store = store
        self.max_batches = max_batches
        self.max_delay = max_delay
        self._queue: list[tuple[Batch, asyncio.Future[int]]] = []
        self._wake: asyncio.Future[None] | None = None  # set when the running task should look at the queue
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.commits = 0  # transactions run (for tests and stats)

    def enqueue(self, batch: Batch) -> asyncio.Future[int]:
        """Queue the batch; the future gets its seq once it is committed, or the batch's own
        error when it failed alone (:class:`~hostpulse.series.store.SeriesLimitError`, ...),
        or the transaction's. Cancelling the future does not take the batch back."""
        if self._closed:
            raise RuntimeError("the group committer is closed")
        loop = asyncio.get_running_loop()
        if self._task is None:
            self._task = loop.create_task(self._run(), name="series-group-commit")
        future: asyncio.Future[int] = loop.create_future()
        self._queue.append((batch, future))
        if len(self._queue) == 1 or len(self._queue) >= self.max_batches:
            self._poke()
        return future

    async def submit(self, batch: Batch) -> int:
        """:meth:`enqueue` and wait. Shielded: a caller that goes away (closed socket) does
        not cancel the batch's commit."""
        return await asyncio.shield(self.enqueue(batch))

    def _poke(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def _sleep(self, delay: float | None) -> None:
        """Until :meth:`_poke` (a first batch, a full queue, close) or ``delay`` seconds."""
        loop = asyncio.get_running_loop()
        self._wake = loop.create_future()
        timer = None if delay is None else loop.call_later(delay, self._poke)
        try:
            await self._wake
        finally:
            self._wake = None
            if timer is not None:
                timer.cancel()

    async def _run(self) -> None:
        while True:
            if not self._queue:
                if self._closed:
                    return
                await self._sleep(None)
                continue
            if self.max_delay > 0 and len(self._queue) < self.max_batches and not self._closed:
                await self._sleep(self.max_delay)  # let more batches join this commit
            taken, self._queue = self._queue[: self.max_batches], self._queue[self.max_batches :]
            await self._commit(taken)

    async def _commit(self, taken: list[tuple[Batch, asyncio.Future[int]]]) -> None:
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(None, self.store.store_batches, [b for b, _ in taken])
        except Exception as exc:  # the transaction failed: every caller of this commit hears it
            for _, future in taken:
                if not future.done():
                    future.set_exception(exc)
            return
        finally:
            self.commits += 1
        for (_, future), result in zip(taken, results):
            if future.done():
                continue
            if isinstance(result, Exception):  # this batch alone failed; the others committed
                future.set_exception(result)
            else:
                future.set_result(result)

    async def close(self) -> None:
        """Commit what is queued, then stop (callers waiting on a commit get their answer)."""
        self._closed = True
        if self._task is None:
            return
        self._poke()
        await self._task
        self._task = None


__all__ = ["GroupCommitter"]
