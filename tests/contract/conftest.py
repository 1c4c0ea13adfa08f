"""One set of contract tests, run against both apps: the Flask version and the Quart port.

Every test gets a fresh instance folder (``tmp_path``) with a ``scripts/`` folder of small
Python programs for jobs, and an app made with settings holding one known token per role,
passed to ``create_app(settings=...)``: no config file (one is written only for tables the
sections cannot give, ``extra_toml``). The apps are
driven by ``compat.clients``, which calls them as gunicorn (WSGI) and Hypercorn (ASGI,
with its lifespan and one event loop kept alive for background jobs) would.
"""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import app as quart_app
from compat import flask_app
from compat.clients import AppClient, Reply, client_for
from hostpulse.config_file import save
from hostpulse.settings import Settings, load
from hostpulse.store import Store
from hostpulse.testing import settings_with_tokens

from .helpers import TOKENS, UNKNOWN_TOKEN, multipart, wait_for

# Files a job script waits for (created by the test in the scripts folder, the job's cwd).
GATES = ("go-1", "go-2", "release")
# Longest a script ever waits for a gate: nothing outlives a test run for long.
GATE_CAP = 30

SCRIPTS: dict[str, str] = {
    # one line, exit 0 at once
    "quick.py": """
        print("quick", flush=True)
    """,
    # numbered lines with short pauses, then exit 0
    "count.py": """
        import time
        for i in range(1, 11):
            print(f"line {i}", flush=True)
            time.sleep(0.1)
    """,
    # ten lines in one write, wait for go-1; two more, wait for go-2; exit 0
    "gated.py": f"""
        import os, sys, time

        def wait(name):
            deadline = time.monotonic() + {GATE_CAP}
            while not os.path.exists(name):
                if time.monotonic() > deadline:
                    sys.exit(4)
                time.sleep(0.02)

        sys.stdout.write("".join(f"line {{i}}\\n" for i in range(1, 11)))
        sys.stdout.flush()
        wait("go-1")
        sys.stdout.write("line 11\\nline 12\\n")
        sys.stdout.flush()
        wait("go-2")
    """,
    # runs until the test creates ``release``
    "hold.py": f"""
        import os, sys, time
        print("holding", flush=True)
        deadline = time.monotonic() + {GATE_CAP}
        while not os.path.exists("release"):
            if time.monotonic() > deadline:
                sys.exit(4)
            time.sleep(0.02)
        print("released", flush=True)
    """,
    # prints a line and fails with exit code 3
    "fail.py": """
        import sys
        print("about to fail", flush=True)
        sys.exit(3)
    """,
    # forks a grandchild (same process group, same stdout), records both pids, sleeps long
    "slow.py": """
        import os, time
        child = os.fork()
        if child == 0:
            time.sleep(60)
            os._exit(0)
        with open("slow.pids.tmp", "w") as fh:
            fh.write(f"{os.getpid()} {child}")
        os.replace("slow.pids.tmp", "slow.pids")
        print("sleeping", flush=True)
        time.sleep(60)
    """,
}

FACTORIES: dict[str, Callable[..., Any]] = {
    "flask": flask_app.create_app,
    "quart": quart_app.create_app,
}


