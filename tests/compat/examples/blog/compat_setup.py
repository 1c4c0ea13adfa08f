"""Setup hook of the blog example (named in compat.toml as ``compat_setup:prepare``).

It runs inside each side's own interpreter, that side's ``path`` first on ``sys.path``, so
``flaskr`` is that side's package: its own ``schema.sql`` makes the tables.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path


def prepare(instance: Path, side: str) -> dict:
    """Create ``<instance>/flaskr.sqlite`` with the side's schema; the factory's kwargs."""
    from flaskr.db import create_schema

    instance = Path(instance)
    instance.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(instance / "flaskr.sqlite")
    try:
        create_schema(db)
    finally:
        db.close()
    return {"instance_path": str(instance)}
