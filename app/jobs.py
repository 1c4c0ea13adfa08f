"""Jobs on the event loop: ``asyncio.create_subprocess_exec`` and a task following the output."""

from __future__ import annotations

import asyncio
import logging

from hostpulse.jobs import READ_SIZE, LineBuffer, accepted, busy, child_env, kill_group, record_spawn_failure
from hostpulse.settings import Settings
from hostpulse.store import Store

log = logging.getLogger(__name__)


class JobRunner:
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.children: dict[str, asyncio.subprocess.Process] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(self, job_id: str, argv: list[str]) -> dict[str, str]:
        jobs = self.settings.jobs
        if not await asyncio.to_thread(self.store.start_job, job_id, argv, jobs.limit, jobs.timeout):
            return busy()
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                cwd=self.settings.scripts,
                env=child_env(),
                start_new_session=True,
            )
        except OSError:
            await asyncio.to_thread(record_spawn_failure, self.store, job_id, argv[0], jobs.line_num)
            return accepted()
        self.children[job_id] = proc
        task = asyncio.get_running_loop().create_task(self._follow(job_id, proc))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return accepted()

    async def _read(self, job_id: str, proc: asyncio.subprocess.Process) -> None:
        keep = self.settings.jobs.line_num
        lines = LineBuffer()
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(READ_SIZE):
            await asyncio.to_thread(self.store.add_job_lines, job_id, lines.feed(chunk), keep)
        await asyncio.to_thread(self.store.add_job_lines, job_id, lines.close(), keep)

    async def _follow(self, job_id: str, proc: asyncio.subprocess.Process) -> None:
        """Store lines as they come; at the time limit, kill the child's whole group."""
        following = asyncio.gather(self._read(job_id, proc), proc.wait())
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
