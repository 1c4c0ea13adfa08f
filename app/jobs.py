"""Jobs on the event loop: a child spawned by ``hostpulse.jobs.spawn`` (CPython's ``Popen``,
inside the job's containment), followed without blocking the loop.

``asyncio.create_subprocess_exec`` would be the obvious call, but under the uvloop worker it
spawns through libuv, which forks the whole worker and holds it (the GIL included) until
the child execs: 9-10 ms a spawn here, up to 18 ms. CPython's ``Popen`` uses vfork: 0.15 ms.
The child's output is then read through the loop (``connect_read_pipe``) and its exit is
awaited on a pidfd; what the child left behind is then watched until nothing of the job
runs (a look at its cgroup, or at ``/proc`` in a worker thread).
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess

from hostpulse.containment import KILL_WAIT
from hostpulse.jobs import (
    READ_SIZE,
    Job,
    LineBuffer,
    accepted,
    busy,
    over_delays,
    prepare,
    record_spawn_failure,
    spawn,
)
from hostpulse.settings import Settings
from hostpulse.store import Store

log = logging.getLogger("hostpulse.jobs")


class JobRunner:
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.jobs: dict[str, Job] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        prepare(settings)

    async def start(self, job_id: str, argv: list[str]) -> dict[str, str]:
        jobs = self.settings.jobs
        if not await asyncio.to_thread(self.store.start_job, job_id, argv, jobs.limit, jobs.timeout):
            return busy()
        try:
            job = spawn(self.settings, self.store, job_id, argv)
        except OSError:
            await asyncio.to_thread(record_spawn_failure, self.store, job_id, argv[0], jobs.line_num)
            return accepted()
        self.jobs[job_id] = job
        task = asyncio.get_running_loop().create_task(self._follow(job))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return accepted()

    async def _read(self, job: Job) -> None:
        keep = self.settings.jobs.line_num
        lines = LineBuffer()
        reader = asyncio.StreamReader(limit=READ_SIZE)
        loop = asyncio.get_running_loop()
        transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), job.proc.stdout)
        try:
            while chunk := await reader.read(READ_SIZE):
                await asyncio.to_thread(self.store.add_job_lines, job.id, lines.feed(chunk), keep)
        finally:
            transport.close()
        await asyncio.to_thread(self.store.add_job_lines, job.id, lines.close(), keep)

    async def _over(self, job: Job, following: asyncio.Future[tuple[None, int]] | None = None) -> None:
        """Until the leader has exited, its output is read, and nothing else of it runs."""
        if following is not None:
            await asyncio.shield(following)
        for delay in over_delays():
            if not await asyncio.to_thread(job.running):
                return
            await asyncio.sleep(delay)

    async def _follow(self, job: Job) -> None:
        """Store lines as they come; at the time limit, kill all of the job."""
        following = asyncio.gather(self._read(job), exited(job.proc))
        try:
            await asyncio.wait_for(self._over(job, following), self.settings.jobs.timeout)
        except TimeoutError:
            if await asyncio.to_thread(job.kill):
                log.warning("job %s passed its time limit; killing it (every process it started)", job.id)
            await self._after_kill(job, following)
        finally:
            self.jobs.pop(job.id, None)
        await asyncio.to_thread(job.release)
        await asyncio.to_thread(self.store.finish_job, job.id, job.returncode)

    async def _after_kill(self, job: Job, following: asyncio.Future[tuple[None, int]]) -> None:
        """A killed job's output closes and its processes go; a process that will not die
        (uninterruptible sleep) is not waited for beyond ``KILL_WAIT``."""
        try:
            await asyncio.wait_for(self._over(job, following), KILL_WAIT)
        except TimeoutError:
            following.cancel()
            log.error("job %s: some of its processes outlived SIGKILL for %.0f s", job.id, KILL_WAIT)
        try:
            await following
        except (asyncio.CancelledError, OSError):
            pass

    async def shutdown(self) -> None:
        """On server stop, jobs do not outlive it: kill all of each and record their end."""
        for job in list(self.jobs.values()):
            await asyncio.to_thread(job.kill)
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)


async def exited(proc: subprocess.Popen[bytes]) -> int:
    """The child's return code, once it has exited: its pidfd turns readable (Linux 5.3);
    elsewhere a worker thread waits."""
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        return await asyncio.to_thread(proc.wait)
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(pidfd, readable)
    try:
        await ready
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)
    return proc.wait()
