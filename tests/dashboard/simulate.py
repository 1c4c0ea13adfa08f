"""Simulated hosts with plausible values, sent as agents send them: real batches posted to
``POST /ingest`` with an agent token, each acknowledged before the next.

A host's values are a deterministic function of its number and the time (gauges that
wander, counters that only grow), so a history of 30 days and the latest batch agree.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections.abc import Iterable, Iterator

from tests.support import http

GiB = 2**30
_seq = itertools.count(1)


def values(n: int, ts: float, cores: int = 4) -> dict[str, float]:
    """Host number ``n``'s series at time ``ts``, named as the agent names them."""
    phase = n * 0.7
    wave = (math.sin(ts / 600 + phase) + 1) / 2  # a 1-hour rhythm
    day = (math.sin(ts / 13750 + phase) + 1) / 2  # a 1-day rhythm
    cpu = 5 + 50 * wave * day + 10 * ((n * 7 + int(ts / 10)) % 5) / 5
    total = (8 + 8 * (n % 3)) * GiB
    used = total * (0.35 + 0.3 * day)
    out: dict[str, float] = {
        "cpu_percent": round(cpu, 1),
        "virtual_memory.total": total,
        "virtual_memory.used": round(used),
        "virtual_memory.available": round(total - used),
        "virtual_memory.percent": round(100 * used / total, 1),
        "swap_memory.total": 2 * GiB,
        "swap_memory.used": round(0.2 * GiB * day),
        "swap_memory.percent": round(10 * day, 1),
        "getloadavg.0": round(cores * cpu / 100, 2),
        "getloadavg.1": round(cores * cpu / 110, 2),
        "getloadavg.2": round(cores * cpu / 120, 2),
        "boot_time": 1_760_000_000.0 + n * 3600,
        "pids": 180 + n % 50,
    }
    for core in range(cores):
        out[f"cpu_percent.{core}"] = round(min(100.0, cpu * (0.6 + 0.25 * core)), 1)
    for mount, size, base in (("/", 64, 0.4), ("/var", 200, 0.55)):
        fill = base + 0.3 * ((n % 10) / 10) + 0.0000001 * (ts % 86400)
        out[f"disk_usage.{mount}.total"] = size * GiB
        out[f"disk_usage.{mount}.used"] = round(size * GiB * fill)
        out[f"disk_usage.{mount}.percent"] = round(100 * fill, 1)
    # counters: bytes since an epoch, growing at rates that follow the load
    since = ts - 1_700_000_000
    out["net_io_counters.bytes_recv"] = round(since * (40_000 + 3000 * n) + 2e6 * math.sin(ts / 600 + phase))
    out["net_io_counters.bytes_sent"] = round(since * (9_000 + 500 * n) + 4e5 * math.sin(ts / 600 + phase))
    out["disk_io_counters.read_bytes"] = round(since * 120_000 + 5e6 * math.sin(ts / 900 + phase))
    out["disk_io_counters.write_bytes"] = round(since * 300_000 + 8e6 * math.sin(ts / 700 + phase))
    return out


def post(url: str, token: str, host: str, samples: list[dict[str, object]], interval: float = 10.0) -> None:
    """One batch, acknowledged (200) before this returns."""
    batch = {"host": host, "run": "sim", "seq": next(_seq), "interval": interval, "samples": samples}
    status, _, body = http(
        "POST",
        url + "/ingest",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        body=json.dumps(batch).encode(),
    )
    assert status == 200, body


def history_times(now: float) -> Iterator[float]:
    """Sample times for every range of the host page: hourly for 30 days, every 5 minutes
    for a day, every 10 s for the last 15 minutes; oldest first."""
    yield from (now - 29.5 * 86400 + i * 3600 for i in range(int(29.5 * 24) - 24))
    yield from (now - 86400 + i * 300 for i in range(288 - 3))
    yield from (now - 900 + i * 10 for i in range(90))


def send_history(url: str, token: str, host: str, n: int, times: Iterable[float], per_batch: int = 500) -> None:
    samples = [{"ts": ts, "values": values(n, ts)} for ts in times]
    for start in range(0, len(samples), per_batch):
        post(url, token, host, samples[start : start + per_batch])


def send_now(url: str, token: str, host: str, n: int) -> None:
    post(url, token, host, [{"ts": time.time(), "values": values(n, time.time())}])
