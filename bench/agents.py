"""``python -m bench.agents --agents N``: many simulated agents against the port under Hypercorn.

Each simulated agent holds one WebSocket on ``/ws/agent`` and sends one batch a second
(one sample of ``--values`` series), as the real agent does at a 1 s interval; the
simulated agents live in ``--processes`` separate load processes (aiohttp), apart from
the service. Reported: connections held, acknowledgements per second, p50/p99
acknowledgement latency (send to ack, as the agent sees it), the service's memory
(resident, all its processes), and samples lost (acknowledged but not in the store, and
sent but never acknowledged). Then the real agent runs at a 1 s interval against the
same service and its own CPU and memory are measured.

Latency includes the load processes' own scheduling: on a small machine they share
the cores with the service, so the figures are an upper bound for the service alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import resource
import secrets
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import deque
from pathlib import Path
from queue import Empty
from typing import Any

import psutil

from hostpulse.processes import stop_group
from hostpulse.samples import wire_form

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RESULTS = Path(__file__).resolve().parent / "results"
AGENT_TOKEN = "bench-agents-agent-token"
VIEWER_TOKEN = "bench-agents-viewer-token"
MiB = 1024 * 1024


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the load processes ------------------------------------------------------------------


WINDOW = 32  # unacknowledged batches an agent sends ahead, as agent/transport.py does


async def _agent(index: int, url: str, start_at: float, stop_at: float, values: int, out: dict[str, Any]) -> None:
    """One simulated agent: a batch a second into a local queue, sent while fewer than
    ``WINDOW`` await their ack (as the real agent's spool and window work); latency is
    from the batch's creation to its ack, queueing included."""
    import aiohttp

    host = f"sim-{index}"
    run = secrets.token_urlsafe(9)
    names = [f"bench.series.{n}" for n in range(values)]
    queued: deque[tuple[int, float]] = deque()
    in_flight: dict[int, float] = {}
    ready = asyncio.Event()
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, start_at - loop.time()))
    session = out["session"]
    try:
        ws = await session.ws_connect(url, headers={"Authorization": f"Bearer {AGENT_TOKEN}"}, heartbeat=None)
    except Exception as exc:
        out["connect_errors"] += 1
        out["errors"].append(f"connect: {type(exc).__name__}: {exc}"[:200])
        return
    out["held"] += 1
    out["peak_held"] = max(out["peak_held"], out["held"])

    async def receive() -> None:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            answer = json.loads(msg.data)
            seq = answer.get("ack")
            if seq is None:
                out["error_answers"] += 1
                continue
            made = in_flight.pop(seq, None)
            if made is not None:
                out["acked"].append((host, run, seq))
                if out["window"][0] <= made <= out["window"][1]:
                    out["latencies"].append(loop.time() - made)
                ready.set()

    async def send() -> None:
        while True:
            await ready.wait()
            ready.clear()
            while queued and len(in_flight) < WINDOW:
                seq, made = queued.popleft()
                batch = wire_form(host, run, seq, 0, [(time.time(), {n: random.random() * 100 for n in names})])
                in_flight[seq] = made
                await ws.send_str(json.dumps(batch))
                out["sent"] += 1

    receiving = asyncio.create_task(receive())
    sending = asyncio.create_task(send())
    seq = 0
    next_at = loop.time() + random.random()  # agents' clocks are not aligned
    try:
        while True:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            if loop.time() >= stop_at or receiving.done() or sending.done():
                break
            queued.append((seq, loop.time()))
            ready.set()
            seq += 1
            next_at += 1.0
        deadline = loop.time() + 15
        while (queued or in_flight) and loop.time() < deadline and not receiving.done():  # noqa: ASYNC110 -- draining, 15 s at most
            await asyncio.sleep(0.05)
    finally:
        out["unacked"] += len(queued) + len(in_flight)
        out["produced"] += seq
        receiving.cancel()
        sending.cancel()
        await ws.close()
        out["held"] -= 1


