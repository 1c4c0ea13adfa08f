"""``GET /healthz`` and every other public request cost no disk write (issue 11, item 2).

The probe used to write a row and commit (an fsync) per call: 50 unauthenticated clients
polling it cut ingest from 691 to 44 batches/s. Now it answers from a check of bounded
age that takes and releases the write lock without writing. Checked on both apps under
their servers with two workers: the instance folder's files are byte for byte and stamp
for stamp the same after hundreds of public requests; the probe still turns 503 while
another process holds the store's write lock, and 200 again after.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from hostpulse.testing import write_test_config
from tests.agent.live import eventually
from tests.support import BIN, free_port, http, serve

ADMIN = "health-admin-token-2c8e1f0a"
AGENT = "health-agent-token-6b3d9e7f"

SERVERS = {
    "hypercorn": lambda port: [
        str(BIN / "hypercorn"),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "2",
        "--graceful-timeout",
        "2",
        "app:create_app()",
    ],
    "gunicorn": lambda port: [
        str(BIN / "gunicorn"),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "2",
        "compat.flask_app:create_app()",
    ],
}

# Public routes, and requests refused before any work (no token, or a token without the role).
PUBLIC = [
    ("GET", "/healthz", None),
    ("HEAD", "/healthz", None),
    ("GET", "/", None),
    ("GET", "/login", None),
    ("GET", "/regist", None),
    ("GET", "/usrname", None),
    ("GET", "/json/list", None),
    ("GET", "/json/dict", None),
    ("OPTIONS", "/data/", None),
    ("GET", "/healthz", AGENT),
    ("POST", "/", None),
    ("POST", "/data/", None),
    ("POST", "/demo", None),
    ("POST", "/api/exec/x", None),
    ("POST", "/api/exec/x", AGENT),
    ("POST", "/api/poll/x", None),
    ("POST", "/ingest", None),
]


def snapshot(folder: Path) -> dict[str, tuple[int, int, str]]:
    """Every file the service keeps (not the SQLite shared-memory index, a mapped lock table)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.name.endswith("-shm"):
            data = path.read_bytes()
            found[str(path.relative_to(folder))] = (
                len(data),
                path.stat().st_mtime_ns,
                hashlib.sha256(data).hexdigest(),
            )
    return found


@pytest.mark.parametrize("server", sorted(SERVERS))
def test_public_requests_write_nothing_and_the_probe_still_sees_a_locked_store(tmp_path: Path, server: str) -> None:
    instance = tmp_path / "instance"
    write_test_config(instance, {"admin": ADMIN, "agent": AGENT})
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with serve(SERVERS[server](port), port, env={"HOSTPULSE_INSTANCE": str(instance)}, log=tmp_path / "server.log"):
        for _ in range(20):  # every worker has answered once
            assert http("GET", f"{base}/healthz")[0] == 200
        before = snapshot(instance)
        assert any(name.startswith("hostpulse.sqlite3") for name in before), before
        statuses = []
        for _ in range(15):
            for method, path, token in PUBLIC:
                if server == "gunicorn" and path == "/ingest":  # port only
                    continue
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                statuses.append((method, path, http(method, base + path, headers=headers)[0]))
        assert {s for m, p, s in statuses if p == "/healthz"} == {200}
        assert {s for m, p, s in statuses if m == "POST"} <= {401, 403}
        assert snapshot(instance) == before, "a public request wrote to the instance folder"

        # Still a readiness probe: another process holding the write lock makes it 503
        # (within its bounded age), and it recovers once the lock is gone.
        locker = sqlite3.connect(instance / "hostpulse.sqlite3", isolation_level=None, timeout=5)
        try:
            locker.execute("BEGIN IMMEDIATE")
            eventually(
                lambda: all(http("GET", f"{base}/healthz")[0] == 503 for _ in range(6)),
                "healthz 503 on every worker while the store is locked",
                timeout=30,
                every=0.2,
            )
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        eventually(
            lambda: all(http("GET", f"{base}/healthz")[0] == 200 for _ in range(6)),
            "healthz 200 again once the lock is released",
            timeout=30,
            every=0.2,
        )
