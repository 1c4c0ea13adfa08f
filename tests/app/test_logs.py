"""The port's logs under a real Hypercorn: service messages on stderr, access lines on stdout."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from hostpulse.testing import write_test_config
from tests.support import free_port, http, hypercorn_argv, serve

ADMIN = "admin-token-for-logs"
AGENT = "agent-token-for-logs"


def test_service_messages_and_access_lines_reach_the_logs(tmp_path: Path) -> None:
    write_test_config(tmp_path, {"admin": ADMIN, "agent": AGENT}, jobs={"timeout": 1.0}, store={"retention": 1.0})
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "sleepy.py").write_text("import time\ntime.sleep(60)\n")
    port = free_port()
    log = tmp_path / "hypercorn.log"
    argv = hypercorn_argv(port)
    base = f"http://127.0.0.1:{port}"
    with serve(argv, port, env={"HOSTPULSE_INSTANCE": str(tmp_path)}, log=log):
        # A sample older than the retention (1 s) is refused (SPEC): this one is 2 s ahead,
        # so a request up to 3 s slow still stores it, and it is pruned 3 s from now.
        batch = {"host": "logs-1", "run": "r1", "seq": 1, "samples": [{"ts": time.time() + 2, "values": {"x": 1.0}}]}
        status, _, body = http(
            "POST",
            f"{base}/ingest",
            body=json.dumps(batch).encode(),
            headers={"Authorization": f"Bearer {AGENT}", "Content-Type": "application/json"},
        )
        assert (status, json.loads(body)) == (200, {"ack": 1, "run": "r1"})
        status, _, _ = http(
            "POST",
            f"{base}/api/exec/slow",
            body=b'{"cmd": "python3 sleepy.py"}',
            headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"},
        )
        assert status == 200
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            text = log.read_text(errors="replace")
            if "retention: deleted" in text and "passed its time limit" in text:
                break
            time.sleep(0.2)
    text = log.read_text(errors="replace")
    # INFO from the service itself (it had no handler before and was dropped)
    assert re.search(r"\[\d+\] \[INFO\] retention: deleted 1 samples older than 1 s", text), text
    assert re.search(r"\[\d+\] \[WARNING\] job slow passed its time limit; killing it", text), text
    # the access lines, one a request, with status and body size
    assert re.search(r'\[INFO\] <\d+> 127\.0\.0\.1:\d+ "POST /ingest 1\.1" 200 \d+ \d+us', text), text
    assert re.search(r'"POST /api/exec/slow 1\.1" 200 \d+ \d+us', text), text
    assert re.search(r'"GET /healthz 1\.1" 200 \d+ \d+us', text), text  # serve() waited on it
