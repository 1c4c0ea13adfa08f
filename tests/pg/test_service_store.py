"""The service store's behaviour, the same on both engines (a pytest parameter, as
``tests/contract`` runs both apps): the embedded SQLite file and PostgreSQL (a real server,
``tests/pg/server.py``). Two store objects on one database stand for two workers or nodes."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from hostpulse import cli
from hostpulse.settings import Settings
from hostpulse.settings import Store as StoreSettings
from hostpulse.store import ORPHAN_GRACE, ORPHAN_RETURNCODE, SCHEMA_VERSION, Store, StoreError
from hostpulse.store_pg import WRITE_LOCK, PostgresStore, migrate
from hostpulse.store_url import open_store

Opener = Callable[..., Store]


@pytest.fixture(params=["sqlite", "postgresql"])
def open_one(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens stores on one database of the parameter's engine (each call: another "worker")."""
    opened: list[Store] = []
    if request.param == "sqlite":
        settings = Settings(instance=tmp_path)
    else:
        url = request.getfixturevalue("pg_url")
        migrate(url)
        settings = Settings(instance=tmp_path, store=StoreSettings(url=url))

    def opener(legacy_retention: float = 0.0) -> Store:
        settings.store.legacy_retention = legacy_retention
        store = open_store(settings)
        opened.append(store)
        return store

    yield opener
    for store in opened:
        store.close()


def test_the_engine_follows_the_url(open_one: Opener, request: pytest.FixtureRequest) -> None:
    store = open_one()
    assert store.engine == request.node.callspec.params["open_one"]
    assert isinstance(store, PostgresStore) == (store.engine == "postgresql")


def test_legacy_posts_are_kept_in_order_and_expired(open_one: Opener) -> None:
    store = open_one()
    first = store.add_legacy_post("agent", "[12.5, 61.0]")
    second = store.add_legacy_post("admin", "é ünïcode ? %s %")  # the placeholders' characters, as data
    assert second > first > 0
    posts = store.legacy_posts()
    assert [(p["id"], p["username"], p["body"]) for p in posts] == [
        (first, "agent", "[12.5, 61.0]"),
        (second, "admin", "é ünïcode ? %s %"),
    ]
    assert abs(posts[0]["received"] - posts[1]["received"]) < 60  # seconds, at full precision
    expiring = open_one(legacy_retention=1e-6)  # opening one with a retention expires the old
    assert expiring.legacy_posts() == []
    expiring.add_legacy_post("agent", "[1]")
    assert [p["body"] for p in store.legacy_posts()] == ["[1]"]


def test_the_job_limit_and_a_running_id(open_one: Opener) -> None:
    a, b = open_one(), open_one()
    assert a.start_job("j1", ["uptime"], limit=1, timeout=60)
    assert not b.start_job("j2", ["uptime"], limit=1, timeout=60)  # busy: seen by the other worker
    assert not b.start_job("j1", ["uptime"], limit=2, timeout=60)  # this id still runs
    assert b.start_job("j2", ["uptime"], limit=2, timeout=60)
    a.finish_job("j1", 0)
    assert b.start_job("j3", ["uptime"], limit=2, timeout=60)


def test_output_is_polled_newest_first_once_and_the_end_too(open_one: Opener) -> None:
    a, b = open_one(), open_one()
    assert a.start_job("job", ["python3", "count.py"], limit=1, timeout=60)
    assert b.poll_job("job", 3) == {"status": "running", "output": ""}
    a.add_job_lines("job", [f"line {i}" for i in range(1, 6)], keep=3)
    assert b.poll_job("job", 2) == {"status": "running", "output": "line 4\nline 5"}
    assert b.poll_job("job", 2) == {"status": "running", "output": ""}  # never shown twice
    a.add_job_lines("job", ["line 6"], keep=3)
    a.finish_job("job", 3)
    assert b.poll_job("job", 3) == {"status": "finished", "returncode": 3, "output": "line 6"}
    assert b.poll_job("job", 3) == {"status": "finished", "returncode": 3, "output": ""}
    assert b.poll_job("nobody", 3) is None