@dataclass
class Service:
    """One app on its own instance folder, with a client and helpers for the contract."""

    flavour: str
    instance: Path
    client: AppClient
    settings: Settings
    tokens: Mapping[str, str] = field(default_factory=lambda: dict(TOKENS))

    # -- paths
    @property
    def uploads(self) -> Path:
        return self.settings.uploads

    @property
    def scripts(self) -> Path:
        return self.settings.scripts

    def store(self) -> Store:
        return Store(self.settings.db_path)

    # -- requests
    def auth(self, role: str | None) -> dict[str, str]:
        """No header for ``None``; a token no instance knows for ``"unknown"``."""
        if role is None:
            return {}
        token = UNKNOWN_TOKEN if role == "unknown" else self.tokens[role]
        return {"Authorization": f"Bearer {token}"}

    def call(
        self,
        method: str,
        path: str,
        role: str | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | list[bytes] | None = None,
    ) -> Reply:
        return self.client.request(method, path, headers={**self.auth(role), **(headers or {})}, body=body)

    def get(self, path: str, role: str | None = None, headers: Mapping[str, str] | None = None) -> Reply:
        return self.call("GET", path, role, headers)

    def post(
        self,
        path: str,
        body: bytes | list[bytes] | None,
        role: str | None = None,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        hdrs = dict(headers or {})
        if content_type is not None:
            hdrs["Content-Type"] = content_type
        return self.call("POST", path, role, hdrs, body)

    def post_json(
        self, path: str, value: Any, role: str | None = None, content_type: str = "application/json"
    ) -> Reply:
        return self.post(path, json.dumps(value).encode(), role, content_type)

    def form(
        self,
        path: str = "/demo",
        fields: list[tuple[str, str | bytes]] | tuple = (),
        files: list[tuple[str, str | bytes, bytes]] | tuple = (),
        role: str = "admin",
        chunked: int | None = None,
    ) -> Reply:
        body, content_type = multipart(fields, files)
        payload: bytes | list[bytes] = body
        if chunked:
            payload = [body[i : i + chunked] for i in range(0, len(body), chunked)]
        return self.post(path, payload, role, content_type)

    def upload(self, filename: str | bytes, content: bytes, fields=(("id", "1"),), role: str = "admin") -> Reply:
        return self.form("/demo", list(fields), [("file", filename, content)], role)

    # -- jobs
    def exec(self, job_id: str, cmd: str, role: str = "admin") -> Reply:
        return self.post_json(f"/api/exec/{job_id}", {"cmd": cmd}, role)

    def poll(self, job_id: str, role: str = "admin", method: str = "GET") -> Reply:
        return self.call(method, f"/api/poll/{job_id}", role)

    def poll_json(self, job_id: str) -> dict[str, Any]:
        reply = self.poll(job_id)
        assert reply.status == 200, (reply.status, reply.body)
        return reply.json()

    def wait_output(self, job_id: str, timeout: float = 20.0) -> dict[str, Any]:
        """Poll until a poll shows some output (a running job) or the job has finished."""

        def probe() -> dict[str, Any] | None:
            state = self.poll_json(job_id)
            return state if state["status"] == "finished" or state["output"] else None

        return wait_for(probe, timeout, what=f"output of job {job_id}")

    def wait_finished(self, job_id: str, timeout: float = 20.0) -> tuple[dict[str, Any], list[str]]:
        """Poll until the job has finished; the final answer and every non-empty output seen
        (the finished answer's own too: it carries the lines not yet polled)."""
        outputs: list[str] = []

        def probe() -> dict[str, Any] | None:
            state = self.poll_json(job_id)
            if state["output"]:
                outputs.append(state["output"])
            return None if state["status"] == "running" else state

        return wait_for(probe, timeout, what=f"job {job_id} to finish"), outputs

    def open_gate(self, name: str) -> None:
        (self.scripts / name).write_text("go")


def write_scripts(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, source in SCRIPTS.items():
        (folder / name).write_text(textwrap.dedent(source).lstrip())


@pytest.fixture(params=["flask", "quart"])
def flavour(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def make_service(flavour: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Service]]:
    """A factory: ``make_service(limits={...}, jobs={...})`` -> a fresh app on its own folder.

    ``extra_toml`` is appended to the written config (e.g. ``[[commands]]`` tables).
    """
    made: list[Service] = []
    # only the instance's config counts: no HOSTPULSE_* from the developer's shell
    for name in [n for n in os.environ if n.startswith("HOSTPULSE_")]:
        monkeypatch.delenv(name)

    def make(name: str | None = None, extra_toml: str = "", **sections: Mapping[str, Any]) -> Service:
        instance = tmp_path / (name or f"instance-{len(made)}")
        instance.mkdir()
        write_scripts(instance / "scripts")
        settings = settings_with_tokens(instance, TOKENS, **sections)
        if extra_toml:  # through the config file, as a server reads it
            config = save(settings)
            config.write_text(config.read_text() + "\n" + textwrap.dedent(extra_toml))
            settings = load(instance)
            app = FACTORIES[flavour](instance)
        else:
            app = FACTORIES[flavour](settings=settings)
        service = Service(flavour, instance, client_for(app), settings)
        made.append(service)
        return service

    yield make
    for service in made:
        for gate in GATES:  # let any job still waiting end by itself
            (service.instance / "scripts" / gate).write_text("go")
        service.client.close()


@pytest.fixture
def svc(make_service: Callable[..., Service]) -> Service:
    """The app with default settings."""
    return make_service()
