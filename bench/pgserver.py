"""A real PostgreSQL server in a temporary folder, for the tests (``tests/pg``) and for
``bench.agents --store postgresql``: Debian's ``initdb`` and ``pg_ctl``, on 127.0.0.1 and an
ephemeral port, trust auth for one user, its unix socket in that folder, stopped with
``pg_ctl stop -m fast``. One home for both, so the bench measures the server the tests check.

PostgreSQL refuses to run as root: as root (CI containers), ``initdb`` and ``pg_ctl`` run as
the ``postgres`` user (``runuser``), and the folder is theirs. The folder is made with
:func:`tempfile.mkdtemp` under ``/tmp``, not pytest's ``tmp_path``: that one sits below a
``0700`` folder of root's, which ``postgres`` could not enter.

``fsync`` is off unless ``durable``: the tests kill service nodes, never this server, so
nothing they check depends on PostgreSQL's own durability, and two shared cores gain much.
The bench is ``durable`` (PostgreSQL's defaults), as the SQLite store it is compared with
syncs every commit (``synchronous=FULL``): an ack promises the batch is on disk.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

USER = "hostpulse"  # initdb's superuser, trusted on loopback and the socket
RUN_AS = "postgres"  # the account the server runs as when we run as root
MISSING = (
    "PostgreSQL's initdb and pg_ctl are not installed (looked in /usr/lib/postgresql/*/bin and PATH): "
    "install Debian's postgresql package (apt-get install postgresql; .ci/run does)"
)


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL binaries here, or the server would not start; the message says which."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` with ``initdb``, else ``initdb`` on PATH."""

    def version(path: str) -> tuple[int, ...]:
        match = re.search(r"/postgresql/([\d.]+)/", path)
        return tuple(int(p) for p in match.group(1).split(".")) if match else ()

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version)
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    return Path(on_path).resolve().parent if on_path else None


class PostgresServer:
    """One server in its own folder; :meth:`start`, :meth:`url` for a database, :meth:`stop`."""

    def __init__(self, bindir: Path | None = None, durable: bool = False) -> None:
        found = bindir or find_bindir()
        if found is None or not (found / "pg_ctl").exists():
            raise PostgresUnavailable(MISSING)
        self.bindir = found
        self.durable = durable
        self.root = Path(tempfile.mkdtemp(prefix="hostpulse-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root / "socket"
        self.log = self.root / "server.log"
        self.port = 0
        self.as_root = os.geteuid() == 0

    def _run(self, *argv: str, timeout: float = 120) -> None:
        """Run a PostgreSQL program, as ``postgres`` when we are root; its output on failure."""
        command = [str(self.bindir / argv[0]), *argv[1:]]
        if self.as_root:
            command = ["runuser", "-u", RUN_AS, "--", *command]
        done = subprocess.run(command, cwd=self.root, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise PostgresUnavailable(f"{argv[0]} failed ({done.returncode}): {done.stderr.strip()}\n{log}")

    def start(self) -> PostgresServer:
        """initdb, then pg_ctl start; on failure nothing is left running nor on disk."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> PostgresServer:
        self.socket_dir.mkdir()
        if self.as_root:
            account = pwd.getpwnam(RUN_AS)
            os.chmod(self.root, 0o700)
            for path in (self.root, self.socket_dir):
                os.chown(path, account.pw_uid, account.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8", "--no-sync")
        durability = "" if self.durable else " -c fsync=off -c full_page_writes=off"
        for _attempt in range(3):  # the port is free when chosen; another process may take it first
            self.port = free_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.socket_dir} -c max_connections=200{durability}"
            )
            try:
                self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", options, "start")
                return self
            except PostgresUnavailable:
                if "could not bind" not in (self.log.read_text(errors="replace") if self.log.exists() else ""):
                    raise
                time.sleep(0.1)
        raise PostgresUnavailable(f"no free port for PostgreSQL after 3 tries; see {self.log}")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database on this server; its URL."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url(), autocommit=True) as db:
            db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def pid(self) -> int:
        """The postmaster's process id (its backends are its children)."""
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def running(self) -> bool:
        pid_file = self.data / "postmaster.pid"
        return pid_file.exists()

    def stop(self) -> None:
        """``pg_ctl stop -m fast`` (clients cut off, a clean shutdown), then the folder goes."""
        try:
            if self.running():
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
