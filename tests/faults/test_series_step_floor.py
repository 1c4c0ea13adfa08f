"""Issue 11, item 14 (step): ``step=5e-324`` answered 200 with wrong bucket timestamps.

``CAST(ts / step AS INTEGER)`` saturates for a step that small, so every bucket came
back at a time no sample had. A step under 1 ms is refused with 400 in the series query.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from tests.agent.live import AGENT, Service
from tests.support import http


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    running = Service(tmp_path_factory.mktemp("instance")).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def ts(service: Service) -> float:
    """One stored sample's time (a whole second plus a quarter, so 1 ms buckets are exact)."""
    at = float(int(time.time()) - 10) + 0.25
    body = {"host": "steps", "run": "r", "seq": 1, "samples": [{"ts": at, "values": {"x": 4.0}}]}
    status, _, reply = http(
        "POST",
        service.url + "/ingest",
        body=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {AGENT}", "Content-Type": "application/json"},
    )
    assert (status, json.loads(reply)) == (200, {"ack": 1, "run": "r"})
    return at


@pytest.mark.parametrize("step", ["5e-324", "1e-300", "0.0001", "0.000999"])
def test_steps_under_one_millisecond_are_refused(service: Service, ts: float, step: str) -> None:
    status, body = service.get(f"/hosts/steps/series?name=x&step={step}")
    assert status == 400, body
    assert body["error"] == "bad_request"
    assert "step" in body["message"] and "1 ms" in body["message"], body


@pytest.mark.parametrize("step", ["0.001", "1", "60"])
def test_steps_from_one_millisecond_bucket_correctly(service: Service, ts: float, step: str) -> None:
    status, body = service.get(f"/hosts/steps/series?name=x&step={step}")
    assert status == 200, body
    ((bucket, value),) = body["points"]
    assert value == 4.0
    # The bucket is the step-aligned start at or just before the sample.
    assert bucket <= ts < bucket + float(step) + 1e-6
