"""``python -m bench.store``: the series store alone, on agent-like data.

Three figures, each with the command line that produced it in the README:

- **bytes per sample**: every file of the store (SQLite file, WAL, all tiers) over the
  samples it holds, after ``--days`` simulated days of ``--hosts`` hosts at ``--interval``;
- **samples stored per second**: ``store_batches`` plus the compaction that follows it,
  for batches as agents send them (one sample each, group commits of 512) and in bulk
  (60 samples a batch);
- **a 30-day query**: ``series`` of one host over ``--query-days`` at ``step=3600`` (the
  hourly tier) and at ``step=300``, median of 20.

Values are what psutil gives (``agent/collect.py``'s default names): percentages to one
decimal that wander, byte counters that grow in bursts, memory in whole pages, constants,
load averages in 1/2048ths, times with jitter.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from hostpulse.samples import Batch, Sample
from hostpulse.series import SeriesStore

RESULTS = Path(__file__).resolve().parent / "results"
START = 1_764_000_000.0
GiB = 1024**3


class Host:
    """One simulated host's psutil values, step by step."""

    def __init__(self, seed: int, cores: int = 2) -> None:
        self.rng = np.random.default_rng(seed)
        self.cores = cores
        self.cpu = 20.0
        self.used = 3.0 * GiB
        self.disk_used = {"/": 40.0 * GiB, "/boot": 0.2 * GiB}
        self.counters = {
            f"disk_io_counters.{f}": float(self.rng.integers(1e6, 1e9))
            for f in ("read_count", "write_count", "read_bytes", "write_bytes", "read_time", "write_time", "busy_time")
        } | {
            f"net_io_counters.{f}": float(self.rng.integers(1e6, 1e9))
            for f in ("bytes_sent", "bytes_recv", "packets_sent", "packets_recv")
        }
        self.load = [0.5, 0.6, 0.7]

    def values(self) -> dict[str, float]:
        r = self.rng
        self.cpu = min(100.0, max(0.0, self.cpu + r.normal(0, 3)))
        values = {"cpu_percent": round(self.cpu, 1)}
        for core in range(self.cores):
            values[f"cpu_percent.{core}"] = round(min(100.0, max(0.0, self.cpu + r.normal(0, 5))), 1)
        total = 8.0 * GiB
        self.used = min(total * 0.9, max(GiB, self.used + 4096 * int(r.normal(0, 200))))
        free = total - self.used
        values |= {
            "virtual_memory.total": total,
            "virtual_memory.available": free,
            "virtual_memory.percent": round(100 * self.used / total, 1),
            "virtual_memory.used": self.used,
            "virtual_memory.free": free * 0.6,
            "virtual_memory.active": self.used * 0.7,
            "virtual_memory.inactive": self.used * 0.2,
            "virtual_memory.buffers": 52236288.0,
            "virtual_memory.cached": free * 0.4,
            "virtual_memory.shared": 925085696.0,
            "virtual_memory.slab": 238186496.0,
            "swap_memory.total": 2.0 * GiB,
            "swap_memory.used": 0.0,
            "swap_memory.free": 2.0 * GiB,
            "swap_memory.percent": 0.0,
            "swap_memory.sin": 0.0,
            "swap_memory.sout": 0.0,
        }
        for mount, used in self.disk_used.items():
            used = self.disk_used[mount] = used + 4096 * int(r.integers(0, 50))
            size = 256.0 * GiB if mount == "/" else 1.0 * GiB
            values |= {
                f"disk_usage.{mount}.total": size,
                f"disk_usage.{mount}.used": used,
                f"disk_usage.{mount}.free": size - used,
                f"disk_usage.{mount}.percent": round(100 * used / size, 1),
            }
        busy = r.random() < 0.2  # now and then a burst of traffic
        for name in self.counters:
            scale = 1e6 if "bytes" in name else 10.0
            self.counters[name] += float(r.poisson(scale * (20 if busy else 1)))
        values |= self.counters
        self.load = [max(0.0, x + r.normal(0, 0.02)) for x in self.load]
        values |= {f"getloadavg.{i}": round(x * 2048) / 2048 for i, x in enumerate(self.load)}
        values |= {"boot_time": 1763990000.0, "pids": float(150 + int(r.integers(-3, 4)))}
        return values


def agent_batches(hosts: int, seconds: float, interval: float, seed: int = 0, start: float = START) -> list[Batch]:
    """One sample a batch, as the agent sends them, every host interleaved in time (its own
    run, seqs from 0)."""
    simulated = [Host(seed + h) for h in range(hosts)]
    rng = np.random.default_rng(seed)
    batches = []
    for i in range(int(seconds / interval)):
        for h, host in enumerate(simulated):
            ts = round(start + i * interval + float(rng.uniform(0.0, 0.2)), 3)
            batches.append(Batch(f"host-{h:03d}", "run", i, (Sample(ts, host.values()),)))
    return batches


