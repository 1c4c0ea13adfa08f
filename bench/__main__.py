"""``python -m bench [--quick] [--rounds N] [--only W,...] [--servers S,...] [--memory-mib N]``.

Every server starts at once (bench/servers.py); load comes from separate processes
(``wrk`` when installed, else bench/load.py); each round runs every workload, requests
alternating between the servers; tables show the median of the per-round medians and the
ratio against the Flask version on gunicorn. The figures go to bench/results/ as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.servers import ALL, BARE, REFERENCE, ROOT, TOKENS, Server, port_workers, running

RESULTS = Path(__file__).resolve().parent / "results"
MiB = 1024 * 1024


def auth(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[role]}"}


def load(job: dict[str, Any]) -> dict[str, Any]:
    """Run one job in a separate load process."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.load", json.dumps(job)], cwd=ROOT, capture_output=True, text=True
    )
    if out.returncode != 0:
        raise RuntimeError(f"bench.load {job['kind']} exited with {out.returncode}: {out.stderr.strip()[-1500:]}")
    result: dict[str, Any] = json.loads(out.stdout)
    return result


# --- wrk -----------------------------------------------------------------------------------

_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def _seconds(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    assert m, text
    return float(m.group(1)) * _UNITS[m.group(2)]


def wrk(url: str, connections: int, duration: float, headers: dict[str, str]) -> dict[str, Any]:
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency", "--timeout", "10s"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    out = subprocess.run(argv + [url], check=True, capture_output=True, text=True).stdout
    pct = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.M))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert rps, out
    return {
        "rps": float(rps.group(1)),
        "p50": _seconds(pct["50"]) if "50" in pct else None,
        "p99": _seconds(pct["99"]) if "99" in pct else None,
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "errors": sum(map(int, errors.groups())) if errors else 0,
        "tool": "wrk",
    }


def rate(server: Server, path: str, connections: int, duration: float, headers: dict[str, str]) -> dict[str, Any]:
    if shutil.which("wrk"):
        return wrk(server.base + path, connections, duration, headers)
    return load(
        {
            "kind": "rate",
            "url": server.base + path,
            "connections": connections,
            "duration": duration,
            "headers": headers,
        }
    )


# --- workloads -----------------------------------------------------------------------------


