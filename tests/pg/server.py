"""The tests' PostgreSQL server: :mod:`bench.pgserver`, shared with ``bench.agents --store
postgresql`` so both start the same server (``fsync`` off here: the tests never kill it)."""

from __future__ import annotations

from bench.pgserver import MISSING, RUN_AS, USER, PostgresServer, PostgresUnavailable, find_bindir

__all__ = ["MISSING", "RUN_AS", "USER", "PostgresServer", "PostgresUnavailable", "find_bindir"]
