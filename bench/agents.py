"""``python -m bench.agents --agents N``: many simulated agents against the port under Hypercorn.

Each simulated agent holds one connection (a WebSocket on ``/ws/agent``, or keep-alive
HTTP to ``POST /ingest`` with ``--transport http``) and sends one batch of ``--values``
series every ``--interval`` seconds (default 10 s, the real agent's default), its clock
not aligned with the others'. The agents live in ``--processes`` load processes apart
from the service, each a uvloop of plain ``asyncio.Protocol`` objects writing prebuilt
WebSocket frames (a zero mask key, which RFC 6455 allows) and reading acks with no
WebSocket library: the aiohttp agents this bench had cost ~0.16 ms of CPU a batch, the
cores the service needs; these cost 0.2-0.25 of a core for 10,000 at a 10 s interval.

Reported: connections held, acks/s, p50/p99 acknowledgement latency (the batch's
creation to its ack, as the agent sees it), the service's CPU per acknowledged batch and
its memory (resident, all its processes), its full garbage collections in the window,
the load generator's CPU, and batches lost (acknowledged but not stored, and sent but never
acknowledged). ``--source DIR`` serves the port from another checkout: before and after
in one session.

``--store postgresql`` serves it on a PostgreSQL server started for the run in a temporary
folder (``bench/pgserver.py``, the tests' server, here with ``fsync`` on as SQLite's
``synchronous=FULL`` is) and stopped after; its CPU is reported apart. ``--nodes N`` runs N
Hypercorn nodes on that one database, each with its own instance folder, the agents spread
evenly over them (agent ``i`` on node ``i % N``), as behind a proxy.

``--cost`` measures the service's CPU per batch at a fixed rate instead (``--rate``
batches/s over ``--connections`` connections, one worker), for the app and for stripped
variants (``--app``): ``bare-asgi`` (Hypercorn and wsproto, an ASGI app that acks at
once), ``bare-quart`` (Quart's WebSocket layer added), ``null-store`` (the whole port, the
series store replaced by a no-op) and ``full``. Their differences are the README's "Ingest
cost" breakdown; ``--micro`` times each ingest step on the loop alone, in process.

Latency includes the load processes' own scheduling: on a small machine they share the
cores with the service, so the figures are an upper bound for the service alone.
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
from pathlib import Path
from queue import Empty
from typing import Any

import psutil

from hostpulse.processes import stop_group

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RESULTS = Path(__file__).resolve().parent / "results"
AGENT_TOKEN = "bench-agents-agent-token"
VIEWER_TOKEN = "bench-agents-viewer-token"
MiB = 1024 * 1024
APPS = {
    "full": "bench.agents:full_app()",
    "null-store": "bench.agents:null_store_app()",
    "bare-quart": "bench.agents:bare_quart_app()",
    "bare-asgi": "bench.agents:bare_asgi_app",
}


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the apps served (--app) --------------------------------------------------------------


def log_gc_pauses() -> None:
    """Each full (generation 2) collection of the worker's garbage collector, as a line on
    stderr (the service log): with thousands of connections it scans every object they
    hold, and the loop stands still meanwhile."""
    import gc

    started = [0.0]

    def watch(phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pause = (time.perf_counter() - started[0]) * 1000
            print(f"bench-gc-pause {time.time():.3f} {pause:.1f}", file=sys.stderr, flush=True)

    gc.callbacks.append(watch)


def gc_pauses(log: Path, since: float, until: float) -> list[float]:
    """The full collections' pauses (ms) the service logged between two wall-clock times."""
    pauses = []
    for line in log.read_text(errors="replace").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "bench-gc-pause":  # not a line two workers' writes mixed
            _, at, ms = parts
            if since <= float(at) <= until:
                pauses.append(float(ms))
    return pauses


def full_app() -> Any:
    """The port as ``app:create_app()`` serves it, its full collections logged."""
    from app import create_app

    log_gc_pauses()
    return create_app()


def _ack_of(text: str | bytes) -> str:
    batch = json.loads(text)
    return json.dumps({"ack": batch["seq"], "run": batch["run"]}, separators=(",", ":"), sort_keys=True)