class Bench:
    def __init__(
        self,
        servers: list[Server],
        quick: bool,
        workdir: Path,
        slow_clients: int | None = None,
        agents: int | None = None,
    ) -> None:
        self.servers = servers
        # the whole service: every workload but /json/dict (the bare Quart app has no other route)
        self.full = [s for s in servers if s.name not in BARE]
        self.quick = quick
        self.workdir = workdir
        self.slow_clients = slow_clients or (20 if quick else 100)
        self.agents_count = agents or (200 if quick else 1000)
        self.stored: dict[str, str] = {}
        self.samples: dict[str, dict[str, list[dict[str, Any]]]] = {}
        self.extra: dict[str, Any] = {}

    def record(self, workload: str, server: str, sample: dict[str, Any]) -> None:
        self.samples.setdefault(workload, {}).setdefault(server, []).append(sample)

    def sequential(self, workload: str, count: int, **job: Any) -> None:
        """One load process; requests alternate between the servers; one sample per round and server."""
        bases = {s.base: s.name for s in self.full}
        out = load({"kind": "sequential", "bases": list(bases), "count": count, **job})
        for key in ("pack", "payload_bytes"):
            if key in out:
                self.extra.setdefault(workload, {}).setdefault(key, []).append(out[key])
        for base, results in out["results"].items():
            self.record(workload, bases[base], _round_of(results))

    def seed001(self) -> None:
        self.sequential(
            "seed001-post-data",
            2 if self.quick else 5,
            warmup=3 * port_workers(),
            method="POST",
            path="/data/",
            headers={**auth("agent"), "Content-Type": "application/json"},
            body="seed001",
        )

    def get_data(self) -> None:
        self.sequential("get-data", 5 if self.quick else 20, method="GET", path="/data/", headers=auth("viewer"))

    def json_dict(self) -> None:
        for server in self._rotated():
            self.record("json-dict-50", server.name, rate(server, "/json/dict", 50, 2 if self.quick else 5, {}))

    def upload(self, mib: int, count: int) -> None:
        path = self.workdir / f"upload-{mib}MiB.bin"
        if not path.exists():
            block = os.urandom(MiB)
            with open(path, "wb") as f:
                for _ in range(mib):
                    f.write(block)
        self.sequential(
            f"demo-upload-{mib}MiB", count, method="POST", path="/demo", headers=auth("admin"), upload=str(path)
        )

    def exec_poll(self) -> None:
        bases = {s.base: s.name for s in self.full}
        out = load(
            {"kind": "exec_poll", "bases": list(bases), "count": 2 if self.quick else 5, "headers": auth("admin")}
        )
        for base, results in out["results"].items():
            self.record("exec-poll", bases[base], _round_of(results))

    def probed(self, workload: str, servers: list[Server], job: Callable[[Server], dict[str, Any]]) -> None:
        """One server at a time (the others idle), the load's own job for each, then a second's pause
        so what was cut off at the end has closed before the next server."""
        for server in self._rotated(servers):
            self.record(workload, server.name, load(job(server)))
            time.sleep(1)

    def probes(self) -> dict[str, Any]:
        """The probes of every slow workload: ``GET /json/dict`` on a new connection each,
        5 s timeout, a timeout counted as 5 s in p50/p99."""
        return {"probe_path": "/json/dict", "probes_per_s": 10, "probe_timeout": 5.0}

    def slow_download(self) -> None:
        """Slow clients (100, 20 quick) downloading a 5 MiB file at 100 KiB/s while probes
        measure the server's latency, 20 s a server (15 s quick)."""
        path = self.workdir / "slow-5MiB.bin"
        if not path.exists():
            path.write_bytes(os.urandom(5 * MiB))
        from bench.load import one_request

        for server in self.servers:
            if server.name in self.stored:
                continue
            if server.name in BARE:  # no store: bench/bare_quart.py serves its uploads folder
                assert server.instance is not None
                (server.instance / "uploads").mkdir(exist_ok=True)
                shutil.copy(path, server.instance / "uploads" / path.name)
                self.stored[server.name] = path.name
                continue
            up = one_request(server.base, "POST", "/demo", auth("admin"), upload=path)
            if up["status"] != 200:
                raise RuntimeError(f"{server.name}: upload for slow-download answered {up['status']}")
            self.stored[server.name] = _stored_name(server, path)
        self.probed(
            "slow-download",
            self.servers,
            lambda server: {
                "kind": "slow_download",
                "url": f"{server.base}/files/{self.stored[server.name]}",
                "headers": auth("viewer"),
                "clients": self.slow_clients,
                "rate": 100 * 1024,
                "duration": 15 if self.quick else 20,
                "ramp": 2.0,
                **self.probes(),
            },
        )

    def slow_upload(self) -> None:
        """Slow clients (100, 20 quick) each uploading 5 MiB at 100 KiB/s to ``POST /demo``
        (admin token, multipart) while probes measure the server's latency, 20 s a server
        (15 s quick): the uploads are cut off before they end (5 MiB takes 51 s)."""
        self.probed(
            "slow-upload",
            self.servers,
            lambda server: {
                "kind": "slow_upload",
                "url": f"{server.base}/demo",
                "headers": auth("admin"),
                "clients": self.slow_clients,
                "size": 5 * MiB,
                "rate": 100 * 1024,
                "duration": 15 if self.quick else 20,
                "ramp": 2.0,
                **self.probes(),
            },
        )

    def idle_keepalive(self) -> None:
        """500 keep-alive connections (100 quick) opened over 2 s, each making one request and
        then idle, while 2,000 probes (400 quick) are spread over 10 s."""
        self.probed(
            "idle-keepalive",
            self.servers,
            lambda server: {
                "kind": "idle_keepalive",
                "url": f"{server.base}/json/dict",
                "clients": 100 if self.quick else 500,
                "ramp": 2.0,
                "probes": 400 if self.quick else 2000,
                "duration": 10.0,
                **self.probes(),
            },
        )

    def agents(self) -> None:
        """Simulated agents (1,000, 200 quick; bench/agents.py) streaming a batch a second each
        to the port's ``/ws/agent`` while probes run, 10 s measured (8 s quick): the port only."""
        self.probed(
            "agents-stream",
            [s for s in self.servers if s.name.startswith("port-")],
            lambda server: {
                "kind": "agents_probed",
                "url": server.base,
                "agents": self.agents_count,
                "processes": 2,
                "ramp": 2.0,
                "duration": 8.0 if self.quick else 10.0,
                **self.probes(),
            },
        )

    def _rotated(self, servers: list[Server] | None = None) -> list[Server]:
        servers = self.servers if servers is None else servers
        n = sum(len(v) for v in self.samples.values()) % len(servers)
        return servers[n:] + servers[:n]


