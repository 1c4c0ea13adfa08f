"""Jobs of seed 004: the checks before a start, the spawn, the child's output lines.

Both apps spawn a job here, in a containment that holds its whole process tree
(``hostpulse/containment.py``); each follows it its own way (a thread in the Flask version,
the event loop in the port: ``app/jobs.py`` says why not ``asyncio.create_subprocess_exec``).
A job is over when nothing of it runs any more, not when its first process exits: a daemon
it left keeps it running until the daemon ends or the time limit kills all of it. What else
the apps share is here and in the store.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hostpulse import containment
from hostpulse.commands import allowed_argv, rejected
from hostpulse.errors import ApiError, missing_field
from hostpulse.settings import Settings
from hostpulse.store import Store

JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_LINE = 4096
READ_SIZE = 65536
NOT_FOUND_RETURNCODE = 127
KILLED = containment.KILLED
# An exec body is read up to this many times ``max_command_length`` (JSON escapes a
# character in up to 6 bytes; the rest is room for spaces and other fields).
EXEC_BODY_FACTOR = 16
# Between two looks at whether anything of a job still runs: first, then at most (seconds).
OVER_POLL = (0.01, 0.25)


def check_job_id(job_id: str) -> str:
    if not JOB_ID.fullmatch(job_id):
        raise ApiError(400, "invalid_job_id", "a job id is 1 to 64 of A-Z a-z 0-9 - _")
    return job_id


def exec_body_limit(settings: Settings) -> int:
    """The most bytes an exec body may have: a command of ``max_command_length``, JSON-escaped."""
    return min(settings.limits.max_content_length, EXEC_BODY_FACTOR * settings.limits.max_command_length)


def exec_body_too_large(settings: Settings) -> ApiError:
    return ApiError(
        413,
        "payload_too_large",
        f"an exec body has {exec_body_limit(settings)} bytes at most "
        f"({EXEC_BODY_FACTOR} times max_command_length, within max_content_length)",
    )


def exec_argv(body: Any, settings: Settings) -> list[str]:
    """The argv an exec body asks for, checked against the allow-list and the jobs' folder."""
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", 'the body must be a JSON object {"cmd": "..."}')
    if "cmd" not in body:
        raise missing_field("cmd")
    cmd = body["cmd"]
    if not isinstance(cmd, str):
        raise ApiError(400, "bad_request", "the field 'cmd' must be a string")
    longest = settings.limits.max_command_length
    if len(cmd) > longest:  # before shlex, whose time grows faster than the command
        raise ApiError(
            413,
            "payload_too_large",
            f"the command is {len(cmd)} characters long; at most {longest} are taken (max_command_length)",
        )
    argv = allowed_argv(cmd, settings.commands)
    check_files(argv[1:], settings.scripts)
    return argv


def check_files(args: list[str], folder: Path) -> None:
    """An argument naming something in the jobs' folder (the children's working directory)
    must be a regular file (or a folder) really inside it: not a symlink
    (``passwd.py -> /etc/passwd`` showed its first line in a poll's SyntaxError), not a path
    through a symlinked folder, not a device or a FIFO. Options and absolute paths are the
    allow-list's business."""
    root = os.path.realpath(folder)
    for arg in args:
        if not arg or os.path.isabs(arg) or arg.startswith("-"):
            continue
        path = os.path.join(folder, arg)
        try:
            info = os.lstat(path)
        except (OSError, ValueError):
            continue  # nothing there: the program says so (python3: "can't open file")
        inside = os.path.realpath(path).startswith(root + os.sep)
        if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)) or not inside:
            raise rejected(f"{arg!r} is not a regular file in the jobs' folder")


def accepted() -> dict[str, str]:
    return {"mode": "exec", "status": "accepted"}


def busy() -> dict[str, str]:
    return {"mode": "exec", "status": "busy"}


def poll_answer(state: dict[str, Any] | None) -> dict[str, Any]:
    if state is None:
        raise ApiError(404, "unknown_job", "no job has this id")
    return {"mode": "poll", **state}


class Job:
    """One started job: its first process (the leader, whose output is read) and the
    containment holding everything it starts."""

    def __init__(self, job_id: str, key: str, proc: subprocess.Popen[bytes], tree: containment.Tree) -> None:
        self.id = job_id
        self.key = key
        self.proc = proc
        self.tree = tree
        self.killed = False
        self._over = False
        self._lock = threading.Lock()

    def running(self) -> bool:
        """Whether anything of the job still runs (the leader, or what it left behind)."""
        if self.tree.running(self.key, self.proc):
            return True
        with self._lock:
            self._over = True
        return False

    def kill(self) -> bool:
        """Kill all of it (unless it is already over); whether it was killed."""
        with self._lock:
            if self._over:
                return False
            self.killed = True
        self.tree.kill(self.key, self.proc)
        return True

    @property
    def returncode(self) -> int:
        """The leader's exit status; -9 when the job was killed (at its limit, at a stop),
        even if its leader had exited before what it left was."""
        if self.killed or self.proc.returncode is None:
            return KILLED
        return self.proc.returncode

    def release(self) -> None:
        self.tree.release(self.key)


def prepare(settings: Settings) -> None:
    """At a service's start (each app's ``JobRunner``): check ``[jobs] containment`` and end
    what a service killed before left running."""
    try:
        containment.prepare(settings.jobs.containment)
    except containment.Unavailable as exc:
        from hostpulse.settings import SettingsError

        raise SettingsError(str(exc)) from None


def spawn(settings: Settings, store: Store, job_id: str, argv: list[str]) -> Job:
    """The job's leader, in the jobs' folder, contained; stdout and stderr on one pipe, and
    Python children unbuffered so lines come as printed."""
    tree = containment.tree(settings.jobs.containment)
    key, proc = tree.spawn(job_id, argv, settings.scripts, store.location)
    return Job(job_id, key, proc, tree)


def over_delays() -> Iterator[float]:
    """The waits between two looks at a job that may still run: short first, then longer."""
    delay, longest = OVER_POLL
    while True:
        yield delay
        delay = min(delay * 2, longest)


def wait_over(job: Job, timeout: float | None = None) -> bool:
    """Block until nothing of ``job`` runs (or ``timeout``); whether it is over."""
    deadline = None if timeout is None else time.monotonic() + timeout
    for delay in over_delays():
        if not job.running():
            return True
        if deadline is not None and time.monotonic() > deadline:
            return False
        time.sleep(delay)
    return False  # pragma: no cover


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