async def bare_asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Hypercorn and wsproto alone: each batch is decoded and acked at once."""
    if scope["type"] == "lifespan":
        log_gc_pauses()
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] != "websocket.receive":
                return
            await send({"type": "websocket.send", "text": _ack_of(message.get("text") or message["bytes"])})
    elif scope["type"] == "http":
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        answer = _ack_of(body).encode() + b"\n"
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(answer)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})
    elif scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})


def bare_quart_app() -> Any:
    """Quart's WebSocket and request layers added: a route that decodes and acks at once."""
    from quart import Quart, request, websocket

    log_gc_pauses()
    app = Quart("bare")

    @app.websocket("/ws/agent")
    async def ws_agent() -> None:
        await websocket.accept()
        while True:
            await websocket.send(_ack_of(await websocket.receive()))

    @app.post("/ingest")
    async def ingest() -> Any:
        return _ack_of(await request.get_data()) + "\n", 200, {"Content-Type": "application/json"}

    @app.get("/healthz")
    async def healthz() -> str:
        return "ok"

    return app


def null_store_app() -> Any:
    """The whole port, the series store a no-op: everything but the store's own cost."""
    from app import create_app
    from hostpulse.series.store import SeriesStore

    def store_batches(self: SeriesStore, batches: Any, now: float | None = None) -> list[int | Exception]:
        return [b.seq for b in batches]

    SeriesStore.store_batches = store_batches  # type: ignore[method-assign]
    log_gc_pauses()
    return create_app()


# --- the load processes ------------------------------------------------------------------


def _names(values: int) -> list[str]:
    """Names shaped as the default agent's (dots, a mount point, a core)."""
    kinds = ["cpu_percent.{}", "disk_usage./mnt/d{}.percent", "net_io_counters.eth{}.bytes_sent", "virtual_memory.x{}"]
    return [kinds[n % len(kinds)].format(n) for n in range(values)]


class Stats:
    def __init__(self, window: tuple[float, float]) -> None:
        self.window = window
        self.held = self.peak_held = self.connect_errors = self.closed_by_server = 0
        self.sent = self.produced = self.error_answers = self.acks_in_window = 0
        self.acked: list[tuple[str, str, int]] = []
        self.held_by_port: dict[int, int] = {}  # --nodes: agents connected to each node
        self.acked_by_port: dict[int, int] = {}
        self.latencies: list[tuple[float, float]] = []  # (made, seconds from the window's start; latency)
        self.errors: set[str] = set()

    def report(self, unacked: int) -> dict[str, Any]:
        return {
            "peak_held": self.peak_held,
            "held_at_end": self.held,
            "connect_errors": self.connect_errors,
            "closed_by_server": self.closed_by_server,
            "sent": self.sent,
            "produced": self.produced,
            "acked": self.acked,
            "held_by_port": self.held_by_port,
            "acked_by_port": self.acked_by_port,
            "acks_in_window": self.acks_in_window,
            "latencies": self.latencies,
            "unacked": unacked,
            "error_answers": self.error_answers,
            "errors": sorted(self.errors)[:5],
        }