async def _load(first: int, count: int, url: str, ramp: float, duration: float, values: int) -> dict[str, Any]:
    import aiohttp

    loop = asyncio.get_running_loop()
    begin = loop.time() + 0.5
    measure_from = begin + ramp + 2.0
    stop_at = measure_from + duration
    out: dict[str, Any] = {
        "held": 0,
        "peak_held": 0,
        "sent": 0,
        "produced": 0,
        "acked": [],
        "latencies": [],
        "unacked": 0,
        "connect_errors": 0,
        "error_answers": 0,
        "errors": [],
        "window": (measure_from, stop_at),
    }
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None)) as session:
        out["session"] = session
        await asyncio.gather(
            *(_agent(first + i, url, begin + ramp * i / max(1, count), stop_at, values, out) for i in range(count))
        )
    del out["session"]
    out["window"] = duration
    return out


def load_process(
    first: int, count: int, url: str, ramp: float, duration: float, values: int, results: multiprocessing.Queue
) -> None:
    raise_fd_limit()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    results.put(asyncio.run(_load(first, count, url, ramp, duration, values)))


# --- the service -------------------------------------------------------------------------


def service_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def cores(first: tuple[float, ...] | None, last: tuple[float, ...] | None, which: int) -> float | None:
    """Cores used between two ``(seconds, service CPU, load CPU)`` readings."""
    if first is None or last is None:
        return None
    return round((last[which] - first[which]) / (last[0] - first[0]), 2)


def tree_cpu(proc: psutil.Process) -> float:
    """CPU seconds (user and system) of a process and its children."""
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            times = p.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def server_connections(proc: psutil.Process, port: int) -> int:
    held = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            held += sum(
                1 for c in p.net_connections("tcp") if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port
            )
        except psutil.NoSuchProcess:
            pass
    return held


def start_service(instance: Path, port: int, workers: int) -> subprocess.Popen[bytes]:
    from hostpulse.testing import write_test_config

    # every simulated agent shares one token: the per-token connection cap (256 a worker) is lifted
    write_test_config(instance, {"agent": AGENT_TOKEN, "viewer": VIEWER_TOKEN}, limits={"connections_per_token": 0})
    log = open(instance / "service.log", "wb")
    proc = subprocess.Popen(
        [
            str(BIN / "hypercorn"),
            "--config",
            str(ROOT / "hypercorn.toml"),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--access-logfile",
            "-",
            "--access-logformat",
            "-",
            "app:create_app()",
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "HOSTPULSE_INSTANCE": str(instance)},
    )
    log.close()
    import urllib.request

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the service exited; see {instance / 'service.log'}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).close()
            return proc
        except OSError:
            time.sleep(0.2)
    raise TimeoutError("the service did not start")


