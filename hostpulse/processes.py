"""Stopping a process we started together with everything it started.

A server or a job leads its own process group (``start_new_session=True``), so one
signal reaches its workers and children; only groups this program started are signalled.
"""

from __future__ import annotations

import os
import signal
import subprocess


def signal_group(pid: int, sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def stop_group(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> int | None:
    """SIGTERM to the group, a graceful ``timeout``, then SIGKILL; the leader's exit status."""
    if proc.poll() is None:
        signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode
