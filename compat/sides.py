"""Each side in its own interpreter: the worker processes the in-process modes talk to.

A reference and its port usually share their package name (a branch of one project), and
two apps imported into one interpreter would also share modules, globals and the logging
tree. So every instance (reference, second reference, candidate, each mutant) is a child
process of its own (:mod:`compat.worker`), with its side's folder first on ``sys.path`` and
its instance folder in ``$COMPAT_INSTANCE``; requests and replies travel over a socket.
The child's own output (the app's logs, access lines) goes to a log file, not the terminal.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from hostpulse.processes import stop_group

from .clients import AppClient, Reply
from .loading import INSTANCE_VAR, SIDE_VAR, SetupError, SideSpec

# ``compat`` (run from a checkout) or ``hostpulse.compat`` (installed)
PACKAGE = __package__ or "compat"
STARTUP_TIMEOUT = 90.0
REQUEST_TIMEOUT = 180.0


def compat_root() -> str | None:
    """The folder a child needs on its path to import this package (None when installed)."""
    if "." in PACKAGE:
        return None
    return str(Path(__file__).resolve().parent.parent)


def child_env(spec: SideSpec, folder: Path) -> dict[str, str]:
    """The parent's environment less hostpulse's own settings, plus the side and its folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOSTPULSE_")}
    env[INSTANCE_VAR] = str(folder)
    env[SIDE_VAR] = spec.to_json()
    paths = [p for p in (compat_root(), env.get("PYTHONPATH")) if p]
    if paths:
        env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    # one hash seed for every side: Werkzeug builds some headers (Allow) from a set, whose
    # order follows the seed; two interpreters with random seeds would differ by themselves
    env.setdefault("PYTHONHASHSEED", "0")
    return env


def child_cwd(spec: SideSpec) -> str:
    return spec.path or os.getcwd()


def tail(path: Path, n: int = 3000) -> str:
    try:
        return path.read_bytes()[-n:].decode("utf-8", "replace")
    except OSError:
        return ""


class SideError(RuntimeError):
    """A request the worker could not answer (the app broke the protocol, or died)."""


class SideProcess(AppClient):
    """A client whose app lives in a worker process."""

    def __init__(self, spec: SideSpec, folder: Path, log: Path, label: str, *, prepare: bool = False) -> None:
        self.spec, self.folder, self.log, self.label = spec, folder, log, label
        self.info: dict[str, Any] = {}
        self._lock = threading.Lock()
        parent, child = socket.socketpair()
        argv = [sys.executable, "-m", f"{PACKAGE}.worker", str(child.fileno())] + (["--prepare"] if prepare else [])
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                argv,
                cwd=child_cwd(spec),
                env=child_env(spec, folder),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                pass_fds=(child.fileno(),),
                start_new_session=True,
            )
        child.close()
        self.conn = Connection(parent.detach())
        try:
            message = self._recv(STARTUP_TIMEOUT, "start")
        except SideError as exc:
            self.close()
            raise SetupError(f"{label}: {exc}") from None
        if message[0] != "ready":
            self.close()
            raise SetupError(f"{label} ({spec.app}) failed to start: {message[1]} (log: {log})")
        self.info = message[1]

    @property
    def kind(self) -> str:
        return str(self.info.get("kind", "wsgi"))

    def _recv(self, timeout: float, what: str) -> tuple:
        step = 0.5
        waited = 0.0
        while not self.conn.poll(step):
            waited += step
            if self.proc.poll() is not None:
                raise SideError(f"the worker exited with {self.proc.returncode} during {what}:\n{tail(self.log)}")
            if waited >= timeout:
                raise SideError(f"no answer within {timeout:.0f} s during {what}")
        try:
            return self.conn.recv()
        except (EOFError, OSError):
            raise SideError(f"the worker closed its connection during {what}:\n{tail(self.log)}") from None

    def _call(self, message: tuple, timeout: float, what: str) -> tuple:
        with self._lock:
            try:
                self.conn.send(message)
            except OSError as exc:
                raise SideError(f"the worker is gone ({exc}):\n{tail(self.log)}") from None
            return self._recv(timeout, what)

    def request(self, method, path, *, headers=None, body=None) -> Reply:
        if headers is not None and not isinstance(headers, list):
            headers = list(headers.items()) if hasattr(headers, "items") else list(headers)
        if body is not None and not isinstance(body, (bytes, bytearray)):
            body = [bytes(c) for c in body]
        answer = self._call(("request", method, path, headers, body), REQUEST_TIMEOUT, f"{method} {path}")
        if answer[0] == "error":
            raise SideError(answer[1] + ("\n" + answer[2] if answer[2] else ""))
        return answer[1]

    def routes(self) -> list:
        answer = self._call(("routes",), 60, "routes")
        if answer[0] == "error":
            raise SideError(answer[1])
        return answer[1]

    def stats(self) -> dict[str, Any]:
        return self._call(("stats",), 60, "stats")[1]

    def close(self) -> None:
        try:
            with self._lock:
                self.conn.send(("close",))
        except OSError:
            pass
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            stop_group(self.proc, timeout=10)
        self.conn.close()


def prepare(spec: SideSpec, folder: Path, log: Path, label: str) -> dict[str, Any]:
    """Run the side's setup hook once for a server's instance: {kind, kwargs}."""
    worker = SideProcess(spec, folder, log, label, prepare=True)
    worker.close()
    return worker.info
