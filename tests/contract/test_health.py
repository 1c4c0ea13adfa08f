"""``GET /healthz``: alive, and 503 when the store cannot be written."""

from __future__ import annotations

import sqlite3

from .helpers import compact_json, wait_for


def test_healthz_ok(svc):
    reply = svc.get("/healthz")
    assert reply.status == 200
    assert reply.header("Content-Type") == "application/json"
    assert reply.body == compact_json({"status": "ok", "store": "ok"})


def test_healthz_is_public_even_with_a_bad_token(svc):
    assert svc.get("/healthz", role="unknown").status == 200
    assert svc.get("/healthz", role="agent").status == 200


def test_healthz_503_while_the_store_is_locked(svc):
    """A writer holding the database lock: the probe answers 503 once its last result is
    older than its bounded age (each check waits a bounded time for the lock)."""
    assert svc.get("/healthz").status == 200
    locker = sqlite3.connect(svc.settings.db_path, isolation_level=None, timeout=5)
    try:
        locker.execute("BEGIN EXCLUSIVE")
        reply = wait_for(
            lambda: (r := svc.get("/healthz")).status == 503 and r,
            timeout=20,
            interval=0.1,
            what="healthz 503 while the store is locked",
        )
        assert reply.status == 503
        assert reply.header("Content-Type") == "application/json"
        body = reply.json()
        assert body["error"] == "service_unavailable"
        assert isinstance(body["message"], str) and body["message"]
        assert body.get("store") not in (None, "ok")
        assert reply.header("X-Request-ID")
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    # the lock is gone: healthy again (once the 503 has aged out)
    wait_for(lambda: svc.get("/healthz").status == 200, timeout=20, interval=0.1, what="healthz 200 again")


def test_healthz_writes_nothing(svc):
    """A public probe costs no disk write: the database's files stay as they were."""
    assert svc.get("/healthz").status == 200
    db = svc.settings.db_path
    files = [db, db.with_name(db.name + "-wal")]
    before = [(p.stat().st_size, p.stat().st_mtime_ns, p.read_bytes()) for p in files if p.exists()]
    for _ in range(30):
        assert svc.get("/healthz").status == 200
    assert [(p.stat().st_size, p.stat().st_mtime_ns, p.read_bytes()) for p in files if p.exists()] == before