def stop_service(proc: subprocess.Popen[bytes]) -> None:
    stop_group(proc, timeout=30)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure_agent(url: str, seconds: float, workdir: Path) -> dict[str, float]:
    """The real agent at a 1 s interval, default metrics: its CPU (% of one core) and RSS."""
    argv = [
        sys.executable,
        "-m",
        "agent",
        "--server",
        url,
        "--token",
        AGENT_TOKEN,
        "--interval",
        "1",
        "--spool",
        str(workdir / "agent-spool"),
        "--host",
        "bench-real-agent",
    ]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        p = psutil.Process(proc.pid)
        time.sleep(5)  # past start-up (imports), which is not the steady state
        t0, c0 = time.monotonic(), sum(p.cpu_times()[:2])
        peak = 0
        while time.monotonic() - t0 < seconds:
            time.sleep(1)
            peak = max(peak, p.memory_info().rss)
        cpu = (sum(p.cpu_times()[:2]) - c0) / (time.monotonic() - t0) * 100
        return {"cpu_percent_of_one_core": round(cpu, 2), "rss_mib": round(peak / MiB, 1)}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=0, help="load processes (default: 1 per 1,000 agents, 2..8)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds measured once all are connected")
    parser.add_argument("--ramp", type=float, default=0.0, help="seconds to connect everyone (default agents/500)")
    parser.add_argument("--values", type=int, default=20, help="series per sample")
    parser.add_argument("--workers", type=int, default=0, help="Hypercorn workers (default: hypercorn.toml)")
    parser.add_argument("--agent-seconds", type=float, default=30.0, help="measure the real agent (0: skip)")
    args = parser.parse_args(argv)
    limit = raise_fd_limit()
    workers = args.workers or int(tomllib.loads((ROOT / "hypercorn.toml").read_text()).get("workers", 1))
    processes = args.processes or min(8, max(2, args.agents // 1000))
    ramp = args.ramp or max(2.0, args.agents / 500)
    if args.agents * 2 + 100 > limit:
        print(f"warning: the open-file limit ({limit}) is low for {args.agents} agents", file=sys.stderr)
    workdir = Path(tempfile.mkdtemp(prefix="bench-agents-"))
    port = free_port()
    service = start_service(workdir, port, workers)
    sproc = psutil.Process(service.pid)
    url = f"ws://127.0.0.1:{port}/ws/agent"
    try:
        rss_before = service_rss(sproc)
        queue: multiprocessing.Queue = multiprocessing.get_context("spawn").Queue()
        share = [args.agents // processes + (1 if i < args.agents % processes else 0) for i in range(processes)]
        firsts = [sum(share[:i]) for i in range(processes)]
        ctx = multiprocessing.get_context("spawn")
        loaders = [
            ctx.Process(target=load_process, args=(firsts[i], share[i], url, ramp, args.duration, args.values, queue))
            for i in range(processes)
        ]
        for p in loaders:
            p.start()
        loader_procs = [psutil.Process(p.pid) for p in loaders]

        def cpu_now() -> tuple[float, float, float]:
            return time.monotonic() - started, tree_cpu(sproc), sum(tree_cpu(p) for p in loader_procs)

        peak_rss, held_server = rss_before, 0
        started = time.monotonic()
        results: list[dict[str, Any]] = []
        cpu_from = cpu_to = None  # service CPU seconds over (most of) the measured window
        while len(results) < processes:
            try:
                results.append(queue.get(timeout=1))
            except Empty:
                if not any(p.is_alive() for p in loaders) and queue.empty():
                    raise RuntimeError("a load process exited without reporting; see its traceback above") from None
            peak_rss = max(peak_rss, service_rss(sproc))
            elapsed = time.monotonic() - started
            if elapsed > ramp + 3 and not held_server:
                held_server = server_connections(sproc, port)
            if elapsed > ramp + 3 and cpu_from is None:
                cpu_from = cpu_now()
            if elapsed > ramp + 2 + args.duration and cpu_to is None and cpu_from is not None:
                cpu_to = cpu_now()
        for p in loaders:
            p.join()
        acked = [tuple(k) for r in results for k in r["acked"]]
        latencies = [x for r in results for x in r["latencies"]]
        with sqlite3.connect(workdir / "hostpulse.sqlite3") as db:
            stored = set(db.execute("SELECT host, run, seq FROM series_batches WHERE host LIKE 'sim-%'"))
            rows = db.execute("SELECT count(*) FROM series_samples WHERE host LIKE 'sim-%'").fetchone()[0]
        lost_acked = sum(1 for k in acked if k not in stored)
        figures: dict[str, Any] = {
            "agents": args.agents,
            "service_workers": workers,
            "load_processes": processes,
            "values_per_batch": args.values,
            "connections_held_peak": sum(r["peak_held"] for r in results),
            "connections_seen_by_service": held_server,
            "connect_errors": sum(r["connect_errors"] for r in results),
            "batches_produced": sum(r["produced"] for r in results),
            "batches_sent": sum(r["sent"] for r in results),
            "batches_acked": len(acked),
            "acks_per_s": round(len(latencies) / args.duration, 1),
            "ack_latency_p50_ms": round(percentile(latencies, 0.50) * 1000, 1),
            "ack_latency_p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
            "ack_latency_max_ms": round(max(latencies, default=float("nan")) * 1000, 1),
            "service_cpu_cores": cores(cpu_from, cpu_to, 1),
            "load_generator_cpu_cores": cores(cpu_from, cpu_to, 2),
            "service_rss_mib_before": round(rss_before / MiB, 1),
            "service_rss_mib_peak": round(peak_rss / MiB, 1),
            "acked_but_not_stored": lost_acked,
            "produced_never_acked": sum(r["unacked"] for r in results),
            "samples_lost": lost_acked * args.values,
            "sample_rows_stored": rows,
            "error_answers": sum(r["error_answers"] for r in results),
            "errors": sorted({e for r in results for e in r["errors"]})[:5],
        }
        if args.agent_seconds > 0:
            figures["real_agent_1s"] = measure_agent(f"http://127.0.0.1:{port}", args.agent_seconds, workdir)
    finally:
        stop_service(service)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"agents-{args.agents}.json"
    out.write_text(json.dumps(figures, indent=2) + "\n")
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    print(f"(written to {out}; service log in {workdir / 'service.log'})")
    return 0 if figures["acked_but_not_stored"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
