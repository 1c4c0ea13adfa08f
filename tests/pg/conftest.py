"""Fixtures for the tests that need a real PostgreSQL: one server for the session
(:class:`tests.pg.server.PostgresServer`), a fresh database per test.

Without PostgreSQL's binaries these tests fail with a message saying what to install, never
skip (as the dashboard's without Chromium): ``.ci/run`` installs Debian's ``postgresql``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.pg.server import PostgresServer, PostgresUnavailable


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    try:
        server = PostgresServer().start()
    except PostgresUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(postgres: PostgresServer) -> str:
    """The URL of a new, empty database of its own for one test."""
    return postgres.create_database(f"t_{uuid.uuid4().hex[:16]}")
