"""Operator traps (issue 11, item 10), with ``make run``, the CLI and a real agent.

- a second ``make run`` on a busy port refuses with one clear line instead of sharing the
  port (SO_REUSEPORT) with the first, which keeps answering alone; a port held by another
  program: one line, no traceback;
- ``make run PORT=...`` after a first run moves the local agent to the new port;
- a read-only instance folder fails at start with one line and a non-zero exit;
- ``HOSTPULSE_JOBS_TIMEOUT=abc`` is blamed on the variable; an unknown ``HOSTPULSE_*``
  variable is warned about;
- an agent whose token the service refuses says so once, backs off to a long interval,
  and still stops on SIGTERM.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from hostpulse import settings as settings_module
from hostpulse.processes import stop_group
from hostpulse.settings import SettingsError
from tests.agent.live import AgentProcess, Service, eventually
from tests.support import ROOT, free_port, http, wait_until_up


def make_run(instance: Path, port: int, log: Path, **env: str) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            ["make", "--no-print-directory", "run", f"PORT={port}"],
            cwd=ROOT,
            env={**os.environ, "HOSTPULSE_INSTANCE": str(instance), "MAKEFLAGS": "", **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def finished(proc: subprocess.Popen[bytes], timeout: float = 120) -> int:
    """The exit status of a run that must end by itself (stopped and failed if it does not)."""
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_group(proc)
        pytest.fail(f"still running after {timeout} s: it should have refused to start")


def our_lines(text: str) -> list[str]:
    """The output without make's own ``make: *** ... Error N`` line."""
    return [line for line in text.splitlines() if line.strip() and not line.startswith("make")]


def token_of(log: Path, role: str) -> str:
    found = re.search(rf"^\s+{role}\s+(\S+)$", log.read_text(), re.M)
    assert found, log.read_text()
    return found.group(1)


def test_a_second_make_run_on_a_busy_port_refuses_and_the_first_keeps_it(tmp_path: Path) -> None:
    port = free_port()
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    first = make_run(tmp_path / "first", port, first_log)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/healthz", first)
        admin = token_of(first_log, "admin")
        second = make_run(tmp_path / "second", port, second_log)
        status = finished(second)
        text = second_log.read_text()
        assert status != 0, text
        assert "Traceback" not in text, text
        refusal = [line for line in our_lines(text) if str(port) in line and "in use" in line]
        assert len(refusal) == 1, text
        assert not (tmp_path / "second" / "config.toml").exists(), "nothing is written for a run that cannot start"
        for _ in range(20):  # the first run alone answers: its admin token on every connection
            assert (
                http("GET", f"http://127.0.0.1:{port}/_get_current_user", headers={"Authorization": f"Bearer {admin}"})[
                    0
                ]
                == 200
            )
    finally:
        stop_group(first)


def test_a_port_held_by_another_program_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        log = tmp_path / "run.log"
        status = finished(make_run(tmp_path / "instance", port, log))
    text = log.read_text()
    assert status != 0 and "Traceback" not in text, text
    assert [line for line in our_lines(text) if str(port) in line and "in use" in line], text