def store_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())


def fill(store: SeriesStore, batches: list[Batch], per_commit: int) -> float:
    """Seconds to store ``batches`` (in time order), ``per_commit`` a transaction, and to
    compact each hour as the service does once it is closed (the head stays an hour)."""
    began = time.perf_counter()
    compacted = math.floor(batches[0].samples[0].ts / 3600) * 3600 + 3600
    for i in range(0, len(batches), per_commit):
        group = batches[i : i + per_commit]
        store.store_batches(group, now=START)
        newest = group[-1].samples[-1].ts
        if newest >= compacted + 300:  # an hour closed, and its grace passed
            store.compact(now=newest)
            compacted = math.floor(newest / 3600) * 3600
    store.compact(everything=True)
    return time.perf_counter() - began


def settle(path: Path) -> int:
    """The store's bytes on disk once its WAL is checkpointed (what a stopped service leaves)."""
    import sqlite3

    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return store_size(path)


def bulk(batches: list[Batch], samples: int) -> list[Batch]:
    """The same samples, ``samples`` a batch per host (a backlog re-sent, an import)."""
    by_host: dict[str, list[Sample]] = {}
    for b in batches:
        by_host.setdefault(b.host, []).extend(b.samples)
    grouped = [
        Batch(host, "bulk", i // samples, tuple(found[i : i + samples]))
        for host, found in by_host.items()
        for i in range(0, len(found), samples)
    ]
    return sorted(grouped, key=lambda b: (b.samples[0].ts, b.host))


def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"hosts": args.hosts, "days": args.days, "interval": args.interval}
    with tempfile.TemporaryDirectory() as folder:
        batches = agent_batches(args.hosts, args.days * 86400, args.interval)
        samples = sum(len(s.values) for b in batches for s in b.samples)
        results["series_per_host"] = len(batches[0].samples[0].values)
        path = Path(folder) / "agents.sqlite3"
        store = SeriesStore(path, retention=math.inf)
        seconds = fill(store, batches, 512)
        store.close()
        with_wal = settle(path)
        results["samples"] = samples
        results["agent_batches_samples_per_s"] = samples / seconds
        results["bytes_per_sample"] = with_wal / samples
        store = SeriesStore(path, retention=math.inf)
        results["tier_bytes"] = store.tier_bytes()
        results["tier_bytes_per_sample"] = sum(store.tier_bytes().values()) / samples
        store.close()

        bulk_path = Path(folder) / "bulk.sqlite3"
        store = SeriesStore(bulk_path, retention=math.inf)
        seconds = fill(store, bulk(batches, 60), 64)
        store.close()
        results["bulk_samples_per_s"] = samples / seconds

        query_path = Path(folder) / "month.sqlite3"
        store = SeriesStore(query_path, retention=math.inf)
        month = agent_batches(1, args.query_days * 86400, args.interval, seed=99)
        fill(store, bulk(month, 360), 64)
        until = START + args.query_days * 86400
        for step in (3600, 300):
            times = []
            for _ in range(20):
                began = time.perf_counter()
                points = store.series("host-000", "cpu_percent", since=START, until=until, step=step)
                times.append(time.perf_counter() - began)
            results[f"query_{args.query_days}d_step{step}_ms"] = statistics.median(times) * 1000
            results[f"query_{args.query_days}d_step{step}_points"] = len(points)
        store.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.store", description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--days", type=float, default=2.0, help="simulated days of every host")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between an agent's samples")
    parser.add_argument("--query-days", type=int, default=30)
    args = parser.parse_args(argv)
    results = run(args)
    print(
        f"series store alone: {args.hosts} hosts x {results['series_per_host']} series, {args.days:g} days at {args.interval:g} s"
    )
    print(f"  bytes on disk per sample (every file)   {results['bytes_per_sample']:8.3f}")
    print(f"  bytes of tier data per sample           {results['tier_bytes_per_sample']:8.3f}  {results['tier_bytes']}")
    print(f"  samples/s, agent batches (+compaction)  {results['agent_batches_samples_per_s']:12,.0f}")
    print(f"  samples/s, 60-sample batches            {results['bulk_samples_per_s']:12,.0f}")
    for step in (3600, 300):
        key = f"query_{args.query_days}d_step{step}"
        print(
            f"  series over {args.query_days} days, step={step}      {results[key + '_ms']:8.2f} ms ({results[key + '_points']} points)"
        )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"store-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