class SimAgent(asyncio.Protocol):
    """One simulated agent on one connection: WebSocket text frames or HTTP/1.1 requests."""

    def __init__(self, index: int, host: str, port: int, transport: str, values: int, stats: Stats) -> None:
        self.host = f"sim-{index}"
        self.run = secrets.token_urlsafe(9)
        self.names = _names(values)
        self.http = transport == "http"
        self.stats = stats
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.upgraded = False
        self.in_flight: dict[int, float] = {}  # seq -> when made (time.monotonic())
        self.queued: list[tuple[int, float]] = []  # HTTP: one request at a time
        self.seq = 0
        self.ready = self.loop.create_future()
        self.gone = False
        self.port = port
        self.authority = f"{host}:{port}".encode()

    # -- the wire
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.http:
            self.upgraded = True
            self.ready.set_result(None)
            return
        key = "dGhlIHNhbXBsZSBub25jZQ=="
        self.transport.write(  # type: ignore[union-attr]
            b"GET /ws/agent HTTP/1.1\r\nHost: " + self.authority + b"\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key.encode() + b"\r\nSec-WebSocket-Version: 13\r\n"
            b"Authorization: Bearer " + AGENT_TOKEN.encode() + b"\r\n\r\n"
        )

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.gone:
            self.gone = True
            self.stats.held -= 1 if self.ready.done() and self.ready.exception() is None else 0
            self.stats.closed_by_server += 1
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed during the handshake: {exc}"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
            if not head.startswith(b"HTTP/1.1 101"):
                self.ready.set_exception(ConnectionError(head.split(b"\r\n", 1)[0].decode("latin-1")))
                self.transport.close()  # type: ignore[union-attr]
                return
            self.upgraded = True
            self.ready.set_result(None)
        if self.http:
            self._read_responses()
        else:
            self._read_frames()

    def _read_frames(self) -> None:
        buf = self.buffer
        while len(buf) >= 2:
            opcode, size, at = buf[0] & 0x0F, buf[1] & 0x7F, 2
            if size == 126:
                if len(buf) < 4:
                    break
                size, at = int.from_bytes(buf[2:4], "big"), 4
            elif size == 127:
                if len(buf) < 10:
                    break
                size, at = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < at + size:
                break
            payload, buf = buf[at : at + size], buf[at + size :]
            if opcode == 1:
                self._answer(payload)
            elif opcode == 9:  # ping: pong, masked with a zero key
                self.transport.write(bytes([0x8A, 0x80 | len(payload)]) + b"\0\0\0\0" + payload)  # type: ignore[union-attr]
            elif opcode == 8:
                self.transport.close()  # type: ignore[union-attr]
        self.buffer = buf

    def _read_responses(self) -> None:
        buf = self.buffer
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buf[:end].lower()
            at = head.find(b"content-length:")
            size = int(head[at + 15 : head.find(b"\r\n", at) if head.find(b"\r\n", at) > 0 else None])
            if len(buf) < end + 4 + size:
                break
            self._answer(buf[end + 4 : end + 4 + size])
            buf = buf[end + 4 + size :]
            self._send_queued()
        self.buffer = buf

    def _answer(self, payload: bytes) -> None:
        answer = json.loads(payload)
        seq = answer.get("ack")
        if seq is None:
            self.stats.error_answers += 1
            self.stats.errors.add(str(answer)[:200])
            seq = answer.get("seq")
            self.in_flight.pop(seq, None)
            return
        made = self.in_flight.pop(seq, None)
        if made is None:
            return
        now = time.monotonic()
        self.stats.acked.append((self.host, self.run, seq))
        self.stats.acked_by_port[self.port] = self.stats.acked_by_port.get(self.port, 0) + 1
        if self.stats.window[0] <= made <= self.stats.window[1]:
            self.stats.latencies.append((made - self.stats.window[0], now - made))
        if self.stats.window[0] <= now <= self.stats.window[1]:
            self.stats.acks_in_window += 1

    # -- batches
    def make_batch(self) -> None:
        """A new batch, sent at once (WebSocket: any number in flight; HTTP: one at a time)."""
        if self.gone:
            return
        seq, self.seq = self.seq, self.seq + 1
        self.stats.produced += 1
        self.queued.append((seq, time.monotonic()))
        if not self.http or not self.in_flight:
            self._send_queued()

    def _send_queued(self) -> None:
        while self.queued and (not self.http or not self.in_flight):
            seq, made = self.queued.pop(0)
            values = {n: round(random.random() * 100, 2) for n in self.names}
            body = json.dumps(
                {
                    "host": self.host,
                    "run": self.run,
                    "seq": seq,
                    "dropped": 0,
                    "interval": 10.0,
                    "samples": [{"ts": round(time.time(), 3), "values": values}],
                },
                separators=(",", ":"),
            ).encode()
            self.in_flight[seq] = made
            self.transport.write(self._frame(body))  # type: ignore[union-attr]
            self.stats.sent += 1

    def _frame(self, body: bytes) -> bytes:
        if self.http:
            return (
                b"POST /ingest HTTP/1.1\r\nHost: " + self.authority + b"\r\nAuthorization: Bearer "
                + AGENT_TOKEN.encode() + b"\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(body)).encode() + b"\r\n\r\n" + body
            )  # fmt: skip
        size = len(body)
        if size < 126:
            head = bytes([0x81, 0x80 | size])
        elif size < 65536:
            head = bytes([0x81, 0x80 | 126]) + size.to_bytes(2, "big")
        else:
            head = bytes([0x81, 0x80 | 127]) + size.to_bytes(8, "big")
        return head + b"\0\0\0\0" + body  # a zero mask key: the payload goes as it is


