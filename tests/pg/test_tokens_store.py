"""Tokens and the allow-list in the PostgreSQL store, followed at run time, and ``/healthz``'s
check of PostgreSQL (issue 16), on a real server."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psycopg

from hostpulse import tokens_store
from hostpulse.health import PostgresHealth, StoreHealth, health_of
from hostpulse.reload import refresh, stop_following
from hostpulse.settings import DEFAULT_COMMANDS, Command, Settings, Token, load
from hostpulse.settings import Store as StoreSettings
from hostpulse.store_pg import WRITE_LOCK, migrate
from hostpulse.store_url import open_store
from hostpulse.testing import write_test_config
from hostpulse.tokens import hash_token
from tests.support import ROOT


def hostpulse(instance: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"HOSTPULSE_STORE_URL": url, "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-m", "hostpulse", "--instance", str(instance), *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_init_issues_tokens_once_and_the_token_commands_work_in_the_database(pg_url: str, tmp_path: Path) -> None:
    first = hostpulse(tmp_path / "a", pg_url, "init")
    assert first.returncode == 0, first.stderr
    assert "stored new tokens in the PostgreSQL store" in first.stdout
    admin = next(line.split()[1] for line in first.stdout.splitlines() if line.strip().startswith("admin "))
    assert "[[tokens]]" not in (tmp_path / "a" / "config.toml").read_text()  # the database has them
    second = hostpulse(tmp_path / "b", pg_url, "init")  # another node: the same tokens
    assert second.returncode == 0 and "using the tokens of the PostgreSQL store" in second.stdout
    listed = hostpulse(tmp_path / "b", pg_url, "tokens").stdout.split("\n")
    assert [line.split()[0] for line in listed if line] == ["admin", "viewer", "agent"]
    assert [t.sha256 for t in tokens_store.tokens(pg_url) if t.username == "admin"] == [hash_token(admin)]

    added = hostpulse(tmp_path / "b", pg_url, "token-add", "alice", "--role", "viewer")
    assert added.returncode == 0 and len(added.stdout.strip()) >= 32
    again = hostpulse(tmp_path / "a", pg_url, "token-add", "alice", "--role", "viewer")
    assert again.returncode != 0 and "exists" in again.stderr
    alice = [t for t in tokens_store.tokens(pg_url) if t.username == "alice"]
    assert [(t.sha256, t.id, t.roles) for t in alice] == [(hash_token(added.stdout.strip()), 4, ("viewer",))]
    assert hostpulse(tmp_path / "a", pg_url, "token-revoke", "alice").returncode == 0
    assert hostpulse(tmp_path / "a", pg_url, "token-revoke", "alice").returncode == 1
    assert "alice" not in hostpulse(tmp_path / "b", pg_url, "tokens").stdout
    assert hostpulse(tmp_path / "b", pg_url, "commands").stdout.splitlines() == [
        " ".join([c.program, *c.args]) for c in DEFAULT_COMMANDS
    ]


def test_a_worker_follows_the_database_within_2_s(pg_url: str, tmp_path: Path) -> None:
    migrate(pg_url)
    settings = Settings(instance=tmp_path, store=StoreSettings(url=pg_url))
    store = open_store(settings)  # the settings' tokens and commands become the database's
    try:
        assert settings.tokens == () and settings.commands == DEFAULT_COMMANDS
        refresh(settings)  # from the request path: starts this process's poller
        token = tokens_store.add_token(pg_url, Token(hash_token("x" * 32), "bob", "bob@localhost", 0, ("viewer",)))
        added = time.monotonic()
        while settings.tokens != (token,):
            assert time.monotonic() - added < 2.0, "the new token not followed within 2 s"
            time.sleep(0.02)
        tokens_store.set_commands(pg_url, (Command("uptime"),))
        tokens_store.revoke_token(pg_url, "bob")
        revoked = time.monotonic()
        while settings.tokens or settings.commands != (Command("uptime"),):
            assert time.monotonic() - revoked < 2.0, "the revoke not followed within 2 s"
            time.sleep(0.02)
    finally:
        stop_following(settings)
        store.close()


def test_healthz_checks_postgresql(pg_url: str, tmp_path: Path) -> None:
    migrate(pg_url)
    settings = Settings(instance=tmp_path, store=StoreSettings(url=pg_url))
    health = health_of(settings)
    assert isinstance(health, PostgresHealth) and health.writable()
    assert type(health_of(Settings(instance=tmp_path))) is StoreHealth
    # the write lock held elsewhere longer than the check waits: not writable, said in time
    slow = PostgresHealth(pg_url, max_age=0.0, lock_timeout=0.5)
    with psycopg.connect(pg_url, autocommit=True) as other, other.transaction():
        other.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
        started = time.monotonic()
        assert slow.writable() is False
        assert time.monotonic() - started < 2.0
    assert slow.writable() is True
    gone = PostgresHealth(pg_url.rsplit("/", 1)[0] + "/no_such_database", max_age=0.0)
    assert gone.writable() is False


def test_the_config_files_tokens_are_not_used_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    # a node's config.toml with [[tokens]]: the database's tokens (none here) win
    migrate(pg_url)
    write_test_config(tmp_path, {"admin": "y" * 32})
    settings = load(tmp_path, {"HOSTPULSE_STORE_URL": pg_url})
    assert settings.tokens
    store = open_store(settings)
    try:
        assert settings.tokens == () and settings.store_source is not None
    finally:
        stop_following(settings)
        store.close()
