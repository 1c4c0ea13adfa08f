"""A job's whole process tree, contained: killed whole at its time limit and when the service
stops or dies, and over only when nothing of it runs.

A process group is not enough: a child that calls ``setsid`` or double-forks leaves it, and
outlived the time limit, the service's stop and the job's "finished". ``[jobs] containment``
chooses how a job is held (``auto``: the first that works here):

``cgroup``
    Each job runs in a cgroup (v2) of its own below the service's:
    ``<service's cgroup>/hostpulse-jobs/p<pid>-<start>/<n>-<job id>``. Nothing started in it
    can leave it; ``cgroup.kill`` ends all of it at once and ``cgroup.events`` tells when it
    is empty. The child is born inside: for the instant of the spawn the service process
    moves itself into the job's cgroup and back (about 30 us here, two writes), so the spawn
    keeps CPython's vfork and nothing runs between the service and the command. Needs a
    cgroup v2 hierarchy the service may write below its own cgroup (root, or a systemd unit
    with ``Delegate=yes``).
``subreaper``
    Where no cgroup can be made, the service process is a child subreaper
    (``PR_SET_CHILD_SUBREAPER``): what a job leaves behind (an orphan, a daemon) is
    re-parented to the service, not to init, so the tree stays below the service and is
    read from ``/proc``: the leader's descendants, and orphans carrying the job's mark
    (``HOSTPULSE_JOB`` in the environment every job process inherits). A process that both
    leaves and clears its environment escapes this mode, not the cgroup.
``group``
    Neither available (not Linux): the job's process group only, as before.

In every mode a guard process, one per service process (started with its first job, in a
session of its own), reads a pipe the service writes. When the service process dies, even
by SIGKILL, the pipe closes; the guard kills what its jobs left and records each of them
finished with -9 in its store. A service process starting again also kills the job cgroups
of service processes that are gone (their guard killed as well).

Run as ``python -m hostpulse.containment guard <mode> <owner>``: the guard.
"""

from __future__ import annotations

import ctypes
import errno
import itertools
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

log = logging.getLogger("hostpulse.jobs")

MODES = ("auto", "cgroup", "subreaper")
MARK = "HOSTPULSE_JOB"
KILLED = -signal.SIGKILL
PR_SET_CHILD_SUBREAPER = 36
# How long a killed tree may take to be gone (a process in uninterruptible sleep dies late).
KILL_WAIT = 10.0
# Hypercorn's error-log format (app/logs.py), for the guard's own lines.
LOG_FORMAT = "%(asctime)s [%(process)d] [%(levelname)s] %(message)s"
LOG_DATE_FORMAT = "[%Y-%m-%d %H:%M:%S %z]"

# One spawn at a time in a process: the cgroup mode moves the whole process for it.
_spawn_lock = threading.Lock()


class Unavailable(RuntimeError):
    """This way of containing jobs cannot be used here; the message says why."""


# --- /proc -------------------------------------------------------------------------------


class Proc(NamedTuple):
    ppid: int
    start: int  # clock ticks after boot: a pid's later owner has another
    state: str  # R, S, D, Z (exited, not yet collected), ...
    session: int

    @property
    def alive(self) -> bool:
        return self.state not in ("Z", "X")


