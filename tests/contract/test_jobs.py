"""Jobs for real (seed 004): real child processes, ``exec`` -> ``accepted``/``busy``, ``poll`` -> lines, the end.

Every wait is a poll loop with a generous deadline; nothing asserts how long anything took.
"""

from __future__ import annotations

import re
import signal

from .helpers import pid_alive, wait_for

ACCEPTED = {"mode": "exec", "status": "accepted"}
BUSY = {"mode": "exec", "status": "busy"}
LINE = re.compile(r"line (\d+)")


def ended(final: dict) -> dict:
    """A finished answer without its ``output`` (the lines no poll took yet, which depend on
    when the polls came), after checking it has one."""
    assert set(final) == {"mode", "status", "returncode", "output"}, final
    return {k: v for k, v in final.items() if k != "output"}


def numbers(output: str) -> list[int]:
    lines = output.split("\n")
    found = [LINE.fullmatch(line) for line in lines]
    assert all(found), output
    return [int(m.group(1)) for m in found]


def test_exec_then_poll_until_finished(svc):
    reply = svc.exec("count", "python3 count.py")
    assert reply.status == 200
    assert reply.json() == ACCEPTED
    final, outputs = svc.wait_finished("count")
    assert ended(final) == {"mode": "poll", "status": "finished", "returncode": 0}
    # each poll showed at most line_num (3) new lines, never one already shown
    line_num = svc.settings.jobs.line_num
    seen: list[int] = []
    for output in outputs:
        got = numbers(output)
        assert 1 <= len(got) <= line_num, output
        assert got == list(range(got[0], got[0] + len(got))), "consecutive, oldest first"
        seen += got
    assert seen == sorted(set(seen)), "no line is shown twice"
    assert seen, "a job printing lines over a second showed some"
    assert all(1 <= n <= 10 for n in seen)
    assert seen[-1] == 10, "the last line is never lost, even when the job ended between two polls"


def test_poll_answers_while_running(svc):
    assert svc.exec("gated", "python3 gated.py").json() == ACCEPTED
    state = svc.poll_json("gated")
    assert state["status"] == "running"
    assert set(state) == {"mode", "status", "output"}
    assert state["mode"] == "poll"
    svc.open_gate("go-1")
    svc.open_gate("go-2")
    svc.wait_finished("gated")


def test_poll_shows_the_newest_unpolled_lines(svc):
    line_num = svc.settings.jobs.line_num
    assert svc.exec("gated", "python3 gated.py").json() == ACCEPTED
    # the script printed lines 1..10 in one write, then waits for go-1
    state = svc.wait_output("gated")
    assert state["status"] == "running"
    assert numbers(state["output"]) == list(range(11 - line_num, 11))
    # nothing new since: an empty output, not the same lines again
    again = svc.poll_json("gated")
    assert again == {"mode": "poll", "status": "running", "output": ""}
    svc.open_gate("go-1")  # two more lines, then it waits for go-2
    state = svc.wait_output("gated")
    assert state["status"] == "running"
    assert numbers(state["output"]) == [11, 12]
    svc.open_gate("go-2")
    final, outputs = svc.wait_finished("gated")
    assert final == {"mode": "poll", "status": "finished", "returncode": 0, "output": ""}
    assert outputs == []


def test_line_num_comes_from_the_config(make_service):
    svc = make_service(jobs={"line_num": 5})
    assert svc.exec("gated", "python3 gated.py").json() == ACCEPTED
    state = svc.wait_output("gated")
    assert numbers(state["output"]) == [6, 7, 8, 9, 10]
    svc.open_gate("go-1")
    svc.open_gate("go-2")
    svc.wait_finished("gated")


def test_poll_by_post(svc):
    assert svc.exec("viapost", "python3 quick.py").json() == ACCEPTED
    svc.wait_finished("viapost")
    reply = svc.poll("viapost", method="POST")
    assert reply.status == 200
    assert reply.json() == {"mode": "poll", "status": "finished", "returncode": 0, "output": ""}


