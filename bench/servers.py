"""The servers under test, all up at once on loopback ephemeral ports, each with its own instance."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.agents import AGENT_TOKEN
from hostpulse.processes import stop_group
from hostpulse.testing import write_test_config

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# The agent token is bench.agents' own, so its simulated agents can stream to the port.
TOKENS = {"admin": "bench-admin-token", "viewer": "bench-viewer-token", "agent": AGENT_TOKEN}
# 1,000 simulated agents share one token: the per-token cap (256 a worker) is lifted, as
# bench.agents does; no other workload comes near it.
LIMITS = {"connections_per_token": 0}
REFERENCE = "flask-gunicorn"


def port_workers() -> int:
    """The port's worker count as deployed (hypercorn.toml); gunicorn gets the same."""
    with open(ROOT / "hypercorn.toml", "rb") as f:
        return int(tomllib.load(f).get("workers", 1))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    name: str
    label: str
    port: int = 0
    instance: Path | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def argv(self, workers: int) -> list[str]:
        bind = f"127.0.0.1:{self.port}"
        if self.name in ("flask-gunicorn", "flask-gevent"):
            return [
                str(BIN / "gunicorn"),
                "--workers",
                str(workers),
                "--worker-class",
                "gevent" if self.name == "flask-gevent" else "sync",
                "--bind",
                bind,
                "--timeout",
                "300",
                "compat.flask_app:create_app()",
            ]
        if self.name == "flask-dev":
            return [
                str(BIN / "flask"),
                "--app",
                "compat.flask_app:create_app()",
                "run",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--no-reload",
                "--no-debugger",
            ]
        if self.name == "quart-bare":
            return [
                str(BIN / "hypercorn"),
                "--config",
                str(ROOT / "hypercorn.toml"),
                "--bind",
                bind,
                "--workers",
                str(workers),
                "bench.bare_quart:app",
            ]
        worker_class = self.name.removeprefix("port-")
        return [
            str(BIN / "hypercorn"),
            "--config",
            str(ROOT / "hypercorn.toml"),
            "--bind",
            bind,
            "--workers",
            str(workers),
            "--worker-class",
            worker_class,
            "app:create_app()",
        ]


ALL = {
    "flask-gunicorn": "Flask on gunicorn (sync)",
    "flask-gevent": "Flask on gunicorn (gevent)",
    "flask-dev": "Flask dev server",
    "port-asyncio": "port, Hypercorn asyncio",
    "port-uvloop": "port, Hypercorn uvloop",
    "quart-bare": "bare Quart, Hypercorn uvloop",
}
# Servers with /json/dict, /healthz, POST /demo and /files/<name> only (bench/bare_quart.py: no
# store, no auth): left out of the workloads that need more.
BARE = {"quart-bare"}


def wait_up(server: Server, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    assert server.proc is not None
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {server.proc.returncode}; see {server.instance}/server.log")
        try:
            with urllib.request.urlopen(f"{server.base}/healthz", timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{server.name} did not answer within {timeout} s")


def stop(server: Server) -> None:
    if server.proc is not None:
        stop_group(server.proc)


@contextmanager
def running(names: list[str], workdir: Path, env: dict[str, str] | None = None) -> Iterator[list[Server]]:
    """Start every named server at once; stop them all on exit."""
    workers = port_workers()
    servers = [Server(name, ALL[name]) for name in names]
    with ExitStack() as stack:
        for server in servers:
            server.port = free_port()
            server.instance = workdir / server.name
            server.instance.mkdir(parents=True, exist_ok=True)
            write_test_config(server.instance, TOKENS, limits=LIMITS)
            log = open(server.instance / "server.log", "wb")
            stack.callback(log.close)
            server.proc = subprocess.Popen(
                server.argv(workers),
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, **(env or {}), "HOSTPULSE_INSTANCE": str(server.instance)},
            )
            stack.callback(stop, server)
        for server in servers:
            wait_up(server)
        yield servers
