"""The PostgreSQL fixture itself: a real server on loopback that takes connections, runs as
a non-root user, keeps its socket in its own folder, and is gone after ``stop``."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import psycopg
import pytest

from tests.pg.server import RUN_AS, USER, PostgresServer, PostgresUnavailable, find_bindir


def test_the_session_server_takes_connections(postgres: PostgresServer, pg_url: str) -> None:
    with psycopg.connect(pg_url) as db:
        user, version, address = db.execute("SELECT current_user, version(), inet_server_addr()").fetchone()  # type: ignore[misc]
    assert user == USER
    assert version.startswith("PostgreSQL")
    assert str(address) == "127.0.0.1"
    # listening on loopback only, its unix socket in the server's own folder
    assert any(p.name.startswith(".s.PGSQL.") for p in postgres.socket_dir.iterdir())
    assert postgres.root.is_relative_to("/tmp")


def test_each_test_gets_an_empty_database(pg_url: str) -> None:
    with psycopg.connect(pg_url) as db:
        (tables,) = db.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()  # type: ignore[misc]
    assert tables == 0


def test_the_server_never_runs_as_root(postgres: PostgresServer) -> None:
    owner = os.stat(postgres.data).st_uid
    assert owner != 0
    if os.geteuid() == 0:
        import pwd

        assert pwd.getpwuid(owner).pw_name == RUN_AS
        assert stat.S_IMODE(os.stat(postgres.root).st_mode) == 0o700


def test_start_and_stop_a_second_server() -> None:
    """Its own folder and port; after stop nothing listens and the folder is gone."""
    server = PostgresServer().start()
    try:
        with psycopg.connect(server.url()) as db:
            assert db.execute("SELECT 1").fetchone() == (1,)
        port, root = server.port, server.root
    finally:
        server.stop()
    assert not root.exists()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


def test_missing_binaries_are_said_clearly() -> None:
    with pytest.raises(PostgresUnavailable, match="apt-get install postgresql"):
        PostgresServer(bindir=Path("/nonexistent"))
    assert find_bindir() is not None  # here they are installed
