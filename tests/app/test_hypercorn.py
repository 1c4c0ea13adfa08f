"""The port under a real Hypercorn with two workers: any worker answers any job request."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from hostpulse.testing import write_test_config
from tests.support import free_port, http, hypercorn_argv, serve

ADMIN = "admin-token-for-two-workers"
SCRIPT = "import time\nfor i in range(40):\n    print('line', i, flush=True)\n    time.sleep(0.1)\n"


def test_exec_on_one_worker_is_polled_through_the_other(tmp_path: Path) -> None:
    write_test_config(tmp_path, {"admin": ADMIN}, jobs={"timeout": 60.0})
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "lines.py").write_text(SCRIPT)
    port = free_port()
    log = tmp_path / "hypercorn.log"
    argv = hypercorn_argv(port, 2)
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {ADMIN}"}
    with serve(argv, port, env={"HOSTPULSE_INSTANCE": str(tmp_path)}, log=log):
        status, _, body = http(
            "POST",
            f"{base}/api/exec/two-workers",
            headers={**auth, "Content-Type": "application/json"},
            body=json.dumps({"cmd": "python3 lines.py"}).encode(),
        )
        assert (status, json.loads(body)) == (200, {"mode": "exec", "status": "accepted"})
        seen_lines: list[str] = []
        answers: list[dict[str, object]] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status, _, body = http("POST", f"{base}/api/poll/two-workers", headers=auth)
            assert status == 200
            answer = json.loads(body)
            answers.append(answer)
            seen_lines += [line for line in str(answer["output"]).split("\n") if line]
            if answer["status"] == "finished":
                break
            time.sleep(0.05)
        time.sleep(0.5)  # let the access log reach the file
    assert answers[-1] == {"mode": "poll", "status": "finished", "returncode": 0, "output": answers[-1]["output"]}
    assert seen_lines, "polls showed no output"
    numbers = [int(line.split()[1]) for line in seen_lines]
    assert numbers == sorted(set(numbers)), "a line was shown twice or out of order"
    # The app's access log (app/access_log.py): worker pid, client, request line, status, bytes.
    lines = re.findall(
        r'<(\d+)> 127\.0\.0\.1:\d+ "POST /api/(exec|poll)/two-workers 1\.1" (\d+) (\d+) \d+us', log.read_text()
    )
    assert len(lines) == 1 + len(answers), lines
    assert {(kind, status) for _, kind, status, _ in lines} == {("exec", "200"), ("poll", "200")}
    assert all(int(size) > 0 for *_, size in lines)
    pids = {pid for pid, *_ in lines}
    assert len(pids) == 2, f"all requests went to one worker: {pids}"
