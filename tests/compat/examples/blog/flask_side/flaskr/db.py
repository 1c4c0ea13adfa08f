"""The SQLite connection of a request (kept in ``g``) and the schema."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

import click
from flask import current_app, g

SCHEMA = Path(__file__).with_name("schema.sql")

sqlite3.register_converter("timestamp", lambda value: datetime.fromisoformat(value.decode()))


def get_db() -> sqlite3.Connection:
    """The request's connection, opened on first use."""
    if "db" not in g:
        g.db = sqlite3.connect(current_app.config["DATABASE"], detect_types=sqlite3.PARSE_DECLTYPES)
        g.db.row_factory = sqlite3.Row
    return g.db


def close_db(e=None) -> None:
    db = g.pop("db", None)
    if db is not None:
        db.close()


def create_schema(db: sqlite3.Connection) -> None:
    """Drop and create the tables on ``db`` (no app context needed)."""
    db.executescript(SCHEMA.read_text(encoding="utf-8"))
    db.commit()


def init_db() -> None:
    """Clear the existing data and create new tables."""
    create_schema(get_db())


@click.command("init-db")
def init_db_command() -> None:
    init_db()
    click.echo("Initialized the database.")


def init_app(app) -> None:
    app.teardown_appcontext(close_db)
    app.cli.add_command(init_db_command)
