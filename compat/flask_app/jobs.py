"""Jobs the way seed 004 ran them: ``Popen`` (inside the job's containment) and a thread that
follows the output, then waits until nothing of the job runs; a timer kills all of it at the
limit. When the worker stops or dies, the containment's guard ends what is left."""

from __future__ import annotations

import logging
import threading

from hostpulse.jobs import READ_SIZE, Job, LineBuffer, accepted, busy, prepare, record_spawn_failure, spawn, wait_over
from hostpulse.settings import Settings
from hostpulse.store import Store

log = logging.getLogger("hostpulse.jobs")


class JobRunner:
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        prepare(settings)

    def start(self, job_id: str, argv: list[str]) -> dict[str, str]:
        jobs = self.settings.jobs
        if not self.store.start_job(job_id, argv, jobs.limit, jobs.timeout):
            return busy()
        try:
            job = spawn(self.settings, self.store, job_id, argv)
        except OSError:
            record_spawn_failure(self.store, job_id, argv[0], jobs.line_num)
            return accepted()
        threading.Thread(target=self._follow, args=(job,), daemon=True).start()
        return accepted()

    def _follow(self, job: Job) -> None:
        """Store lines as they come; at the time limit, kill all of the job."""
        keep = self.settings.jobs.line_num
        timer = threading.Timer(self.settings.jobs.timeout, self._limit, (job,))
        timer.daemon = True
        timer.start()
        try:
            lines = LineBuffer()
            assert job.proc.stdout is not None
            while chunk := job.proc.stdout.read1(READ_SIZE):
                self.store.add_job_lines(job.id, lines.feed(chunk), keep)
            self.store.add_job_lines(job.id, lines.close(), keep)
            job.proc.wait()
            wait_over(job)  # what the leader left runs on until it ends, or the timer kills it
        finally:
            timer.cancel()
            job.proc.stdout.close()
        job.release()
        self.store.finish_job(job.id, job.returncode)

    @staticmethod
    def _limit(job: Job) -> None:
        if job.kill():
            log.warning("job %s passed its time limit; killing it (every process it started)", job.id)
