"""Issue 11, item 4: jobs escaped their limits.

A job whose child called ``setsid`` (or double-forked) survived its time limit, since only
the job's process group was killed; a job that closed its output and left a daemon was
reported finished while the daemon ran; after the service was ``kill -9``ed a job's child
ran on for good while ``poll`` said finished/-9. Each job's whole process tree is now
contained (a cgroup of its own where the service may make one, else the service as child
subreaper with the tree read from ``/proc``), killed whole at the limit and when the
service stops or dies, and a job is ``finished`` only once nothing of it runs.

Both apps under their real servers, in both containment modes (``[jobs] containment``).
Every wait polls up to a deadline; nothing asserts how long anything took.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.faults.live_jobs import JobsService, end_recorded, eventually, pid_alive

# The job's leader records itself, starts a child that leaves the job's session (setsid) and a
# daemon by double fork (its parent exits at once, so it is orphaned), then waits.
ESCAPE = """
record("leader")
if os.fork() == 0:
    os.setsid()
    leave("setsid")
if os.fork() == 0:
    if os.fork() == 0:
        os.setsid()
        leave("daemon")
    os._exit(0)
print("started", flush=True)
time.sleep(HOLD)
"""

# A daemon that lets go of the job's output (stdin, stdout, stderr to /dev/null); the leader
# exits 0 at once, so the job's pipe closes while the daemon runs.
DAEMON = """
if os.fork() == 0:
    if os.fork() == 0:
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        leave("daemon")
    os._exit(0)
print("daemon started", flush=True)
"""

ESCAPED = ("leader", "setsid", "daemon")


def cgroup_writable() -> bool:
    """Whether this process may make a cgroup (v2) below its own, as the service would."""
    try:
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
        own = next(line[3:] for line in Path("/proc/self/cgroup").read_text().splitlines() if line.startswith("0::"))
    except (OSError, StopIteration):
        return False
    for line in mounts:
        fields = line.split(" - ", 1)
        if len(fields) == 2 and fields[1].split()[0] == "cgroup2":
            probe = Path(fields[0].split()[4]) / own.lstrip("/") / f"hostpulse-probe-{os.getpid()}"
            try:
                probe.mkdir()
                probe.rmdir()
                return True
            except OSError:
                return False
    return False


MODES = [
    pytest.param("cgroup", marks=pytest.mark.skipif(not cgroup_writable(), reason="no writable cgroup v2 here")),
    "subreaper",
]


def make(services, tmp_path: Path, flavour: str, mode: str, timeout: float) -> JobsService:
    service = JobsService(
        tmp_path / f"{flavour}-{mode}", flavour, env={"HOSTPULSE_JOBS_CONTAINMENT": mode}, jobs={"timeout": timeout}
    )
    service.script("escape.py", ESCAPE)
    service.script("daemon.py", DAEMON)
    services.append(service)
    return service.start()


def in_job_cgroup(pid: int) -> bool:
    return "/hostpulse-jobs/" in Path(f"/proc/{pid}/cgroup").read_text()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("flavour", ["quart", "flask"])
def test_the_whole_tree_is_killed_at_the_time_limit(services, tmp_path, flavour, mode):
    service = make(services, tmp_path, flavour, mode, timeout=2.0)
    assert service.exec("escape", "python3 escape.py") == (200, {"mode": "exec", "status": "accepted"})
    pids = {name: service.recorded(name) for name in ESCAPED}
    assert [in_job_cgroup(pid) for pid in pids.values()] == [mode == "cgroup"] * 3, "contained as configured"
    final, _ = service.wait_finished("escape")
    still = [name for name, pid in pids.items() if pid_alive(pid)]
    assert (final["status"], final["returncode"]) == ("finished", -signal.SIGKILL), final
    assert still == [], f"{still} of the job outlived its time limit"
    # the slot is free again
    assert service.exec("after", "uptime") == (200, {"mode": "exec", "status": "accepted"})
    assert service.wait_finished("after")[0]["returncode"] == 0


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("flavour", ["quart", "flask"])
def test_a_job_is_not_finished_while_its_daemon_runs(services, tmp_path, flavour, mode):
    service = make(services, tmp_path, flavour, mode, timeout=4.0)
    assert service.exec("daemon", "python3 daemon.py")[0] == 200
    daemon = service.recorded("daemon")
    answers = []

    def finished() -> dict | None:
        answers.append(service.poll("daemon"))
        if answers[-1]["status"] == "finished":
            assert not pid_alive(daemon), f"poll said finished while the job's daemon {daemon} ran: {answers}"
            return answers[-1]
        return None

    final = eventually(finished, "the daemon's job to finish", timeout=60, every=0.1)
    assert answers[0]["status"] == "running", answers
    # the leader exited 0, but the job ran past its limit: it was killed, and says so
    assert final["returncode"] == -signal.SIGKILL, answers


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("flavour", ["quart", "flask"])
def test_nothing_of_a_job_outlives_the_service(services, tmp_path, flavour, mode, how):
    service = make(services, tmp_path, flavour, mode, timeout=60.0)
    assert service.exec("orphan", "python3 escape.py")[0] == 200
    pids = {name: service.recorded(name) for name in ESCAPED}
    if how == "SIGKILL":
        service.kill()
    else:
        service.terminate()
    try:
        eventually(
            lambda: not any(pid_alive(pid) for pid in pids.values()),
            f"the job's processes {pids} to end with the service ({how})",
            timeout=30,
        )
    finally:
        end_recorded(service.scripts)
    # restarted, the service tells what happened: the job was killed
    service.start()
    answer = service.poll("orphan")
    assert (answer["status"], answer["returncode"]) == ("finished", -signal.SIGKILL), answer
