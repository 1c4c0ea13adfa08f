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
    holding the batch has committed. Submissions are collected for up to ``max_delay``
    seconds or ``max_batches`` batches, then one worker-thread call of
    :meth:`SeriesStore.store_batches` writes them all; while it runs, new submissions
    queue up for the next commit. One commit at a time: SQLite has one writer anyway.
    """

    def __init__(self, store: SeriesStore, max_batches: int = 512, max_delay: float = 0.002) -> None:
        self.store = store
        self.max_batches = max_batches
        self.max_delay = max_delay
        self._queue: list[tuple[Batch, asyncio.Future[int]]] = []
        self._wake: asyncio.Event | None = None
        self._full: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.commits = 0  # transactions run (for tests and stats)

    def _start(self) -> None:
        self._wake = asyncio.Event()
        self._full = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="series-group-commit")

    async def submit(self, batch: Batch) -> int:
        """Queue the batch; return its seq once it is committed. Raises the batch's own error
        when it failed alone (:class:`~hostpulse.series.store.SeriesLimitError`, ...), or the
        transaction's."""
        if self._closed:
            raise RuntimeError("the group committer is closed")
        if self._task is None:
            self._start()
        assert self._wake is not None and self._full is not None
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._queue.append((batch, future))
        self._wake.set()
        if len(self._queue) >= self.max_batches:
            self._full.set()
        # Shielded: a caller that goes away (closed socket) does not cancel the others' commit.
        return await asyncio.shield(future)

    async def _run(self) -> None:
        assert self._wake is not None and self._full is not None
        while True:
            if not self._queue:
                if self._closed:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            if self.max_delay > 0 and len(self._queue) < self.max_batches and not self._closed:
                try:
                    await asyncio.wait_for(self._full.wait(), self.max_delay)
                except TimeoutError:
                    pass
            taken, self._queue = self._queue[: self.max_batches], self._queue[self.max_batches :]
            if len(self._queue) < self.max_batches:
                self._full.clear()
            await self._commit(taken)

    async def _commit(self, taken: list[tuple[Batch, asyncio.Future[int]]]) -> None:
        try:
            results = await asyncio.to_thread(self.store.store_batches, [b for b, _ in taken])
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
        assert self._wake is not None
        self._wake.set()
        await self._task
        self._task = None


__all__ = ["GroupCommitter"]