def test_a_finished_id_starts_afresh(open_one: Opener) -> None:
    store = open_one()
    assert store.start_job("again", ["uptime"], limit=1, timeout=60)
    store.add_job_lines("again", ["old 1", "old 2"], keep=3)
    store.finish_job("again", 1)
    assert store.start_job("again", ["df", "-h"], limit=1, timeout=60)
    assert store.poll_job("again", 3) == {"status": "running", "output": ""}
    store.add_job_lines("again", ["new"], keep=3)
    store.finish_job("again", 0)
    assert store.poll_job("again", 3) == {"status": "finished", "returncode": 0, "output": "new"}


def test_a_job_past_its_deadline_whose_worker_is_gone_is_reaped(open_one: Opener) -> None:
    store = open_one()
    assert store.start_job("orphan", ["uptime"], limit=1, timeout=-(ORPHAN_GRACE + 1))
    assert store.poll_job("orphan", 3) == {"status": "finished", "returncode": ORPHAN_RETURNCODE, "output": ""}
    assert store.start_job("next", ["uptime"], limit=1, timeout=60)


def test_workers_starting_jobs_at_once_never_pass_the_limit(open_one: Opener) -> None:
    """Check-then-write is atomic: of 8 workers starting a job together with a limit of 2,
    exactly 2 start (SQLite: BEGIN IMMEDIATE; PostgreSQL: the advisory write lock)."""
    stores = [open_one() for _ in range(8)]
    results: list[bool] = []
    barrier = threading.Barrier(len(stores))

    def start(n: int) -> None:
        barrier.wait()
        results.append(stores[n].start_job(f"race-{n}", ["uptime"], limit=2, timeout=60))

    threads = [threading.Thread(target=start, args=(n,)) for n in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == [False] * 6 + [True] * 2


def test_check_writable(open_one: Opener) -> None:
    store = open_one()
    assert store.check_writable()
    assert store.check_writable()  # again, on the same connection


# -- PostgreSQL only ---------------------------------------------------------------------


def test_a_held_write_lock_makes_the_check_answer_false_in_time(pg_url: str) -> None:
    migrate(pg_url)
    store = PostgresStore(pg_url)
    try:
        with psycopg.connect(pg_url) as other:  # a transaction holding the write lock
            other.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            assert store.check_writable(timeout_ms=200) is False
        assert store.check_writable() is True  # released: a new connection, and it writes
    finally:
        store.close()


def test_a_connection_the_server_closed_is_replaced(pg_url: str) -> None:
    migrate(pg_url)
    store = PostgresStore(pg_url)
    try:
        assert store.start_job("a", ["uptime"], limit=1, timeout=60)
        pid = store._pg().info.backend_pid
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        assert store.poll_job("a", 3) == {"status": "running", "output": ""}  # found out at BEGIN: reconnected
        assert store._pg().info.backend_pid != pid
    finally:
        store.close()


def test_migrate_creates_then_keeps_the_schema_and_a_behind_database_is_refused(pg_url: str) -> None:
    with pytest.raises(StoreError, match="run `hostpulse migrate`"):
        PostgresStore(pg_url)
    assert migrate(pg_url) == (0, SCHEMA_VERSION)
    assert migrate(pg_url) == (SCHEMA_VERSION, SCHEMA_VERSION)
    PostgresStore(pg_url).close()


def test_migrate_from_two_nodes_at_once_applies_each_step_once(pg_url: str) -> None:
    results: list[tuple[int, int]] = []
    threads = [threading.Thread(target=lambda: results.append(migrate(pg_url))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == [(0, SCHEMA_VERSION)] + [(SCHEMA_VERSION, SCHEMA_VERSION)] * 3


def test_init_and_migrate_commands(
    pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOSTPULSE_STORE_URL", pg_url)
    instance = str(tmp_path / "instance")
    assert cli.main(["--instance", instance, "init"]) == 0
    assert cli.main(["--instance", instance, "migrate"]) == 0
    assert f"postgresql store's schema is up to date (version {SCHEMA_VERSION})" in capsys.readouterr().out
    PostgresStore(pg_url).close()  # the schema init made is the one a node needs
    monkeypatch.setenv("HOSTPULSE_STORE_URL", pg_url.rsplit("/", 1)[0] + "/no_such_database")
    assert cli.main(["--instance", instance, "migrate"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot connect to the PostgreSQL store" in err


def test_migrate_on_sqlite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--instance", str(tmp_path), "migrate"]) == 0
    assert "sqlite store's schema is up to date" in capsys.readouterr().out
    assert (tmp_path / "hostpulse.sqlite3").exists()
