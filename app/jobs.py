"""Jobs on the event loop: a child spawned by ``hostpulse.jobs.spawn`` (CPython's ``Popen``),
followed without threads.

``asyncio.create_subprocess_exec`` would be the obvious call, but under the uvloop worker it
spawns through libuv, which forks the whole worker and holds it (the GIL included) until
the child execs: 9-10 ms a spawn here, up to 18 ms. CPython's ``Popen`` uses vfork: 0.15 ms.
The child's output is then read through the loop (``connect_read_pipe``) and its exit is
awaited on a pidfd, so the loop never waits on a thread or blocks for a child.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess

from hostpulse.jobs import READ_SIZE, LineBuffer, accepted, busy, kill_group, record_spawn_failure, spawn
from hostpulse.settings import Settings
from hostpulse.store import Store

log = logging.getLogger("hostpulse.jobs")


class JobRunner:
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(self, job_id: str, argv: list[str]) -> dict[str, str]:
        jobs = self.settings.jobs
        if not await asyncio.to_thread(self.store.start_job, job_id, argv, jobs.limit, jobs.timeout):
            return busy()
        try:
            proc = spawn(argv, self.settings.scripts)
        except OSError:
            await asyncio.to_thread(record_spawn_failure, self.store, job_id, argv[0], jobs.line_num)
            return accepted()
        self.children[job_id] = proc
        task = asyncio.get_running_loop().create_task(self._follow(job_id, proc))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return accepted()

    async def _read(self, job_id: str, proc: subprocess.Popen[bytes]) -> None:
        keep = self.settings.jobs.line_num
        lines = LineBuffer()
        reader = asyncio.StreamReader(limit=READ_SIZE)
        loop = asyncio.get_running_loop()
        transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), proc.stdout)
        try:
            while chunk := await reader.read(READ_SIZE):
                await asyncio.to_thread(self.store.add_job_lines, job_id, lines.feed(chunk), keep)
        finally:
            transport.close()
        await asyncio.to_thread(self.store.add_job_lines, job_id, lines.close(), keep)

    async def _follow(self, job_id: str, proc: subprocess.Popen[bytes]) -> None:
        """Store lines as they come; at the time limit, kill the child's whole group."""
        following = asyncio.gather(self._read(job_id, proc), exited(proc))
        try:
            await asyncio.wait_for(asyncio.shield(following), self.settings.jobs.timeout)
        except TimeoutError:
            log.warning("job %s passed its time limit; killing it", job_id)
            kill_group(proc.pid)
            await following
        finally:
            self.children.pop(job_id, None)
        await asyncio.to_thread(self.store.finish_job, job_id, proc.returncode)

    async def shutdown(self) -> None:
        """On server stop, children do not outlive it: kill them and record their end."""
        for proc in list(self.children.values()):
            kill_group(proc.pid)
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
    ready = loop.create_future()
    loop.add_reader(pidfd, lambda: ready.done() or ready.set_result(None))
    try:
        await ready
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)
    return proc.wait()