def _round_of(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of one round's requests to one server."""
    ok = [r for r in results if r.get("status", 0) < 400 and r.get("total") is not None]
    out: dict[str, Any] = {"requests": len(results), "failed": len(results) - len(ok)}
    for key in ("total", "server", "bytes", "exec", "polls"):
        values = [r[key] for r in ok if r.get(key) is not None]
        if values:
            out[key] = statistics.median(values)
    if "total" in out and "server" in out:
        out["transfer"] = out["total"] - out["server"]
    return out


# --- memory of the port for a large upload and download ------------------------------------


def tree_rss(pid: int) -> dict[int, int]:
    import psutil

    root = psutil.Process(pid)
    procs = [root, *root.children(recursive=True)]
    out = {}
    for p in procs:
        try:
            out[p.pid] = p.memory_info().rss
        except psutil.Error:
            pass
    return out


def memory(server: Server, mib: int, workdir: Path) -> dict[str, Any]:
    """RSS growth of the server's processes while a ``mib`` MiB file goes up through
    ``POST /demo`` (and back, send_file) and down again through ``GET /files/<name>``."""
    from bench.load import one_request

    path = workdir / f"memory-{mib}MiB.bin"
    block = os.urandom(MiB)
    with open(path, "wb") as f:
        for _ in range(mib):
            f.write(block)
    assert server.proc is not None
    # Warm up: one small upload and download so lazy imports and buffers are in the baseline.
    small = workdir / "warm.bin"
    small.write_bytes(block)
    one_request(server.base, "POST", "/demo", auth("admin"), upload=small)
    time.sleep(0.5)
    pid = server.proc.pid
    baseline = tree_rss(pid)
    peak = dict(baseline)
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            for pid_, rss in tree_rss(pid).items():
                peak[pid_] = max(peak.get(pid_, 0), rss)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        up = one_request(server.base, "POST", "/demo", auth("admin"), upload=path)
        name = _stored_name(server, path)
        down = one_request(server.base, "GET", f"/files/{name}", auth("viewer"))
    finally:
        stop.set()
        sampler.join()
        path.unlink()
    growth = {pid: peak[pid] - baseline.get(pid, 0) for pid in peak}
    return {
        "server": server.name,
        "mib": mib,
        "upload_and_echo_s": up["total"],
        "download_s": down["total"],
        "echo_bytes": up["bytes"],
        "download_bytes": down["bytes"],
        "baseline_rss": baseline,
        "peak_rss": peak,
        "growth": growth,
        "max_growth_mib": max(growth.values()) / MiB,
        "total_growth_mib": sum(max(0, g) for g in growth.values()) / MiB,
    }


def _stored_name(server: Server, path: Path) -> str:
    assert server.instance is not None
    uploads = [p for p in (server.instance / "uploads").iterdir() if p.name.endswith(path.name)]
    return max(uploads, key=lambda p: p.stat().st_mtime).name


# --- tables --------------------------------------------------------------------------------


def median_of(samples: list[dict[str, Any]], key: str) -> float | None:
    values = [s[key] for s in samples if s.get(key) is not None]
    return statistics.median(values) if values else None


COLUMNS: dict[str, list[tuple[str, str, str]]] = {
    # workload: (key, heading, format) ... ; the first column is the ratio's basis
    "seed001-post-data": [
        ("total", "end to end", "s"),
        ("transfer", "transfer", "s"),
        ("server", "unpack (server)", "s"),
    ],
    "get-data": [("total", "end to end", "s")],
    "json-dict-50": [
        ("rps", "req/s", "n"),
        ("p50", "p50", "s"),
        ("p99", "p99", "s"),
        ("errors", "errors", "i"),
        ("non2xx", "non-2xx", "i"),
    ],
    "demo-upload-1MiB": [("total", "end to end", "s")],
    "demo-upload-100MiB": [("total", "end to end", "s")],
    "exec-poll": [("total", "exec to finished", "s"), ("exec", "exec answer", "s"), ("polls", "polls", "n")],
    "slow-upload": [
        ("p99", "probe p99", "s"),
        ("p50", "probe p50", "s"),
        ("errors", "probe errors", "i"),
        ("probes", "probes", "i"),
        ("slow_errors", "upload errors", "i"),
        ("slow_kib_s", "KiB/s per upload", "n"),
    ],
    "slow-download": [
        ("p99", "probe p99", "s"),
        ("p50", "probe p50", "s"),
        ("errors", "probe errors", "i"),
        ("probes", "probes", "i"),
        ("slow_errors", "download errors", "i"),
        ("slow_kib_s", "KiB/s per download", "n"),
    ],
    "idle-keepalive": [
        ("p99", "probe p99", "s"),
        ("p50", "probe p50", "s"),
        ("errors", "probe errors", "i"),
        ("probes", "probes", "i"),
        ("idle_open", "idle held", "i"),
        ("idle_errors", "idle errors", "i"),
        ("idle_closed_by_server", "closed by server", "i"),
    ],
    "agents-stream": [
        ("p99", "probe p99", "s"),
        ("p50", "probe p50", "s"),
        ("errors", "probe errors", "i"),
        ("probes", "probes", "i"),
        ("agents_held", "agents held", "i"),
        ("acked", "batches acked", "i"),
        ("ack_p99", "ack p99", "s"),
        ("agent_errors", "agent errors", "i"),
    ],
}
# A second ratio beside the one against Flask on gunicorn sync: the peer each table is about.
SECOND_BASIS = {
    "json-dict-50": "quart-bare",
    "slow-upload": "flask-gevent",
    "slow-download": "flask-gevent",
    "idle-keepalive": "flask-gevent",
}
PROBED = ("slow-upload", "slow-download", "idle-keepalive", "agents-stream")
HIGHER_IS_BETTER = {"rps"}


def fmt(value: float | None, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "s":
        return f"{value * 1000:.1f} ms" if value < 10 else f"{value:.2f} s"
    if kind == "i":
        return f"{value:.0f}"
    return f"{value:.1f}"


def table(
    workload: str, per_server: dict[str, list[dict[str, Any]]], extra: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    columns = COLUMNS[workload]
    basis = columns[0][0]
    bases = [b for b in (REFERENCE, SECOND_BASIS.get(workload)) if b is not None and b in per_server]
    refs = {b: median_of(per_server[b], basis) for b in bases}
    rows = [["server", *(c[1] for c in columns), *(f"vs {b}" for b in bases)]]
    figures: dict[str, Any] = {}
    for name, samples in per_server.items():
        values = {key: median_of(samples, key) for key, _, _ in columns}
        mine = values[basis]
        ratios = {b: paired_ratio(samples, per_server[b], basis) or _ratio(mine, ref, basis) for b, ref in refs.items()}
        figures[name] = {**values, "ratio": ratios.get(REFERENCE), "ratios": ratios, "rounds": len(samples)}
        cells = [f"{r:.2f}x" if r else "-" for r in ratios.values()]
        rows.append([ALL[name], *(fmt(values[k], f) for k, _, f in columns), *cells])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [f"## {workload}"]
    if extra:
        lines.append(
            "   "
            + ", ".join(f"{k}: {fmt(statistics.median(v), 's' if k == 'pack' else 'i')}" for k, v in extra.items())
        )
    for i, row in enumerate(rows):
        lines.append(
            "  ".join(cell.ljust(w) if j == 0 else cell.rjust(w) for j, (cell, w) in enumerate(zip(row, widths)))
        )
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines), figures


def paired_ratio(mine: list[dict[str, Any]], ref: list[dict[str, Any]], basis: str) -> float | None:
    """The median of each round's ratio, when both servers have a figure in every round.

    A round runs the servers back to back, seconds apart; rounds are minutes apart, and a
    shared machine's speed drifts between them (here: bare Quart 4,700-6,900 req/s from
    one run to the next). Each round's ratio sees the same machine on both sides; the
    ratio of the medians could pair one server's fast round with the other's slow one."""
    if len(mine) != len(ref) or not mine:
        return None
    ratios = [_ratio(a.get(basis), b.get(basis), basis) for a, b in zip(mine, ref)]
    known = [r for r in ratios if r is not None]
    return statistics.median(known) if len(known) == len(ratios) else None


def _ratio(mine: float | None, ref: float | None, basis: str) -> float | None:
    """How many times better ``mine`` is than ``ref`` (above 1: better)."""
    if not mine or not ref:
        return None
    return mine / ref if basis in HIGHER_IS_BETTER else ref / mine


def targets(workloads: dict[str, dict[str, Any]]) -> list[str]:
    """Issue 13's targets, one line each per port server: the figure, the target, met or not."""
    lines = []
    for port in ("port-uvloop", "port-asyncio"):
        json_dict = workloads.get("json-dict-50", {}).get("figures", {})
        if port in json_dict and "quart-bare" in json_dict:
            ratio = json_dict[port]["ratios"].get("quart-bare")  # the table's: paired by round
            if ratio:
                lines.append(f"{port}: json-dict-50 {ratio:.2f}x bare Quart (target >= 0.95x): {_met(ratio >= 0.95)}")
        for workload in PROBED:
            figures = workloads.get(workload, {}).get("figures", {})
            if port not in figures:
                continue
            mine = figures[port]
            errors = sum(  # every round's, not the median: one failed probe is one too many
                int(sample.get(k) or 0)
                for sample in workloads[workload]["samples"][port]
                for k in ("errors", "slow_errors", "idle_errors", "agent_errors")
            )
            line = (
                f"{port}: {workload} probe p99 {fmt(mine['p99'], 's')} (<= 50 ms: {_met((mine['p99'] or 99) <= 0.05)})"
            )
            if workload in ("slow-upload", "slow-download"):
                for peer, want, least in (
                    (REFERENCE, ">= 10x better", 10.0),
                    ("flask-gevent", "<= 1.2x its p99", 1 / 1.2),
                ):
                    r = mine["ratios"].get(peer)  # the table's (paired by round): above 1, the port's p99 is lower
                    if r:
                        line += f", {r:.2f}x {peer}'s ({want}: {_met(r >= least)})"
            line += f", errors {errors} (0: {_met(errors == 0)})"
            lines.append(line)
    return lines


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


# --- main ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="fewer rounds, shorter runs, no 100 MiB upload, no memory run"
    )
    parser.add_argument("--rounds", type=int, help="rounds (default 3 quick, 5 full)")
    parser.add_argument("--only", help="comma-separated workloads: " + ",".join(COLUMNS) + ",memory")
    parser.add_argument("--servers", default=",".join(ALL), help="comma-separated servers (default: all)")
    parser.add_argument("--memory-mib", type=int, help="size of the memory run's file (default 1024 full, 0 quick)")
    parser.add_argument("--slow-clients", type=int, help="slow uploads' and downloads' clients (default 100, 20 quick)")
    parser.add_argument("--agents", type=int, help="agents-stream's simulated agents (default 1000, 200 quick)")
    parser.add_argument(
        "--slow-rounds",
        type=int,
        default=1,
        help="rounds that run the probed workloads (default 1: ~20 s a server each)",
    )
    parser.add_argument("--label", default="", help="a tag kept in the results file name")
    args = parser.parse_args(argv)
    names = args.servers.split(",")
    rounds = args.rounds or (3 if args.quick else 5)
    memory_mib = args.memory_mib if args.memory_mib is not None else (0 if args.quick else 1024)
    only = set(args.only.split(",")) if args.only else None

    def wanted(name: str) -> bool:
        return only is None or name in only

    started = time.time()
    with tempfile.TemporaryDirectory(prefix="hostpulse-bench-") as tmp:
        workdir = Path(tmp)
        with running(names, workdir) as servers:
            bench = Bench(servers, args.quick, workdir, args.slow_clients, args.agents)
            steps: list[tuple[str, Callable[[], None]]] = [
                ("seed001-post-data", bench.seed001),
                ("get-data", bench.get_data),
                ("json-dict-50", bench.json_dict),
                ("demo-upload-1MiB", lambda: bench.upload(1, 2 if args.quick else 5)),
                ("exec-poll", bench.exec_poll),
                ("slow-upload", bench.slow_upload),
                ("slow-download", bench.slow_download),
                ("idle-keepalive", bench.idle_keepalive),
                ("agents-stream", bench.agents),
            ]
            if not args.quick:
                steps.insert(4, ("demo-upload-100MiB", lambda: bench.upload(100, 1)))
            for r in range(rounds):
                for name, step in steps:
                    if name in PROBED and r >= args.slow_rounds:
                        continue  # 10-20 s a server each: --slow-rounds of them
                    if wanted(name):
                        print(f"round {r + 1}/{rounds}: {name}", file=sys.stderr, flush=True)
                        try:
                            step()
                        except Exception as exc:  # one failed measurement does not end the run
                            print(f"  {name} failed: {exc!r}", file=sys.stderr, flush=True)
                            bench.extra.setdefault("failures", []).append(f"round {r + 1} {name}: {exc!r}")
            mem = []
            if memory_mib and wanted("memory"):
                for server in servers:
                    if server.name.startswith("port-") or server.name == REFERENCE:
                        print(f"memory: {memory_mib} MiB through {server.name}", file=sys.stderr, flush=True)
                        mem.append(memory(server, memory_mib, workdir))
    report: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "seconds": round(time.time() - started, 1),
        "quick": args.quick,
        "rounds": rounds,
        "slow_rounds": min(rounds, args.slow_rounds),
        "workers": port_workers(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load": "wrk" if shutil.which("wrk") else "aiohttp (bench/load.py)",
        "workloads": {},
        "memory": mem,
    }
    print(
        f"# hostpulse bench: {rounds} rounds, {port_workers()} workers each, {os.cpu_count()} CPUs, "
        f"load from {report['load']}"
    )
    report["failures"] = bench.extra.pop("failures", [])
    for workload, per_server in bench.samples.items():
        extra = bench.extra.get(workload, {})
        text, figures = table(workload, per_server, extra)
        report["workloads"][workload] = {"figures": figures, "extra": extra, "samples": per_server}
        print("\n" + text)
    goals = targets(report["workloads"])
    report["targets"] = goals
    if goals:
        print("\n## targets (issue 13)\n" + "\n".join(goals))
    for m in mem:
        print(
            f"\n## memory: {m['mib']} MiB up (echoed back) and down, {ALL[m['server']]}\n"
            f"   largest growth of one process {m['max_growth_mib']:.1f} MiB, all processes "
            f"{m['total_growth_mib']:.1f} MiB; upload+echo {m['upload_and_echo_s']:.2f} s, "
            f"download {m['download_s']:.2f} s"
        )
    RESULTS.mkdir(exist_ok=True)
    tag = ("-" + args.label) if args.label else ""
    out = RESULTS / f"{time.strftime('%Y%m%d-%H%M%S')}{'-quick' if args.quick else ''}{tag}.json"
    out.write_text(json.dumps(report, indent=1))
    print(f"\nfigures: {out.relative_to(ROOT)}  ({report['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
