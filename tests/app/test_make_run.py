"""`make run` on an empty instance folder: tokens written once (0600), the port served,
and the local agent's samples visible at once."""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

from tests.support import ROOT, free_port, http, serve


def start(tmp_path: Path, port: int, log: Path):  # noqa: ANN201 - a context manager
    env = {"HOSTPULSE_INSTANCE": str(tmp_path / "instance"), "MAKEFLAGS": ""}
    return serve(["make", "--no-print-directory", "run", f"PORT={port}"], port, env=env, log=log)


def test_make_run_writes_tokens_once_and_serves_the_port(tmp_path: Path) -> None:
    port = free_port()
    first = tmp_path / "first.log"
    with start(tmp_path, port, first):
        base = f"http://127.0.0.1:{port}"
        assert http("GET", f"{base}/")[::2] == (200, b"Hello, World!")
        output = first.read_text()
        admin = re.search(r"^\s+admin\s+(\S+)$", output, re.M)
        assert admin, output
        status, _, body = http(
            "GET", f"{base}/_get_current_user", headers={"Authorization": f"Bearer {admin.group(1)}"}
        )
        assert status == 200 and json.loads(body)["username"] == "admin"
        assert http("GET", f"{base}/_get_current_user")[0] == 401
        viewer = re.search(r"^\s+viewer\s+(\S+)$", output, re.M)
        assert viewer, output
        hosts: list[dict[str, object]] = []
        deadline = time.monotonic() + 60
        while not hosts and time.monotonic() < deadline:  # the local agent's first batch
            status, _, body = http("GET", f"{base}/hosts", headers={"Authorization": f"Bearer {viewer.group(1)}"})
            assert status == 200, body
            hosts = json.loads(body)["hosts"]
            time.sleep(0.5)
        assert [h["host"] for h in hosts] == [socket.gethostname().lower()], hosts
        assert any(name.startswith("cpu_percent") for name in hosts[0]["latest"]), hosts[0]
    config = tmp_path / "instance" / "config.toml"
    for private in (config, tmp_path / "instance" / "agent.toml"):
        assert stat.S_IMODE(os.stat(private).st_mode) == 0o600
    assert admin.group(1) not in config.read_text(), "the config must keep hashes, not tokens"
    before = config.read_bytes()
    second = tmp_path / "second.log"
    with start(tmp_path, port, second):
        status, _, _ = http(
            "GET", f"http://127.0.0.1:{port}/_get_current_user", headers={"Authorization": f"Bearer {admin.group(1)}"}
        )
        assert status == 200
    assert config.read_bytes() == before
    assert "admin " not in second.read_text()


def test_token_commands_add_and_revoke(tmp_path: Path) -> None:
    env = {**os.environ, "HOSTPULSE_INSTANCE": str(tmp_path)}
    run = lambda *a: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "hostpulse", *a], env=env, capture_output=True, text=True, cwd=ROOT
    )
    assert run("init").returncode == 0
    added = run("token-add", "ops", "--role", "viewer")
    assert added.returncode == 0 and len(added.stdout.strip()) > 20
    assert "ops" in run("tokens").stdout
    assert run("token-add", "ops", "--role", "admin").returncode != 0
    assert run("token-revoke", "ops").returncode == 0
    assert "ops" not in run("tokens").stdout
    assert run("token-revoke", "ops").returncode == 1