def _stat(pid: int | str) -> Proc | None:
    """A process as ``/proc/<pid>/stat`` has it, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    fields = raw[raw.rfind(b")") + 2 :].split()
    return Proc(int(fields[1]), int(fields[19]), fields[0].decode(), int(fields[3]))


def start_time(pid: int) -> int | None:
    stat = _stat(pid)
    return None if stat is None else stat.start


def owner_name(pid: int | None = None) -> str:
    """``p<pid>-<start time>``: a process, told apart from a later one with its pid."""
    pid = os.getpid() if pid is None else pid
    return f"p{pid}-{start_time(pid)}"


def owner_alive(name: str) -> bool:
    """Whether the process an owner name stands for still runs (a name not of that form: yes)."""
    try:
        pid = int(name[1:].split("-", 1)[0])
    except ValueError:
        return True
    stat = _stat(pid)
    return stat is not None and stat.alive and owner_name(pid) == name


def _processes() -> dict[int, Proc]:
    procs = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(entry)
            if stat is not None:
                procs[int(entry)] = stat
    return procs


def _mark_of(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            environ = fh.read()
    except OSError:
        return None
    prefix = MARK.encode() + b"="
    for item in environ.split(b"\0"):
        if item.startswith(prefix):
            return item[len(prefix) :].decode(errors="replace")
    return None


def _descendants(roots: Iterable[int], children: Mapping[int, list[int]]) -> set[int]:
    found, todo = set(), list(roots)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, ()))
    return found


def _children_map(procs: Mapping[int, Proc]) -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for pid, proc in procs.items():
        children.setdefault(proc.ppid, []).append(pid)
    return children


def _kill_pids(pids: Iterable[int], procs: Mapping[int, Proc]) -> int:
    """SIGKILL each process still the one seen (same start time); how many were signalled."""
    n = 0
    for pid in pids:
        seen = procs.get(pid)
        now = _stat(pid)
        if seen and now and now.start == seen.start and now.alive:
            try:
                os.kill(pid, signal.SIGKILL)
                n += 1
            except (ProcessLookupError, PermissionError):
                pass
    return n


# --- cgroup v2 ---------------------------------------------------------------------------


def _write(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def cgroup_base() -> Path:
    """``<cgroup2 mount><this process's cgroup>/hostpulse-jobs``, or Unavailable."""
    mount = None
    try:
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            left, _, right = line.partition(" - ")
            if right.split(" ", 1)[0] == "cgroup2":
                mount = Path(left.split()[4])
                break
        own = next(
            (line[3:] for line in Path("/proc/self/cgroup").read_text().splitlines() if line.startswith("0::")), None
        )
    except OSError as exc:
        raise Unavailable(f"cannot read this process's cgroup: {exc}") from None
    if mount is None or own is None:
        raise Unavailable("no cgroup v2 hierarchy is mounted")
    if own.endswith(" (deleted)"):
        raise Unavailable("this process's cgroup is gone")
    return mount / own.lstrip("/") / "hostpulse-jobs"


def _populated(group: Path) -> bool:
    try:
        events = (group / "cgroup.events").read_text()
    except FileNotFoundError:
        return False
    return "populated 1" in events


def _kill_group(group: Path) -> None:
    """Every process in ``group`` and below it, at once (``cgroup.kill``, Linux 5.14), else
    frozen and killed one by one."""
    try:
        _write(group / "cgroup.kill", "1")
        return
    except FileNotFoundError:
        if not group.exists():
            return
    try:
        _write(group / "cgroup.freeze", "1")
    except OSError:
        pass
    for _ in range(100):
        pids = [
            int(p)
            for sub in [group, *group.rglob("*")]
            if (sub / "cgroup.procs").exists()
            for p in (sub / "cgroup.procs").read_text().split()
        ]
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    try:
        _write(group / "cgroup.freeze", "0")
    except OSError:
        pass


