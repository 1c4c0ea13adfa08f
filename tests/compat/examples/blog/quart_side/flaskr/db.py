"""The SQLite connection of a request (kept in ``g``) and the schema.

sqlite3 objects may only be used on the thread that made them: the connection is opened and
closed by async code, on the event loop's thread (a sync hook would run on a worker thread).
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

import click
from quart import current_app, g
from quart.cli import with_appcontext

SCHEMA = Path(__file__).with_name("schema.sql")

sqlite3.register_converter("timestamp", lambda value: datetime.fromisoformat(value.decode()))


def get_db() -> sqlite3.Connection:
    """The request's connection, opened on first use."""
    if "db" not in g:
        g.db = sqlite3.connect(current_app.config["DATABASE"], detect_types=sqlite3.PARSE_DECLTYPES)
        g.db.row_factory = sqlite3.Row
    return g.db


async def close_db(e=None) -> None:
    db = g.pop("db", None)
    if db is not None:
        try:
            db.close()
        except sqlite3.ProgrammingError:
            # Opened on another thread (by sync code Quart ran on its thread pool): sqlite3
            # refuses to close it here; it closes when collected. Not raised on: an error in
            # a teardown escapes Quart's ASGI app, and the client would get no answer at all.
            current_app.logger.exception("SQLite connection not closed")


def create_schema(db: sqlite3.Connection) -> None:
    """Drop and create the tables on ``db`` (no app context needed)."""
    db.executescript(SCHEMA.read_text(encoding="utf-8"))
    db.commit()


def init_db() -> None:
    """Clear the existing data and create new tables."""
    create_schema(get_db())


@click.command("init-db")
@with_appcontext
def init_db_command() -> None:
    init_db()
    click.echo("Initialized the database.")


def init_app(app) -> None:
    app.teardown_appcontext(close_db)
    app.cli.add_command(init_db_command)
