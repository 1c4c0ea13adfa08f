"""Both apps under their real servers for the jobs, uploads and limits fault tests (issue 11,
items 4, 5, 12, 13): the port on Hypercorn, the Flask version on gunicorn, each restartable on
its instance folder, and the processes a job script leaves behind found and ended.

Job scripts record the pid of every process they start in ``<name>.pid`` files beside them
(the jobs' folder); :func:`end_recorded` kills those still alive, so a test that fails
leaves nothing running.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import textwrap
from pathlib import Path
from typing import Any

from hostpulse.testing import write_test_config
from tests.agent.live import ADMIN, TOKENS, VIEWER, Service, eventually
from tests.support import ROOT, http, wait_until_up

FACTORIES = {"quart": ("app:create_app()", "hypercorn"), "flask": ("compat.flask_app:create_app()", "gunicorn")}

# Every process a test script starts ends by itself after this long, whatever happens.
HOLD = 120

# A helper the scripts share: record this process's pid in ``<name>.pid``, then stay.
LEAVE = f"""
import os, sys, time

HOLD = {HOLD}

def record(name):
    with open(name + ".pid.tmp", "w") as fh:
        fh.write(str(os.getpid()))
    os.replace(name + ".pid.tmp", name + ".pid")

def leave(name):
    record(name)
    time.sleep(HOLD)
    os._exit(0)
"""


class JobsService(Service):
    """One app on its instance folder with its jobs settings and extra environment."""

    def __init__(
        self, instance: Path, flavour: str, env: dict[str, str] | None = None, **sections: dict[str, Any]
    ) -> None:
        factory, server = FACTORIES[flavour]
        instance.mkdir(parents=True, exist_ok=True)
        super().__init__(instance, factory=factory, server=server)
        self.flavour = flavour
        self.env = dict(env or {})
        write_test_config(instance, TOKENS, **sections)
        self.scripts.mkdir(exist_ok=True)

    @property
    def scripts(self) -> Path:
        return self.instance / "scripts"

    @property
    def uploads(self) -> Path:
        return self.instance / "uploads"

    def script(self, name: str, source: str) -> None:
        (self.scripts / name).write_text(LEAVE + textwrap.dedent(source))

    def start(self) -> JobsService:
        self.starts += 1
        out = open(self.log, "ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOSTPULSE_")}
        self.proc = subprocess.Popen(
            self.argv(),
            cwd=ROOT,
            env={**env, "HOSTPULSE_INSTANCE": str(self.instance), **self.env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        wait_until_up(f"{self.url}/healthz", self.proc)
        return self

    def terminate(self) -> None:
        """SIGTERM to the server's process group, as an operator stops it; wait for it."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.kill()

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        token: str = ADMIN,
        content_type: str | None = None,
        timeout: float = 60,
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"}
        if content_type:
            headers["Content-Type"] = content_type
        status, hdrs, reply = http(method, self.url + path, headers=headers, body=body, timeout=timeout)
        if hdrs.get("content-type", "").startswith("application/json"):
            return status, json.loads(reply)
        return status, reply

    def send_whole(
        self, method: str, path: str, body: bytes, token: str = ADMIN, content_type: str = "application/json"
    ) -> tuple[int, Any]:
        """One request on a raw socket, the body sent whole even if the server has answered
        before reading it (an early 413), then the answer: status and JSON body."""
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        with socket.create_connection(("127.0.0.1", self.port), timeout=120) as conn:
            try:
                conn.sendall(head.encode() + body)
            except OSError:
                pass  # answered and closed early: the answer is waiting
            reply = b""
            while True:
                try:
                    chunk = conn.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                reply += chunk
        header, _, payload = reply.partition(b"\r\n\r\n")
        status = int(header.split(b" ", 2)[1])
        return status, json.loads(payload) if payload else None

    def exec(self, job_id: str, cmd: str) -> tuple[int, Any]:
        return self.request(
            "POST", f"/api/exec/{job_id}", json.dumps({"cmd": cmd}).encode(), content_type="application/json"
        )

    def poll(self, job_id: str) -> dict[str, Any]:
        status, answer = self.request("POST", f"/api/poll/{job_id}")
        assert status == 200, (status, answer)
        return answer

    def wait_finished(self, job_id: str, timeout: float = 60) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Poll until the job has finished: the final answer and every answer before it."""
        answers: list[dict[str, Any]] = []

        def finished() -> dict[str, Any] | None:
            answers.append(self.poll(job_id))
            return answers[-1] if answers[-1]["status"] == "finished" else None

        final = eventually(finished, f"job {job_id} to finish", timeout=timeout, every=0.1)
        return final, answers[:-1]

    def job_status(self, job_id: str) -> str | None:
        """The job's status as the store has it, read without polling (nothing marked seen)."""
        with sqlite3.connect(self.instance / "hostpulse.sqlite3") as db:
            row = db.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return row[0] if row else None

    def recorded(self, name: str, timeout: float = 30) -> int:
        """The pid a script recorded in ``<name>.pid`` (waiting for the file)."""
        path = self.scripts / f"{name}.pid"
        eventually(path.exists, f"{name}.pid to be written", timeout=timeout)
        return int(path.read_text())


def pid_alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie (Linux ``/proc``)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def end_recorded(folder: Path) -> list[int]:
    """SIGKILL every process a script in ``folder`` recorded that still runs this script's
    code (its command line names a script of ``folder``); the pids it had to end."""
    ended = []
    scripts = {p.name for p in folder.glob("*.py")}
    for pid_file in folder.glob("*.pid"):
        try:
            pid = int(pid_file.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (ValueError, OSError):
            continue
        if pid_alive(pid) and any(arg.decode(errors="replace") in scripts for arg in cmdline):
            os.kill(pid, signal.SIGKILL)
            ended.append(pid)
    return ended


__all__ = ["ADMIN", "VIEWER", "HOLD", "JobsService", "end_recorded", "eventually", "pid_alive"]