def _remove_tree(group: Path) -> bool:
    """rmdir ``group`` and the cgroups below it, deepest first; whether all went."""
    ok = True
    for sub in sorted((p for p in group.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        try:
            sub.rmdir()
        except OSError:
            ok = False
    try:
        group.rmdir()
    except FileNotFoundError:
        pass
    except OSError:
        ok = False
    return ok


def _wait_empty(group: Path, timeout: float = KILL_WAIT) -> bool:
    deadline = time.monotonic() + timeout
    delay = 0.005
    while _populated(group):
        if time.monotonic() > deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
    return True


def sweep_cgroups(base: Path) -> list[str]:
    """Kill and remove the job cgroups of service processes that are gone; their names."""
    swept: list[str] = []
    try:
        owners = [p for p in base.iterdir() if p.is_dir()]
    except OSError:
        return swept
    for owner in owners:
        if owner.name.startswith("p") and not owner_alive(owner.name):
            _kill_group(owner)
            _wait_empty(owner)
            _remove_tree(owner)
            swept.append(owner.name)
    return swept


# --- the ways of holding a job -------------------------------------------------------------


class Tree:
    """How jobs are held: ``spawn`` a job's leader inside, ask whether anything of a job
    still runs (``running``), ``kill`` all of it, ``release`` it once it is over."""

    mode = "group"

    def __init__(self) -> None:
        self.owner = owner_name()
        self._seq = itertools.count(1)
        self._lock = threading.Lock()
        self._guard: subprocess.Popen[bytes] | None = None
        self._jobs: dict[str, tuple[str, str]] = {}  # key -> (job id, store location), told to the guard

    # the guard ------------------------------------------------------------------------

    def _tell(self, message: dict[str, str]) -> None:
        with self._lock:
            if self._guard is None or self._guard.poll() is not None:
                self._start_guard()
            if self._guard is None or self._guard.stdin is None:
                return
            try:
                self._guard.stdin.write(json.dumps(message).encode() + b"\n")
            except OSError:  # the guard died: a new one, told about every job
                self._guard = None
                self._start_guard()

    def _start_guard(self) -> None:
        package_root = str(Path(__file__).resolve().parent.parent)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
        env.pop(MARK, None)
        try:
            guard = subprocess.Popen(
                [sys.executable, "-m", "hostpulse.containment", "guard", self.mode, self.owner_path()],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                bufsize=0,
                env=env,
                start_new_session=True,
                cwd="/",
            )
        except OSError as exc:
            log.error("jobs: cannot start the guard that ends jobs with this process: %s", exc)
            return
        self._guard = guard
        assert guard.stdin is not None
        try:
            for key, (job_id, store) in self._jobs.items():
                guard.stdin.write(json.dumps({"start": key, "job": job_id, "store": store}).encode() + b"\n")
        except OSError as exc:
            log.error("jobs: the guard that ends jobs with this process exited at once: %s", exc)

    def owner_path(self) -> str:
        return self.owner

    # jobs -------------------------------------------------------------------------------

    def spawn(
        self, job_id: str, argv: Sequence[str], cwd: Path, store: Path | str
    ) -> tuple[str, subprocess.Popen[bytes]]:
        """Start a job's leader inside; the guard knows of the job before it runs. ``store``:
        where the guard records it killed (``Store.location``: the SQLite file, or the
        PostgreSQL URL, which goes through the guard's pipe, never its command line)."""
        key = f"{next(self._seq)}-{job_id}"
        env = {**os.environ, "PYTHONUNBUFFERED": "1", MARK: f"{self.owner_path()}/{key}"}
        with self._lock:
            self._jobs[key] = (job_id, str(store))
        self._tell({"start": key, "job": job_id, "store": str(store)})
        try:
            proc = self._spawn(key, argv, cwd, env)
        except BaseException:
            self.release(key)
            raise
        return key, proc

    def _spawn(self, key: str, argv: Sequence[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
        return _popen(argv, cwd, env)

    def running(self, key: str, leader: subprocess.Popen[bytes]) -> bool:
        return leader.poll() is None

    def kill(self, key: str, leader: subprocess.Popen[bytes]) -> None:
        try:
            os.killpg(leader.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def release(self, key: str) -> None:
        """The job is over (nothing of it runs): the guard forgets it, its cgroup goes."""
        with self._lock:
            known = self._jobs.pop(key, None)
        if known is not None:
            self._tell({"done": key})
        self._forget(key)

    def _forget(self, key: str) -> None:
        """What a kind of containment drops once a job is over (its cgroup, its pids): a hook."""


def _popen(argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """The child in a session of its own, stdout and stderr on one pipe."""
    return subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=cwd,
        env=dict(env),
        start_new_session=True,
    )


class CgroupTree(Tree):
    mode = "cgroup"

    def __init__(self) -> None:
        super().__init__()
        self.base = cgroup_base()
        self.home = self.base.parent  # the cgroup this process lives in
        self.groups = self.base / self.owner
        probe_cgroup()
        try:
            self.groups.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise Unavailable(f"cannot make a cgroup below {self.home}: {exc}") from None

    def owner_path(self) -> str:
        return str(self.groups)

    def _spawn(self, key: str, argv: Sequence[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
        group = self.groups / key
        group.mkdir()
        me = str(os.getpid())
        with _spawn_lock:
            _write(group / "cgroup.procs", me)
            try:
                return _popen(argv, cwd, env)
            finally:
                _write(self.home / "cgroup.procs", me)

    def running(self, key: str, leader: subprocess.Popen[bytes]) -> bool:
        return _populated(self.groups / key)

    def kill(self, key: str, leader: subprocess.Popen[bytes]) -> None:
        _kill_group(self.groups / key)

    def _forget(self, key: str) -> None:
        group = self.groups / key
        for _ in range(50):
            try:
                group.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError as exc:
                if exc.errno != errno.EBUSY:
                    return
                time.sleep(0.01)  # the last process is leaving the cgroup


class SubreaperTree(Tree):
    mode = "subreaper"

    def __init__(self) -> None:
        super().__init__()
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
        except (OSError, AttributeError) as exc:
            raise Unavailable(f"cannot become a child subreaper: {exc}") from None
        self._leaders: dict[int, str] = {}  # leader pid (and its session's id) -> key
        self._killed: set[str] = set()
        self._orphans: dict[int, int] = {}  # job processes re-parented here: pid -> start time

    def _spawn(self, key: str, argv: Sequence[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
        proc = _popen(argv, cwd, env)
        with self._lock:
            self._leaders[proc.pid] = key
        return proc

    def members(self, key: str) -> tuple[set[int], dict[int, Proc]]:
        """The live processes of job ``key``: the leader's descendants, and what it left
        re-parented here (marked with the job), with theirs."""
        with self._lock:
            procs = _processes()
            children = _children_map(procs)
            mark = f"{self.owner}/{key}"
            roots = []
            for pid in children.get(os.getpid(), ()):
                proc = procs[pid]
                if self._leaders.get(pid) == key:
                    roots.append(pid)
                elif pid in self._leaders:
                    continue
                elif self._orphans.get(pid) == proc.start or (proc.alive and _mark_of(pid) == mark):
                    roots.append(pid)
                    self._orphans[pid] = proc.start
                elif not proc.alive and proc.session in self._leaders:
                    self._orphans[pid] = proc.start  # exited before it was seen (a double fork's middle)
                self._collect(pid, proc)
            for pid in [p for p in self._orphans if p not in procs]:
                del self._orphans[pid]
            return {pid for pid in _descendants(roots, children) if procs[pid].alive}, procs

    def _collect(self, pid: int, proc: Proc) -> None:
        """A job's process re-parented here is this process's child: collected when it exits."""
        if not proc.alive and self._orphans.get(pid) == proc.start:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass

    def running(self, key: str, leader: subprocess.Popen[bytes]) -> bool:
        live, procs = self.members(key)
        if live and key in self._killed:
            _kill_pids(live, procs)  # started after the kill: killed too
        return bool(live)

    def kill(self, key: str, leader: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._killed.add(key)
        live, procs = self.members(key)
        _kill_pids(live, procs)

    def _forget(self, key: str) -> None:
        with self._lock:
            self._killed.discard(key)
            for pid in [p for p, k in self._leaders.items() if k == key]:
                del self._leaders[pid]


_trees: dict[tuple[int, str], Tree] = {}
_trees_lock = threading.Lock()


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise Unavailable(f"[jobs] containment = {mode!r}: expected one of {', '.join(MODES)}")
    return mode


def tree(mode: str) -> Tree:
    """This process's way of holding jobs for ``mode`` (``[jobs] containment``), made at its
    first job (per process: a server's workers each have their own, and their own guard)."""
    check_mode(mode)
    with _trees_lock:
        made = _trees.get((os.getpid(), mode))
        if made is None:
            if mode == "cgroup":
                made = CgroupTree()
            elif mode == "subreaper":
                made = SubreaperTree()
            else:
                made = _auto()
            _trees[(os.getpid(), mode)] = made
        return made


def prepare(mode: str) -> None:
    """At a service's start: refuse a mode that cannot work here, and kill what service
    processes that are gone left in their job cgroups (the restart after a ``kill -9``)."""
    check_mode(mode)
    if mode == "cgroup":
        probe_cgroup()
    if mode in ("cgroup", "auto"):
        try:
            base = cgroup_base()
        except Unavailable:
            return
        swept = sweep_cgroups(base)
        if swept:
            log.warning("jobs: killed what service processes that are gone left running (%s)", ", ".join(swept))


def probe_cgroup() -> None:
    """Make a cgroup below this process's, step into it and back, remove it; or Unavailable."""
    base = cgroup_base()
    probe = base / f"probe-{os.getpid()}"
    try:
        probe.mkdir(parents=True, exist_ok=True)
        try:
            _write(probe / "cgroup.procs", str(os.getpid()))
            _write(base.parent / "cgroup.procs", str(os.getpid()))
        finally:
            probe.rmdir()
    except OSError as exc:
        raise Unavailable(f"cannot make and enter a cgroup below {base.parent}: {exc}") from None


def _auto() -> Tree:
    reasons = []
    for kind in (CgroupTree, SubreaperTree):
        try:
            made = kind()
        except Unavailable as exc:
            reasons.append(str(exc))
            continue
        if reasons:
            log.info("jobs: contained by %s (%s)", made.mode, "; ".join(reasons))
        return made
    log.warning("jobs: only each job's process group can be killed here (%s)", "; ".join(reasons))
    return Tree()


# --- the guard ---------------------------------------------------------------------------


def _guard_kill_cgroup(owner: Path) -> None:
    _kill_group(owner)
    _wait_empty(owner)
    _remove_tree(owner)


def _guard_kill_marked(owner: str) -> None:
    """Every process marked with one of ``owner``'s jobs, with its descendants, until none."""
    deadline = time.monotonic() + KILL_WAIT
    while time.monotonic() < deadline:
        procs = _processes()
        children = _children_map(procs)
        marked = [pid for pid in procs if pid != os.getpid() and (_mark_of(pid) or "").startswith(owner + "/")]
        live = {p for p in _descendants(marked, children) if procs[p].alive}
        if not live or not _kill_pids(live, procs):
            return
        time.sleep(0.02)


def guard(mode: str, owner: str) -> int:
    """Wait for the service process to be gone (its end of stdin closes), then end what its
    jobs left and record them killed."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    jobs: dict[str, tuple[str, str]] = {}
    for line in sys.stdin.buffer:
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if "start" in message:
            jobs[message["start"]] = (message["job"], message["store"])
        elif "done" in message:
            jobs.pop(message["done"], None)
    if mode == "cgroup":
        _guard_kill_cgroup(Path(owner))
    else:
        _guard_kill_marked(owner)
    if not jobs:
        return 0
    logging.basicConfig(format=LOG_FORMAT, datefmt=LOG_DATE_FORMAT, level=logging.INFO, stream=sys.stderr)
    from hostpulse.store_url import open_location

    for job_id, store in jobs.values():
        try:
            opened = open_location(store)
            try:
                opened.finish_job(job_id, KILLED)
            finally:
                opened.close()
        except Exception as exc:  # one store unwritable: the others still recorded
            log.error("jobs: job %s was killed, but its end could not be recorded: %s", job_id, exc)
    log.warning(
        "jobs: the service process %s is gone; killed its jobs %s",
        owner.rsplit("/", 1)[-1].split("-")[0][1:],
        ", ".join(sorted(job for job, _ in jobs.values())),
    )
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "guard":
        sys.exit(guard(sys.argv[2], sys.argv[3]))
    sys.exit("usage: python -m hostpulse.containment guard <mode> <owner>")
