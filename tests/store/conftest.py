"""The series store's fixtures, on both engines (issue 16): each test that takes ``store`` or
``make_store`` runs on the service's SQLite file and on PostgreSQL (a real server,
``tests/pg/server.py``, one database for the session, emptied before each test)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hostpulse.series import SeriesStore
from tests.pg.conftest import postgres  # noqa: F401 -- the session's PostgreSQL server, when a test needs it
from tests.pg.server import PostgresServer

MakeStore = Callable[..., SeriesStore]
SERIES_TABLES = (
    "series_names",
    "series_head",
    "series_chunks",
    "series_acked",
    "series_hosts",
    "series_runs",
    "series_counts",
    "series_refused",
    "series_meta",
)


@pytest.fixture(scope="session")
def series_database(postgres: PostgresServer) -> str:  # noqa: F811
    """A database migrated once (``hostpulse init``'s part) for the session's series tests."""
    from hostpulse.store_pg import migrate

    url = postgres.create_database("series_tests")
    migrate(url)
    return url


def empty_series(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as db:
        db.execute(f"TRUNCATE {', '.join(SERIES_TABLES)} RESTART IDENTITY")


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def where(engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> Path | str:
    """The store's location: the SQLite file's path, or an emptied PostgreSQL database's URL."""
    if engine == "sqlite":
        return tmp_path / "hostpulse.sqlite3"
    url: str = request.getfixturevalue("series_database")
    empty_series(url)
    return url


@pytest.fixture
def make_store(where: Path | str) -> Iterator[MakeStore]:
    """Opens stores on one location (each call: another worker or node); closes them after."""
    opened: list[SeriesStore] = []

    def make(**kwargs: Any) -> SeriesStore:
        store = SeriesStore(where, **kwargs)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(make_store: MakeStore) -> SeriesStore:
    return make_store(retention=3600.0)
