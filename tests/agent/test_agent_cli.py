"""``python -m agent`` as a person runs it: refusals at start, exit statuses, help."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from agent.settings import parser
from agent.spool import Spool
from hostpulse.tokens import new_token
from tests.support import ROOT, free_port


def agent(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HOSTPULSE_AGENT_")}
    return subprocess.run(
        [sys.executable, "-m", "agent", *args],
        cwd=ROOT,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_unknown_psutil_name_fails_at_start_listing_valid_ones(tmp_path: Path) -> None:
    done = agent("--token", "t", "--spool", str(tmp_path / "s"), "cpu_percent", "cpu_percnt")
    assert done.returncode == 2
    assert "unknown psutil name(s): cpu_percnt" in done.stderr
    assert "virtual_memory" in done.stderr and "disk_usage" in done.stderr
    assert not (tmp_path / "s").exists()  # nothing started


def test_unknown_name_with_once_fails_before_posting() -> None:
    done = agent("--once", "--token", "t", "--server", f"http://127.0.0.1:{free_port()}", "nope")
    assert done.returncode == 2 and "unknown psutil name(s): nope" in done.stderr


def test_missing_token_and_bad_values_exit_2() -> None:
    done = agent()
    assert done.returncode == 2 and "no token" in done.stderr
    done = agent("--token", "t", "--server", "gopher://x")
    assert done.returncode == 2 and "server must be" in done.stderr
    done = agent("--token", "t", "--interval", "soon")
    assert done.returncode == 2 and "interval must be a float" in done.stderr


def test_token_from_the_environment_is_used() -> None:
    done = agent("--once", "--server", f"http://127.0.0.1:{free_port()}", env={"HOSTPULSE_AGENT_TOKEN": "t"})
    assert done.returncode == 1  # got past settings: it tried to post
    assert "cannot post to" in done.stderr


def test_once_against_nothing_listening_exits_1_with_the_reason() -> None:
    port = free_port()
    done = agent("--once", "--token", "t", "--server", f"http://127.0.0.1:{port}", "boot_time")
    assert done.returncode == 1
    assert f"cannot post to http://127.0.0.1:{port}/" in done.stderr


def test_a_spool_in_use_is_refused(tmp_path: Path) -> None:
    held = Spool(tmp_path / "spool", 1 << 20)
    try:
        done = agent("--token", "t", "--spool", str(tmp_path / "spool"), "--server", f"http://127.0.0.1:{free_port()}")
        assert done.returncode == 2 and "in use by another agent" in done.stderr
    finally:
        held.close()


def test_help_lists_every_option() -> None:
    done = agent("--help")
    assert done.returncode == 0
    for option in (
        "--server",
        "--token",
        "--interval",
        "--batch",
        "--spool",
        "--spool-size",
        "--host",
        "--transport",
        "--once",
        "--config",
        "PSUTIL_NAME",
        "HOSTPULSE_AGENT_",
    ):
        assert option in done.stdout


def test_the_agent_imports_nothing_of_the_server() -> None:
    code = (
        "import sys, agent.__main__, agent.stream, agent.once\n"
        "server = ('hostpulse.settings', 'hostpulse.store', 'hostpulse.series', 'hostpulse.errors')\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('app', 'compat', 'quart', 'flask', 'werkzeug',"
        " 'hypercorn') or m in server or m.startswith(tuple(s + '.' for s in server)))\n"
        "print(','.join(bad))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def test_every_issued_token_is_read_by_token_as_its_value() -> None:
    # a token starting with "-" is an option to argparse ("expected one argument"); one in 64
    # of token_urlsafe's did, and an agent started with one never ran
    tokens = [new_token() for _ in range(5000)]
    assert not [t for t in tokens if t.startswith("-")]
    assert len(set(tokens)) == 5000 and all(len(t) == 43 for t in tokens)
    for token in tokens[:200]:
        assert parser().parse_args(["--token", token]).token == token