def test_make_run_on_another_port_moves_the_local_agent(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    viewer = ""

    def local_host_seen_since(port: int, since: float) -> bool:
        status, _, body = http("GET", f"http://127.0.0.1:{port}/hosts", headers={"Authorization": f"Bearer {viewer}"})
        assert status == 200, body
        return any(
            h["host"] == socket.gethostname().lower() and h["last_seen"] >= since for h in json.loads(body)["hosts"]
        )

    first_port, second_port = free_port(), free_port()
    log = tmp_path / "first.log"
    run = make_run(instance, first_port, log)
    try:
        wait_until_up(f"http://127.0.0.1:{first_port}/healthz", run)
        viewer = token_of(log, "viewer")
        eventually(lambda: local_host_seen_since(first_port, 0), "the local agent's first batch", timeout=60, every=0.5)
    finally:
        stop_group(run)
    restarted = time.time()
    run = make_run(instance, second_port, tmp_path / "second.log")
    try:
        wait_until_up(f"http://127.0.0.1:{second_port}/healthz", run)
        eventually(
            lambda: local_host_seen_since(second_port, restarted),
            "the local agent on the new port",
            timeout=60,
            every=0.5,
        )
    finally:
        stop_group(run)
    agent_config = tomllib.loads((instance / "agent.toml").read_text())
    assert agent_config["server"] == f"http://127.0.0.1:{second_port}"


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare(1) for a read-only bind mount")
def test_a_read_only_instance_fails_at_start_with_one_line(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    done = subprocess.run(
        [sys.executable, "-m", "hostpulse", "--instance", str(instance), "init"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", f"mount --bind -o ro '{instance}' '{instance}'"], capture_output=True
    )
    if probe.returncode != 0:
        pytest.skip(f"no mount namespace here: {probe.stderr.decode().strip()}")
    port = free_port()
    log = tmp_path / "run.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                "unshare",
                "-m",
                "sh",
                "-c",
                f"mount --bind -o ro '{instance}' '{instance}' && exec make --no-print-directory run PORT={port}",
            ],
            cwd=ROOT,
            env={**os.environ, "HOSTPULSE_INSTANCE": str(instance), "MAKEFLAGS": ""},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    status = finished(proc)
    text = log.read_text()
    assert status != 0, text
    assert "Traceback" not in text and "serving" not in text, text
    lines = our_lines(text)
    assert len(lines) == 1 and str(instance) in lines[0] and "writ" in lines[0], text


def test_settings_name_the_variable_and_warn_about_unknown_ones(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOSTPULSE_")}
    bad = subprocess.run(
        [sys.executable, "-m", "hostpulse", "--instance", str(tmp_path), "init"],
        cwd=ROOT,
        env={**env, "HOSTPULSE_JOBS_TIMEOUT": "abc"},
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0
    assert "HOSTPULSE_JOBS_TIMEOUT" in bad.stderr and "config.toml" not in bad.stderr, bad.stderr
    assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    with pytest.raises(SettingsError, match="HOSTPULSE_JOBS_TIMEOUT"):
        settings_module.load(tmp_path, {"HOSTPULSE_JOBS_TIMEOUT": "abc"})

    typo = subprocess.run(
        [sys.executable, "-m", "hostpulse", "--instance", str(tmp_path), "init"],
        cwd=ROOT,
        env={**env, "HOSTPULSE_JOB_TIMEOUT": "5"},
        capture_output=True,
        text=True,
    )
    assert typo.returncode == 0, typo.stderr
    warned = [line for line in typo.stderr.splitlines() if "HOSTPULSE_JOB_TIMEOUT" in line]
    assert len(warned) == 1 and "HOSTPULSE_JOBS_TIMEOUT" in warned[0], typo.stderr
    quiet = subprocess.run(
        [sys.executable, "-m", "hostpulse", "--instance", str(tmp_path), "tokens"],
        cwd=ROOT,
        env={**env, "HOSTPULSE_JOBS_TIMEOUT": "5", "HOSTPULSE_AGENT_TOKEN": "x"},
        capture_output=True,
        text=True,
    )
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr


def test_an_agent_with_a_refused_token_says_so_once_and_backs_off(tmp_path: Path) -> None:
    service = Service(tmp_path / "instance").start()
    try:
        agent = AgentProcess(tmp_path / "agent", service.url, "refused", token="not-a-token-of-this-service").start()
        try:
            attempts = lambda: len(re.findall(r'"GET /ws/agent 1\.1" 401', service.log.read_text()))  # noqa: E731
            eventually(lambda: attempts() >= 2, "a second attempt after the refusal", timeout=60)
            refusals = [
                line
                for line in agent.text().splitlines()
                if "refused the token" in line and ("ERROR" in line or "WARNING" in line)
            ]
            assert len(refusals) == 1, agent.text()
            longest = re.search(r"up to ([\d.]+) s", refusals[0])
            assert longest and float(longest.group(1)) >= 60, refusals[0]
            assert agent.stop(timeout=60) == 0
            assert len(agent.waiting()) >= 1, "the batches are kept for when the token is accepted"
        finally:
            if agent.proc is not None and agent.proc.poll() is None:
                agent.kill()
    finally:
        service.stop()


@pytest.mark.parametrize("flush_timeout", ["0", "5"])
def test_an_agent_with_a_refused_token_stops_on_sigterm(tmp_path: Path, flush_timeout: str) -> None:
    """make run's agent, refused by the service, logged "stopping on SIGTERM" and then kept
    retrying for 10 minutes: a cancel that came as its backoff wait ended was swallowed.
    With --flush-timeout 0 the SIGTERM lands exactly there."""
    service = Service(tmp_path / "instance").start()
    try:
        agent = AgentProcess(
            tmp_path / "agent",
            service.url,
            "refused",
            "--flush-timeout",
            flush_timeout,
            token="not-a-token-of-this-service",
        ).start()
        try:
            eventually(lambda: "refused the token" in agent.text(), "the refusal logged")
            assert agent.stop(timeout=60) == 0
            assert "stopping on SIGTERM" in agent.text()
        finally:
            if agent.proc is not None and agent.proc.poll() is None:
                agent.kill()
    finally:
        service.stop()
