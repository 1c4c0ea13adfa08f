"""Issue 11, item 13: a finished job lost its output.

``exec df -h`` then ``poll`` answered ``finished`` with no line at all: the last lines were
stored but the finished answer never carried them. SPEC: the finished answer carries the
newest lines not yet polled in ``output`` (``""`` when none), both apps alike.

The job is left to finish before the first poll (its status read from the store, which
marks nothing as seen), so no running answer can take the lines first.
"""

from __future__ import annotations

import pytest

from tests.faults.live_jobs import JobsService, eventually

FIVE = """
for i in range(1, 6):
    print(f"line {i}")
"""


def finished_unpolled(service: JobsService, job_id: str) -> None:
    eventually(lambda: service.job_status(job_id) == "finished", f"job {job_id} to finish", timeout=30)


@pytest.mark.parametrize("flavour", ["quart", "flask"])
def test_the_finished_answer_carries_the_newest_unpolled_lines(services, tmp_path, flavour):
    service = JobsService(tmp_path / flavour, flavour)
    services.append(service)
    service.script("five.py", FIVE)
    service.start()
    assert service.exec("five", "python3 five.py")[0] == 200
    finished_unpolled(service, "five")
    assert service.poll("five") == {
        "mode": "poll",
        "status": "finished",
        "returncode": 0,
        "output": "line 3\nline 4\nline 5",
    }
    # shown once: the next poll has nothing new
    assert service.poll("five") == {"mode": "poll", "status": "finished", "returncode": 0, "output": ""}


@pytest.mark.parametrize("flavour", ["quart", "flask"])
def test_df_answers_its_lines_when_polled_after_the_end(services, tmp_path, flavour):
    service = JobsService(tmp_path / flavour, flavour)
    services.append(service)
    service.start()
    assert service.exec("df", "df -h")[0] == 200
    finished_unpolled(service, "df")
    answer = service.poll("df")
    assert (answer["status"], answer["returncode"]) == ("finished", 0), answer
    lines = answer["output"].split("\n")
    assert answer["output"] and 1 <= len(lines) <= 3, answer
    assert all(line.split()[-1].startswith("/") for line in lines), "df's lines end with a mount point"