async def _load(
    first: int,
    count: int,
    port: int | list[int],
    transport: str,
    ramp: float,
    duration: float,
    interval: float,
    values: int,
    settle: float = 2.0,
) -> dict[str, Any]:
    """``count`` agents connected over ``ramp`` seconds; the window measured is ``duration``
    seconds from ``settle`` seconds after the ramp's end. Given several ports (``--nodes``),
    agent ``i`` connects to ``port[i % len(port)]``: spread evenly, each on one node."""
    ports = port if isinstance(port, list) else [port]
    loop = asyncio.get_running_loop()
    begin = loop.time() + 0.5
    measure_from = begin + ramp + settle
    stop_at = measure_from + duration
    offset = time.monotonic() - loop.time()  # latencies in monotonic time: uvloop's clock has 1 ms steps
    stats = Stats((measure_from + offset, stop_at + offset))
    agents: list[SimAgent] = []
    handshakes = asyncio.Semaphore(100)  # connections being opened at once

    def tick(agent: SimAgent, at: float) -> None:
        if at >= stop_at or agent.gone:
            return
        agent.make_batch()
        loop.call_at(at + interval, tick, agent, at + interval)

    async def connect(index: int, at: float) -> None:
        await asyncio.sleep(max(0.0, at - loop.time()))
        async with handshakes:
            to = ports[index % len(ports)]
            try:
                _, agent = await loop.create_connection(
                    lambda: SimAgent(index, "127.0.0.1", to, transport, values, stats), "127.0.0.1", to
                )
                await asyncio.wait_for(agent.ready, 30)
            except Exception as exc:
                stats.connect_errors += 1
                stats.errors.add(f"connect: {type(exc).__name__}: {exc}"[:200])
                return
        agents.append(agent)
        stats.held += 1
        stats.held_by_port[to] = stats.held_by_port.get(to, 0) + 1
        stats.peak_held = max(stats.peak_held, stats.held)
        first_at = loop.time() + random.random() * interval
        loop.call_at(first_at, tick, agent, first_at)

    await asyncio.gather(*(connect(first + i, begin + ramp * i / max(1, count)) for i in range(count)))
    await asyncio.sleep(max(0.0, stop_at - loop.time()))
    deadline = loop.time() + 15  # drain: acks still due
    while loop.time() < deadline and any(a.in_flight or a.queued for a in agents if not a.gone):  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    unacked = sum(len(a.in_flight) + len(a.queued) for a in agents)
    for agent in agents:
        agent.gone = True
        if agent.transport is not None:
            agent.transport.close()
    return stats.report(unacked)


def load_process(
    first: int,
    count: int,
    port: int | list[int],
    transport: str,
    ramp: float,
    duration: float,
    interval: float,
    values: int,
    settle: float,
    results: multiprocessing.Queue[Any],
) -> None:
    raise_fd_limit()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    results.put(asyncio.run(_load(first, count, port, transport, ramp, duration, interval, values, settle)))


# --- the service -------------------------------------------------------------------------


def service_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


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