def test_failing_job_reports_its_returncode(svc):
    assert svc.exec("fail", "python3 fail.py").json() == ACCEPTED
    final, outputs = svc.wait_finished("fail")
    assert ended(final) == {"mode": "poll", "status": "finished", "returncode": 3}
    assert outputs == ["about to fail"], "its line, while running or with the end"


def test_second_exec_is_busy_at_the_limit(svc):
    assert svc.settings.jobs.limit == 1
    assert svc.exec("first", "python3 hold.py").json() == ACCEPTED
    reply = svc.exec("second", "python3 quick.py")
    assert reply.status == 200
    assert reply.json() == BUSY
    assert svc.poll("second").status == 404, "a busy exec starts nothing"
    # the same id again while it runs: busy too
    assert svc.exec("first", "python3 quick.py").json() == BUSY
    assert svc.poll_json("first")["status"] == "running"
    svc.open_gate("release")
    final, _ = svc.wait_finished("first")
    assert final["returncode"] == 0
    # the slot is free again
    assert svc.exec("second", "python3 quick.py").json() == ACCEPTED
    assert svc.wait_finished("second")[0]["returncode"] == 0


def test_same_id_while_running_is_busy_under_the_limit(make_service):
    svc = make_service(jobs={"limit": 2})
    assert svc.exec("a", "python3 hold.py").json() == ACCEPTED
    assert svc.exec("a", "python3 quick.py").json() == BUSY
    assert svc.exec("b", "python3 hold.py").json() == ACCEPTED
    assert svc.exec("c", "python3 quick.py").json() == BUSY
    svc.open_gate("release")
    assert svc.wait_finished("a")[0]["returncode"] == 0
    assert svc.wait_finished("b")[0]["returncode"] == 0
    assert svc.poll("c").status == 404


def test_a_finished_id_can_start_again(svc):
    assert svc.exec("again", "python3 fail.py").json() == ACCEPTED
    assert svc.wait_finished("again")[0]["returncode"] == 3
    assert svc.exec("again", "python3 gated.py").json() == ACCEPTED
    state = svc.wait_output("again")
    assert state["status"] == "running", "the new run, not the old result"
    assert all(LINE.fullmatch(line) for line in state["output"].split("\n")), "none of the old run's lines"
    svc.open_gate("go-1")
    svc.open_gate("go-2")
    final, _ = svc.wait_finished("again")
    assert ended(final) == {"mode": "poll", "status": "finished", "returncode": 0}


def test_job_over_its_time_limit_is_killed(make_service):
    svc = make_service(jobs={"timeout": 1.0})
    assert svc.exec("slow", "python3 slow.py").json() == ACCEPTED
    pids_file = svc.scripts / "slow.pids"
    wait_for(pids_file.exists, what="slow.py to record its pids")
    child, grandchild = (int(p) for p in pids_file.read_text().split())
    final, _ = svc.wait_finished("slow", timeout=30)
    assert ended(final) == {"mode": "poll", "status": "finished", "returncode": -signal.SIGKILL}
    # the child and what it started (its process group) are gone
    wait_for(lambda: not pid_alive(child), timeout=10, what=f"child {child} to be gone")
    wait_for(lambda: not pid_alive(grandchild), timeout=10, what=f"grandchild {grandchild} to be gone")
    # and the slot is free for another job
    assert svc.exec("after", "python3 quick.py").json() == ACCEPTED
    assert svc.wait_finished("after")[0]["returncode"] == 0


def test_unknown_job_is_404(svc):
    for method in ("GET", "POST"):
        reply = svc.poll("never-started", method=method)
        assert reply.status == 404
        body = reply.json()
        assert set(body) == {"error", "message"}
        assert body["error"] == "unknown_job"


def test_jobs_are_kept_per_instance(make_service):
    one, two = make_service(), make_service()
    assert one.exec("mine", "python3 quick.py").json() == ACCEPTED
    one.wait_finished("mine")
    assert two.poll("mine").status == 404
