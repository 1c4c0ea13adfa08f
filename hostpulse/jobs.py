"""Jobs of seed 004: the checks before a start, the spawn, the child's output lines.

Both apps spawn the child here, with ``Popen``; each follows it its own way (a thread in the
Flask version, the event loop in the port: ``app/jobs.py`` says why not
``asyncio.create_subprocess_exec``). What else they share is here and in the store.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

from hostpulse.commands import allowed_argv
from hostpulse.errors import ApiError, missing_field
from hostpulse.processes import signal_group
from hostpulse.settings import Settings
from hostpulse.store import Store

JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_LINE = 4096
READ_SIZE = 65536
NOT_FOUND_RETURNCODE = 127


def check_job_id(job_id: str) -> str:
    if not JOB_ID.fullmatch(job_id):
        raise ApiError(400, "invalid_job_id", "a job id is 1 to 64 of A-Z a-z 0-9 - _")
    return job_id


def exec_argv(body: Any, settings: Settings) -> list[str]:
    """The argv an exec body asks for, checked against the allow-list."""
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", 'the body must be a JSON object {"cmd": "..."}')
    if "cmd" not in body:
        raise missing_field("cmd")
    if not isinstance(body["cmd"], str):
        raise ApiError(400, "bad_request", "the field 'cmd' must be a string")
    return allowed_argv(body["cmd"], settings.commands)


def spawn(argv: list[str], cwd: Path) -> subprocess.Popen[bytes]:
    """The child in a session of its own (so its whole group can be killed), stdout and
    stderr on one pipe, and Python children unbuffered so lines come as printed."""
    return subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=cwd,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,
    )


def kill_group(pid: int) -> None:
    """Kill the child and everything it started (it leads its own session)."""
    signal_group(pid, signal.SIGKILL)


def accepted() -> dict[str, str]:
    return {"mode": "exec", "status": "accepted"}


def busy() -> dict[str, str]:
    return {"mode": "exec", "status": "busy"}


def poll_answer(state: dict[str, Any] | None) -> dict[str, Any]:
    if state is None:
        raise ApiError(404, "unknown_job", "no job has this id")
    return {"mode": "poll", **state}


class LineBuffer:
    """Splits a child's output into lines as chunks arrive; overlong lines are cut."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, chunk: bytes) -> list[str]:
        *lines, self._pending = (self._pending + chunk).split(b"\n")
        if len(self._pending) > MAX_LINE:
            lines.append(self._pending)
            self._pending = b""
        return [self._decode(line) for line in lines]

    def close(self) -> list[str]:
        rest, self._pending = self._pending, b""
        return [self._decode(rest)] if rest else []

    @staticmethod
    def _decode(line: bytes) -> str:
        return line[:MAX_LINE].decode("utf-8", "replace").strip()


def record_spawn_failure(store: Store, job_id: str, program: str, keep: int) -> None:
    """A program that cannot be started ends at once, as a shell would say: 127."""
    store.add_job_lines(job_id, [f"{program}: command not found"], keep)
    store.finish_job(job_id, NOT_FOUND_RETURNCODE)