def start_service(
    instance: Path, port: int, workers: int, app: str = APPS["full"], source: Path = ROOT, store_url: str = ""
) -> subprocess.Popen[bytes]:
    """One node: Hypercorn serving ``app`` from ``source`` with ``instance``, on the SQLite
    file there, or on the PostgreSQL ``store_url`` (whose tables and tokens
    :func:`prepare_postgres` made); its output in ``instance/service.log``."""
    from hostpulse.testing import write_test_config

    # every simulated agent shares one token: the per-token connection cap (256 a worker) is lifted;
    # on PostgreSQL the tokens are the database's, not the file's
    tokens = {} if store_url else {"agent": AGENT_TOKEN, "viewer": VIEWER_TOKEN}
    write_test_config(instance, tokens, limits={"connections_per_token": 0})
    env = {**os.environ, "HOSTPULSE_INSTANCE": str(instance)}
    if store_url:
        env["HOSTPULSE_STORE_URL"] = store_url
    log = open(instance / "service.log", "wb")
    proc = subprocess.Popen(
        [
            str(BIN / "hypercorn"),
            "--config",
            str(source / "hypercorn.toml"),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            app,
        ],
        cwd=source,  # the app is imported from here (the current directory comes first on sys.path)
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=env,
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
        except OSError as exc:
            if getattr(exc, "code", None):  # the bare ASGI app answers 404: it is up
                return proc
            time.sleep(0.2)
    raise TimeoutError("the service did not start")


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


Ranges = dict[tuple[str, str], list[tuple[int, int]]]


def stored_ranges(store: Path | str) -> Ranges | None:
    """The simulated agents' stored (host, run) seq ranges, read from the SQLite file or the
    PostgreSQL URL; None when the tables are neither of the ones read here (``series_acked``
    ranges, or the older ``series_batches`` rows of a ``--source`` tree)."""
    ranges: Ranges = {}
    if isinstance(store, str):
        import psycopg

        with psycopg.connect(store) as pg:
            for host, run_id, lo, hi in pg.execute(
                "SELECT host, run, lo, hi FROM series_acked WHERE host LIKE 'sim-%'"
            ):
                ranges.setdefault((host, run_id), []).append((int(lo), int(hi)))
        return ranges
    try:
        with sqlite3.connect(store) as db:
            try:
                rows = list(db.execute("SELECT host, run, lo, hi FROM series_acked WHERE host LIKE 'sim-%'"))
            except sqlite3.OperationalError:
                found = db.execute("SELECT host, run, seq, seq FROM series_batches WHERE host LIKE 'sim-%'")
                rows = list(found)
    except sqlite3.Error:
        return None
    for host, run_id, lo, hi in rows:
        ranges.setdefault((host, run_id), []).append((lo, hi))
    return ranges


def not_stored(ranges: Ranges, acked: list[tuple[str, str, int]]) -> int:
    """How many acknowledged (host, run, seq) the store does not hold."""
    return sum(1 for h, r, q in acked if not any(lo <= q <= hi for lo, hi in ranges.get((h, r), ())))


def prepare_postgres(url: str) -> None:
    """``hostpulse init``'s part for a new database: the tables, and the bench's two tokens
    (on PostgreSQL every node reads them from there)."""
    from hostpulse import tokens_store
    from hostpulse.settings import Token
    from hostpulse.store_pg import migrate
    from hostpulse.testing import ROLE_USERS
    from hostpulse.tokens import hash_token

    migrate(url)
    for role, token in (("agent", AGENT_TOKEN), ("viewer", VIEWER_TOKEN)):
        tokens_store.add_token(url, Token(hash_token(token), *ROLE_USERS[role], roles=(role,)))


def run(args: argparse.Namespace, app: str, workdir: Path) -> dict[str, Any]:
    """One service, ``args.agents`` simulated agents over ``args.processes`` load processes.

    The service is ``args.nodes`` Hypercorn nodes on one store: the SQLite file in
    ``workdir`` (one node), or with ``--store postgresql`` a PostgreSQL server started for
    this run alone and stopped after it (``bench/pgserver.py``), each node with an instance
    folder of its own, as separate hosts would have. Agents are spread evenly over the nodes."""
    workers = args.workers or int(tomllib.loads((ROOT / "hypercorn.toml").read_text()).get("workers", 1))
    nodes = args.nodes
    processes = args.processes or min(8, max(2, args.agents // 2500))
    ramp = args.ramp or max(2.0, args.agents / 500)
    ports: list[int] = []
    while len(ports) < nodes:
        port = free_port()
        ports += [] if port in ports else [port]
    instances = [workdir] if nodes == 1 else [workdir / f"node-{i}" for i in range(nodes)]
    pg = None
    store_url = ""
    fsync = "on"  # SQLite: synchronous=FULL
    services: list[subprocess.Popen[bytes]] = []
    try:
        if args.store == "postgresql":
            from bench.pgserver import PostgresServer

            pg = PostgresServer(durable=True).start()
            store_url = pg.create_database("hostpulse")
            prepare_postgres(store_url)
            import psycopg

            with psycopg.connect(store_url) as db:
                fsync = str((db.execute("SHOW fsync").fetchone() or ("?",))[0])
        for instance, port in zip(instances, ports):
            instance.mkdir(exist_ok=True)
            services.append(start_service(instance, port, workers, app, args.source, store_url))
        sprocs = [psutil.Process(s.pid) for s in services]
        # PostgreSQL's own CPU (its postmaster and every backend), apart from the service's
        database = [psutil.Process(pg.pid())] if pg is not None else []

        def rss_now() -> int:
            return sum(service_rss(p) for p in sprocs)

        rss_before = rss_now()
        ctx = multiprocessing.get_context("spawn")
        queue: multiprocessing.Queue[Any] = ctx.Queue()
        share = [args.agents // processes + (1 if i < args.agents % processes else 0) for i in range(processes)]
        firsts = [sum(share[:i]) for i in range(processes)]
        loaders = [
            ctx.Process(
                target=load_process,
                args=(
                    firsts[i],
                    share[i],
                    ports,
                    args.transport,
                    ramp,
                    args.duration,
                    args.interval,
                    args.values,
                    args.settle,
                    queue,
                ),
            )
            for i in range(processes)
        ]
        for p in loaders:
            p.start()
        loader_procs = [psutil.Process(p.pid) for p in loaders]
        started = time.monotonic()

        wall_from = time.time() + ramp + args.settle + 0.5  # the measured window, wall-clock (gc pauses)

        def cpu_now() -> tuple[float, float, float, float]:
            service_cpu = sum(tree_cpu(p) for p in sprocs)
            loaders_cpu = sum(tree_cpu(p) for p in loader_procs)
            return time.monotonic(), service_cpu, loaders_cpu, sum(tree_cpu(p) for p in database)

        peak_rss = rss_before
        held_server: list[int] = []
        results: list[dict[str, Any]] = []
        cpu_from = cpu_to = None  # CPU seconds over the measured window (its first 2.5 s to its end)
        while len(results) < processes:
            try:
                results.append(queue.get(timeout=0.5))
            except Empty:
                if not any(p.is_alive() for p in loaders) and queue.empty():
                    raise RuntimeError("a load process exited without reporting; see its traceback above") from None
            peak_rss = max(peak_rss, rss_now())
            elapsed = time.monotonic() - started
            if elapsed > ramp + args.settle + 1 and cpu_from is None:
                cpu_from = cpu_now()
            if elapsed > ramp + args.settle + 2 and not any(held_server):
                held_server = [server_connections(p, port) for p, port in zip(sprocs, ports)]
            if elapsed > ramp + args.settle + 0.5 + args.duration and cpu_to is None and cpu_from is not None:
                cpu_to = cpu_now()
        for p in loaders:
            p.join()
        rss_after = rss_now()
        if args.agent_seconds > 0:
            real_agent = measure_agent(f"http://127.0.0.1:{ports[0]}", args.agent_seconds, workdir)
        for service in services:  # every commit done before the store is read
            stop_group(service, timeout=30)
        acked = [tuple(k) for r in results for k in r["acked"]]
        ranges = stored_ranges(store_url or workdir / "hostpulse.sqlite3") if app == APPS["full"] else None
    finally:
        for service in services:
            stop_group(service, timeout=30)
        if pg is not None:
            pg.stop()
    timed = [tuple(x) for r in results for x in r["latencies"]]
    latencies = [lat for _, lat in timed]
    step = 5.0  # p99 of each 5 s of the window: a stall shows where it was
    by_step = [[lat for at, lat in timed if i * step <= at < (i + 1) * step] for i in range(int(args.duration // step))]
    pauses = [x for i in instances for x in gc_pauses(i / "service.log", wall_from, wall_from + args.duration)]
    acks_in_window = sum(r["acks_in_window"] for r in results)

    def per_node(key: str) -> list[int]:
        return [sum(r[key].get(port, 0) for r in results) for port in ports]

    figures: dict[str, Any] = {
        "app": app,
        "transport": args.transport,
        "store": args.store,
        "store_fsync": fsync,
        "nodes": nodes,
        "agents": args.agents,
        "interval_s": args.interval,
        "settle_s": args.settle,
        "values_per_batch": args.values,
        "service_workers": workers,
        "load_processes": processes,
        "connections_held_peak": sum(r["peak_held"] for r in results),
        "connections_held_at_end": sum(r["held_at_end"] for r in results),
        "connections_seen_by_service": sum(held_server),
        "connections_seen_by_service_per_node": held_server,
        "agents_held_per_node": per_node("held_by_port"),
        "connect_errors": sum(r["connect_errors"] for r in results),
        "closed_by_server": sum(r["closed_by_server"] for r in results),
        "batches_produced": sum(r["produced"] for r in results),
        "batches_sent": sum(r["sent"] for r in results),
        "batches_acked": len(acked),
        "batches_acked_per_node": per_node("acked_by_port"),
        "batches_stored": None if ranges is None else sum(hi - lo + 1 for rs in ranges.values() for lo, hi in rs),
        "acks_per_s": round(acks_in_window / args.duration, 1),
        "ack_latency_p50_ms": round(percentile(latencies, 0.50) * 1000, 1),
        "ack_latency_p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        "ack_latency_max_ms": round(max(latencies, default=float("nan")) * 1000, 1),
        "ack_latency_p99_ms_each_5s": [round(percentile(x, 0.99) * 1000, 1) for x in by_step],
        "service_cpu_cores": None,
        "service_cpu_ms_per_batch": None,
        "load_generator_cpu_cores": None,
        "database_cpu_cores": None,
        "database_cpu_ms_per_batch": None,
        "service_gc_full_collections_in_window": len(pauses),
        "service_gc_longest_pause_ms": max(pauses, default=0.0),
        "service_rss_mib_before": round(rss_before / MiB, 1),
        "service_rss_mib_peak": round(peak_rss / MiB, 1),
        "service_rss_kib_per_agent": round((peak_rss - rss_before) / 1024 / max(1, args.agents), 1),
        "service_rss_mib_after": round(rss_after / MiB, 1),
        "acked_but_not_stored": None if ranges is None else not_stored(ranges, acked),
        "produced_never_acked": sum(r["unacked"] for r in results),
        "error_answers": sum(r["error_answers"] for r in results),
        "errors": sorted({e for r in results for e in r["errors"]})[:5],
    }
    if cpu_from is not None and cpu_to is not None:
        seconds = cpu_to[0] - cpu_from[0]
        acks = acks_in_window * seconds / args.duration  # the acks of the CPU window, pro rata
        figures["service_cpu_cores"] = round((cpu_to[1] - cpu_from[1]) / seconds, 3)
        figures["service_cpu_ms_per_batch"] = round((cpu_to[1] - cpu_from[1]) / max(1, acks) * 1000, 3)
        figures["load_generator_cpu_cores"] = round((cpu_to[2] - cpu_from[2]) / seconds, 3)
        if pg is not None:  # SQLite's work is the service's own
            figures["database_cpu_cores"] = round((cpu_to[3] - cpu_from[3]) / seconds, 3)
            figures["database_cpu_ms_per_batch"] = round((cpu_to[3] - cpu_from[3]) / max(1, acks) * 1000, 3)
    if args.agent_seconds > 0:
        figures["real_agent_1s"] = real_agent
    return figures


def micro(values: int) -> dict[str, float]:
    """Microseconds per batch of the ingest steps that run on the loop, each alone (one
    process, no server): the README's "Ingest cost" rows that ``--cost`` cannot split."""
    import timeit

    from app.views import metrics
    from hostpulse.auth import check_reporter, user_of
    from hostpulse.payloads import decode_json
    from hostpulse.samples import DEFAULT_LIMITS, TimeWindow, _checked_batch, validate_batch, wire_bytes
    from hostpulse.series.committer import GroupCommitter
    from hostpulse.testing import settings_with_tokens

    settings = settings_with_tokens(tempfile.mkdtemp(prefix="bench-micro-"), {"agent": AGENT_TOKEN})
    text = wire_bytes(
        "sim-1", "run1", 41, 0, [(time.time(), {n: random.random() * 100 for n in _names(values)})], interval=10.0
    ).decode()
    obj = json.loads(text)
    window = TimeWindow(time.time(), 300.0, 30 * 86400.0)
    batch = validate_batch(obj, window=window)
    user = user_of(settings.tokens[0])

    def us(fn: Any, number: int = 20000) -> float:
        return round(min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6, 2)

    class NullStore:
        def store_batches(self, batches: list[Any]) -> list[int]:
            return [b.seq for b in batches]

    async def hand_off(group: int, rounds: int) -> float:
        committer = GroupCommitter(NullStore(), max_delay=0.0)  # type: ignore[arg-type]
        started = time.perf_counter()
        for _ in range(rounds):
            await asyncio.gather(*(committer.enqueue(batch) for _ in range(group)))
        elapsed = time.perf_counter() - started
        await committer.close()
        return round(elapsed / (rounds * group) * 1e6, 2)

    return {
        "json_decode_text": us(lambda: decode_json(text)),
        "json_decode_bytes": us(lambda: decode_json(text.encode())),
        "validate_fast": us(lambda: validate_batch(obj, window=window)),
        "validate_checked": us(lambda: _checked_batch(obj, DEFAULT_LIMITS, window)),
        "auth_check_reporter": us(lambda: check_reporter(settings, user, "sim-1", 41)),
        "ack_json": us(lambda: metrics._wire({"ack": 41, "run": "run1"})),
        "committer_hand_off_group_1": asyncio.run(hand_off(1, 2000)),
        "committer_hand_off_group_20": asyncio.run(hand_off(20, 200)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between an agent's batches")
    parser.add_argument("--transport", choices=["ws", "http"], default="ws")
    parser.add_argument("--processes", type=int, default=0, help="load processes (default: 1 per 2,500 agents, 2..8)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds measured once all are connected")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds between the last connection and the window")
    parser.add_argument("--ramp", type=float, default=0.0, help="seconds to connect everyone (default agents/500)")
    parser.add_argument("--values", type=int, default=50, help="series per batch")
    parser.add_argument("--workers", type=int, default=0, help="Hypercorn workers (default: hypercorn.toml)")
    parser.add_argument("--agent-seconds", type=float, default=0.0, help="also measure the real agent (0: skip)")
    parser.add_argument("--cost", action="store_true", help="CPU per batch at --rate batches/s for each --app")
    parser.add_argument("--micro", action="store_true", help="microseconds of each ingest step, in process")
    parser.add_argument("--rate", type=float, default=1000.0, help="--cost: batches per second in all")
    parser.add_argument("--connections", type=int, default=100, help="--cost: connections")
    parser.add_argument(
        "--app", action="append", choices=list(APPS), help="the app served (default: full; --cost: all four)"
    )
    parser.add_argument(
        "--source", type=Path, default=ROOT, help="serve the port from this checkout (before/after in one run)"
    )
    parser.add_argument(
        "--store",
        choices=["sqlite", "postgresql"],
        default="sqlite",
        help="the service's store: its SQLite file, or a PostgreSQL server started for the run and stopped after",
    )
    parser.add_argument(
        "--nodes", type=int, default=1, help="Hypercorn nodes on the one store, agents spread evenly (PostgreSQL)"
    )
    parser.add_argument("--json", type=Path, help="write the figures here (default: bench/results/agents-*.json)")
    args = parser.parse_args(argv)
    if args.nodes < 1 or (args.nodes > 1 and args.store != "postgresql"):
        parser.error("--nodes N > 1 needs --store postgresql (an SQLite file is one machine's: use --workers)")
    args.source = args.source.resolve()
    limit = raise_fd_limit()
    if args.agents + 100 > limit:  # the service holds every connection; each load process a share
        print(f"warning: the open-file limit ({limit}) is low for {args.agents} agents", file=sys.stderr)
    RESULTS.mkdir(exist_ok=True)
    if args.micro:
        for key, value in micro(args.values).items():
            print(f"{key:<28} {value} us")
        return 0
    if args.cost:
        args.agents, args.interval = args.connections, args.connections / args.rate
        args.workers = args.workers or 1
        apps = args.app or list(APPS)
        table = []
        for name in apps:
            figures = run(args, APPS[name], Path(tempfile.mkdtemp(prefix=f"bench-cost-{name}-")))
            figures["source"] = str(args.source)
            table.append((name, figures))
            print(
                f"{name:<11} {args.transport}: {figures['service_cpu_ms_per_batch']} ms CPU/batch,"
                f" {figures['acks_per_s']} acks/s, p50 {figures['ack_latency_p50_ms']} ms,"
                f" p99 {figures['ack_latency_p99_ms']} ms, errors {figures['error_answers']}",
                flush=True,
            )
        out = args.json or RESULTS / f"agents-cost-{args.transport}.json"
        out.write_text(json.dumps(dict(table), indent=2) + "\n")
        print(f"(written to {out})")
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="bench-agents-"))
    figures = run(args, APPS[(args.app or ["full"])[0]], workdir)
    where = "" if args.store == "sqlite" else f"-{args.store}-{args.nodes}-nodes"
    out = args.json or RESULTS / f"agents-{args.agents}-{args.transport}-{(args.app or ['full'])[0]}{where}.json"
    out.write_text(json.dumps(figures, indent=2) + "\n")
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    logs = "service log in" if args.nodes == 1 else "nodes' service.log in"
    print(f"(written to {out}; {logs} {workdir})")
    lost = figures["acked_but_not_stored"]
    return 0 if not lost and not figures["produced_never_acked"] else 1


if __name__ == "__main__":
    sys.exit(main())
