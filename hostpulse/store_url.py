"""The service store ``[store] url`` names: :class:`hostpulse.store.Store` on the SQLite file
(empty or ``sqlite:///``) or :class:`hostpulse.store_pg.PostgresStore`, and its schema
created or migrated (``hostpulse init``, ``hostpulse migrate``).

Apart from both engines' modules, so neither imports the other's, and psycopg (the
``server`` extra) is imported only for a ``postgresql://`` URL.
"""

from __future__ import annotations

import logging
from pathlib import Path

from hostpulse.settings import Settings, store_engine
from hostpulse.store import SCHEMA_VERSION, Store

log = logging.getLogger("hostpulse")


def open_store(settings: Settings) -> Store:
    """The service store ``[store] url`` names: the SQLite file (empty or ``sqlite:///``) or
    PostgreSQL (its schema must be up to date: ``hostpulse init`` / ``hostpulse migrate``).

    On PostgreSQL the settings' tokens and commands become the database's, followed while the
    service runs (``hostpulse.tokens_store``, ``hostpulse.reload``): every node has the same."""
    if store_engine(settings.store.url) == "postgresql":
        from hostpulse import tokens_store
        from hostpulse.store_pg import PostgresStore  # psycopg: the server extra only

        store = PostgresStore(settings.store.url, settings.store.legacy_retention, path=settings.db_path)
        if settings.tokens and settings.source is not None:
            log.warning(
                "%s: [[tokens]] and [[commands]] are not used with a PostgreSQL store, which holds its own"
                " (hostpulse token-add, hostpulse commands-set)",
                settings.source.path,
            )
        tokens_store.follow(settings)
        return store
    return Store(settings.db_path, settings.store.legacy_retention)


def open_location(location: str) -> Store:
    """The store at ``Store.location`` (the jobs' guard records a killed job there): a
    PostgreSQL URL, else the SQLite file's path."""
    if location.split(":", 1)[0].lower() in ("postgresql", "postgres"):
        from hostpulse.store_pg import PostgresStore

        return PostgresStore(location, legacy_retention=0)
    return Store(Path(location), legacy_retention=0)


def migrate_store(settings: Settings) -> tuple[int, int]:
    """Create the store's tables or bring them up to date (``hostpulse init``/``migrate``):
    the schema version before and after."""
    if store_engine(settings.store.url) == "postgresql":
        from hostpulse.store_pg import migrate

        return migrate(settings.store.url)
    Store(settings.db_path, settings.store.legacy_retention).close()  # its schema is made on open
    return SCHEMA_VERSION, SCHEMA_VERSION
