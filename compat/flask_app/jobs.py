"""Jobs the way seed 004 ran them: ``Popen`` and a thread that follows the output."""

from __future__ import annotations

import subprocess
import threading

from hostpulse.jobs import READ_SIZE, LineBuffer, accepted, busy, kill_group, record_spawn_failure, spawn
from hostpulse.settings import Settings
from hostpulse.store import Store


class JobRunner:
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store

    def start(self, job_id: str, argv: list[str]) -> dict[str, str]:
        jobs = self.settings.jobs
        if not self.store.start_job(job_id, argv, jobs.limit, jobs.timeout):
            return busy()
        try:
            proc = spawn(argv, self.settings.scripts)
        except OSError:
            record_spawn_failure(self.store, job_id, argv[0], jobs.line_num)
            return accepted()
        threading.Thread(target=self._follow, args=(job_id, proc), daemon=True).start()
        return accepted()

    def _follow(self, job_id: str, proc: subprocess.Popen[bytes]) -> None:
        """Store lines as they come; at the time limit, kill the child's whole group."""
        keep = self.settings.jobs.line_num
        timer = threading.Timer(self.settings.jobs.timeout, kill_group, (proc.pid,))
        timer.daemon = True
        timer.start()
        lines = LineBuffer()
        assert proc.stdout is not None
        while chunk := proc.stdout.read1(READ_SIZE):
            self.store.add_job_lines(job_id, lines.feed(chunk), keep)
        self.store.add_job_lines(job_id, lines.close(), keep)
        returncode = proc.wait()
        timer.cancel()
        self.store.finish_job(job_id, returncode)
