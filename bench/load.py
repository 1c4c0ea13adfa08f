"""The load process: ``python -m bench.load JOB_JSON`` runs one job and prints its figures as JSON.

It runs apart from the servers and from the bench's driver. Sequential jobs alternate
request by request between the servers; rate jobs (the aiohttp generator used when ``wrk``
is missing) and slow-client jobs aim at one server at a time.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import resource
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

CHUNK = 1024 * 1024
BOUNDARY = "hostpulse-bench-boundary-7f3a"


def seed_payload() -> tuple[bytes, float]:
    """Seed 001's client: 100,000 entries packed with ``json.dumps``; the packing time apart."""
    started = time.perf_counter()
    data = {}
    for i in range(100000):
        data[i] = {"name": "tigerrose"}
    body = json.dumps(data).encode()
    return body, time.perf_counter() - started


def multipart_parts(path: Path) -> tuple[bytes, bytes, int]:
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="id"\r\n\r\n42\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    return head, tail, len(head) + path.stat().st_size + len(tail)


def one_request(
    base: str,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes | None = None,
    upload: Path | None = None,
    timeout: float = 600,
) -> dict[str, Any]:
    """One request on a new connection, the answer read whole: timings, status, sizes."""
    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=timeout)
    started = time.perf_counter()
    conn.putrequest(method, path, skip_accept_encoding=True)
    for name, value in headers.items():
        conn.putheader(name, value)
    if upload is not None:
        head, tail, length = multipart_parts(upload)
        conn.putheader("Content-Type", f"multipart/form-data; boundary={BOUNDARY}")
        conn.putheader("Content-Length", str(length))
        conn.endheaders()
        conn.sock.sendall(head)
        with open(upload, "rb") as f:
            while chunk := f.read(CHUNK):
                conn.sock.sendall(chunk)
        conn.sock.sendall(tail)
    else:
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
    sent = time.perf_counter()
    resp = conn.getresponse()
    size = 0
    while chunk := resp.read(CHUNK):
        size += len(chunk)
    done = time.perf_counter()
    conn.close()
    server_ms = resp.getheader("X-Response-Time")
    return {
        "status": resp.status,
        "total": done - started,
        "after_send": done - sent,
        "bytes": size,
        "server": float(server_ms) / 1000 if server_ms else None,
    }


def sequential(job: dict[str, Any]) -> dict[str, Any]:
    """``count`` rounds of one request to each server in turn (the order rotates each round)."""
    bases: list[str] = job["bases"]
    extra: dict[str, Any] = {}
    body = None
    if job.get("body") == "seed001":
        body, extra["pack"] = seed_payload()
        extra["payload_bytes"] = len(body)
    elif job.get("body"):
        body = job["body"].encode()
    upload = Path(job["upload"]) if job.get("upload") else None
    results: dict[str, list[dict[str, Any]]] = {base: [] for base in bases}
    for _ in range(job.get("warmup", 0)):  # untimed, the same for every server: warm caches and allocators
        for base in bases:
            one_request(base, job["method"], job["path"], job["headers"], body, upload)
    for i in range(job["count"]):
        order = bases[i % len(bases) :] + bases[: i % len(bases)]
        for base in order:
            if job.get("kind") == "exec_poll":
                results[base].append(exec_poll(base, job["headers"], f"bench-{os.getpid()}-{i}"))
            else:
                results[base].append(one_request(base, job["method"], job["path"], job["headers"], body, upload))
    return {"results": results, **extra}


def exec_poll(base: str, headers: dict[str, str], job_id: str) -> dict[str, Any]:
    """Start ``uptime``, poll every 5 ms until it is finished: time to the first and last answer."""
    hdrs = {**headers, "Content-Type": "application/json"}
    started = time.perf_counter()
    answer = one_request(base, "POST", f"/api/exec/{job_id}", hdrs, json.dumps({"cmd": "uptime"}).encode())
    accepted = time.perf_counter() - started
    if answer["status"] != 200:
        return {"status": answer["status"], "total": None}
    polls = 0
    while True:
        polls += 1
        url = urlsplit(base)
        conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
        conn.request("GET", f"/api/poll/{job_id}", headers=headers)
        resp = conn.getresponse()
        state = json.loads(resp.read())
        conn.close()
        if state.get("status") == "finished" or time.perf_counter() - started > 30:
            break
        time.sleep(0.005)
    return {
        "status": 200 if state.get("status") == "finished" else 504,
        "total": time.perf_counter() - started,
        "exec": accepted,
        "polls": polls,
    }


def summary(latencies: list[float]) -> dict[str, float | None]:
    if not latencies:
        return {"p50": None, "p99": None}
    ordered = sorted(latencies)
    return {"p50": statistics.median(ordered), "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]}


async def rate(job: dict[str, Any]) -> dict[str, Any]:
    """aiohttp keep-alive connections hammering one URL for ``duration`` seconds."""
    import aiohttp

    connections, duration = job["connections"], job["duration"]
    latencies: list[float] = []
    counts = {"ok": 0, "non2xx": 0, "errors": 0}
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    async with aiohttp.ClientSession(connector=connector, headers=job["headers"]) as session:
        deadline = time.perf_counter() + duration

        async def client() -> None:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    async with session.get(job["url"]) as resp:
                        await resp.read()
                        counts["ok" if resp.status < 400 else "non2xx"] += 1
                    latencies.append(time.perf_counter() - started)
                except (TimeoutError, aiohttp.ClientError, OSError):
                    counts["errors"] += 1

        began = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(connections)))
        elapsed = time.perf_counter() - began
    return {"rps": counts["ok"] / elapsed, **counts, **summary(latencies), "tool": "aiohttp"}


async def _probe(host: str, port: int, path: str, within: float) -> tuple[float, bool]:
    """One ``GET`` on a new connection, read to the close: its latency (``within`` when it timed
    out) and whether it answered 200."""
    started = time.perf_counter()
    writer = None
    try:
        async with asyncio.timeout(within):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
            await writer.drain()
            answer = await reader.read()
        ok = answer.startswith(b"HTTP/1.1 200") or answer.startswith(b"HTTP/1.0 200")
        return time.perf_counter() - started, ok
    except TimeoutError:
        return within, False
    except OSError:
        return time.perf_counter() - started, False
    finally:
        if writer is not None:
            writer.close()


async def probe_series(host: str, port: int, job: dict[str, Any], count: int, over: float) -> dict[str, Any]:
    """``count`` probes (``job["probe_path"]``, each on a new connection, ``job["probe_timeout"]``
    each, a timed-out one counted as the timeout) spread evenly over ``over`` seconds: their
    p50/p99, how many, and how many failed."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    tasks = []
    for i in range(count):
        await asyncio.sleep(max(0.0, began + i * over / max(1, count) - loop.time()))
        tasks.append(asyncio.create_task(_probe(host, port, job["probe_path"], job["probe_timeout"])))
    results = await asyncio.gather(*tasks)
    return {
        **summary([latency for latency, _ in results]),
        "probes": len(results),
        "errors": sum(1 for _, ok in results if not ok),
    }


def _probes_during(job: dict[str, Any]) -> tuple[int, float]:
    """Probes ``probes_per_s`` a second from the end of the ramp until the last one still has
    its whole timeout before the slow clients are cut off."""
    over = max(0.0, job["duration"] - job["ramp"] - job["probe_timeout"])
    return max(1, int(over * job["probes_per_s"])), over


def _target(job: dict[str, Any]) -> tuple[str, int]:
    url = urlsplit(job["url"])
    return url.hostname or "127.0.0.1", int(url.port or 80)


async def slow_download(job: dict[str, Any]) -> dict[str, Any]:
    """``clients`` slow clients download ``path`` at ``rate`` bytes/s each (a small receive buffer,
    so the server's writes wait on them, as over a slow link), cut off at ``duration``; meanwhile
    ``probes_per_s`` fast probes (``probe_path`` on new connections, ``probe_timeout`` each)
    measure the server's latency. Returns the probes' p50/p99 and errors, and the bytes received."""
    url = urlsplit(job["url"])
    host, port = _target(job)
    n, duration, byte_rate, ramp = job["clients"], job["duration"], job["rate"], job["ramp"]
    headers = "".join(f"{k}: {v}\r\n" for k, v in job["headers"].items())
    request = f"GET {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\n{headers}Connection: close\r\n\r\n".encode()
    began = time.perf_counter()
    deadline = began + duration
    counts = {"slow_ok": 0, "slow_errors": 0, "slow_completed": 0, "slow_bytes": 0}
    loop = asyncio.get_running_loop()

    async def client(index: int) -> None:
        await asyncio.sleep(index * ramp / n)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, job.get("rcvbuf", 65536))
        sock.setblocking(False)
        writer = None
        received = 0
        try:
            async with asyncio.timeout(max(0.1, deadline - time.perf_counter())):
                await loop.sock_connect(sock, (host, port))
                reader, writer = await asyncio.open_connection(sock=sock, limit=job.get("chunk", 10240))
                writer.write(request)
                await writer.drain()
                head = await reader.readuntil(b"\r\n\r\n")
                if not head.startswith(b"HTTP/1.1 200"):
                    raise OSError(head.split(b"\r\n")[0].decode("latin-1"))
                counts["slow_ok"] += 1
                started = time.perf_counter()
                while chunk := await reader.read(job.get("chunk", 10240)):
                    received += len(chunk)
                    counts["slow_bytes"] += len(chunk)
                    await asyncio.sleep(max(0.0, started + received / byte_rate - time.perf_counter()))
                counts["slow_completed"] += 1
        except TimeoutError:
            pass  # cut off at the deadline: the expected end of a slow client
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            counts["slow_errors"] += 1
        finally:
            if writer is not None:
                writer.close()
            else:
                sock.close()

    async def probes() -> dict[str, Any]:
        await asyncio.sleep(ramp)
        return await probe_series(host, port, job, *_probes_during(job))

    probed, *_ = await asyncio.gather(probes(), *(client(i) for i in range(n)))
    return {
        **probed,
        **counts,
        "slow_kib_s": counts["slow_bytes"] / 1024 / (time.perf_counter() - began) / max(1, n),
    }


async def slow_upload(job: dict[str, Any]) -> dict[str, Any]:
    """``clients`` slow clients each upload a ``size``-byte file to ``url`` (multipart, as
    ``curl -F file=@...`` sends it) at ``rate`` bytes/s, cut off at ``duration``; probes as in
    :func:`slow_download`. An answer before the body is whole (a 408, 413 or 429, say) or a
    connection that fails is a slow client's error; one cut off at the deadline is not."""
    url = urlsplit(job["url"])
    host, port = _target(job)
    n, duration, byte_rate, ramp, size = job["clients"], job["duration"], job["rate"], job["ramp"], job["size"]
    chunk = job.get("chunk", 10240)
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="id"\r\n\r\n42\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="slow.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    headers = "".join(f"{k}: {v}\r\n" for k, v in job["headers"].items())
    request = (
        f"POST {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\n{headers}Connection: close\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {len(head) + size + len(tail)}\r\n\r\n"
    ).encode() + head
    block = os.urandom(chunk)
    began = time.perf_counter()
    deadline = began + duration
    counts = {"slow_ok": 0, "slow_errors": 0, "slow_completed": 0, "slow_bytes": 0}
    answers: dict[str, int] = {}

    async def client(index: int) -> None:
        await asyncio.sleep(index * ramp / n)
        writer = None
        try:
            async with asyncio.timeout(max(0.1, deadline - time.perf_counter())):
                reader, writer = await asyncio.open_connection(host, port)
                writer.transport.set_write_buffer_limits(high=chunk)  # drain() waits on the socket
                writer.write(request)
                await writer.drain()
                answer = asyncio.ensure_future(reader.readuntil(b"\r\n\r\n"))
                sent, started = 0, time.perf_counter()
                counts["slow_ok"] += 1
                try:
                    while sent < size and not answer.done():
                        part = block[: size - sent]
                        writer.write(part)
                        await writer.drain()
                        sent += len(part)
                        counts["slow_bytes"] += len(part)
                        await asyncio.sleep(max(0.0, started + sent / byte_rate - time.perf_counter()))
                    if not answer.done():
                        writer.write(tail)
                        await writer.drain()
                    status = (await answer).split(b" ", 2)[1].decode("latin-1")
                finally:
                    answer.cancel()
                answers[status] = answers.get(status, 0) + 1
                if status != "200" or sent < size:
                    raise OSError(f"answered {status} after {sent} of {size} bytes")
                counts["slow_completed"] += 1
        except TimeoutError:
            pass  # cut off at the deadline: the expected end of a slow client
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, IndexError):
            counts["slow_errors"] += 1
        finally:
            if writer is not None:
                writer.close()

    async def probes() -> dict[str, Any]:
        await asyncio.sleep(ramp)
        return await probe_series(host, port, job, *_probes_during(job))

    probed, *_ = await asyncio.gather(probes(), *(client(i) for i in range(n)))
    return {
        **probed,
        **counts,
        "answers": answers,
        "slow_kib_s": counts["slow_bytes"] / 1024 / (time.perf_counter() - began) / max(1, n),
    }


async def idle_keepalive(job: dict[str, Any]) -> dict[str, Any]:
    """``clients`` keep-alive connections each make one request (``url``) and then stay open
    and silent, while ``probes`` probes are spread over ``duration`` seconds. An idle
    connection the server closes is closed by the client too, as a browser or a connection
    pool does (gunicorn 27's sync workers wait up to 2 s for that after each answer).
    Reported beside the probes: connections answered, failed, and closed by the server by
    the end (the sync workers close each after its answer; gevent and Hypercorn after their
    keep-alive timeouts, 2 s and 15 s here)."""
    url = urlsplit(job["url"])
    host, port = _target(job)
    n = job["clients"]
    request = f"GET {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\n\r\n".encode()
    counts = {"idle_open": 0, "idle_errors": 0, "idle_closed_by_server": 0}
    writers: list[asyncio.StreamWriter] = []

    async def client(index: int) -> None:
        await asyncio.sleep(index * job["ramp"] / n)
        try:
            async with asyncio.timeout(job["probe_timeout"] * 2):
                reader, writer = await asyncio.open_connection(host, port)
                writers.append(writer)
                writer.write(request)
                await writer.drain()
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                await reader.readexactly(int(length.group(1)) if length else 0)
            if not head.startswith(b"HTTP/1.1 200"):
                raise OSError(head.split(b"\r\n")[0].decode("latin-1"))
            counts["idle_open"] += 1
        except (TimeoutError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            counts["idle_errors"] += 1
            return
        try:
            await reader.read()  # idle until the server closes, or the end of the run
            counts["idle_closed_by_server"] += 1
        except OSError:
            counts["idle_closed_by_server"] += 1
        finally:
            writer.close()

    clients = [asyncio.create_task(client(i)) for i in range(n)]
    await asyncio.sleep(job["ramp"])
    probed = await probe_series(host, port, job, job["probes"], job["duration"])
    for task in clients:
        task.cancel()
    await asyncio.gather(*clients, return_exceptions=True)
    for writer in writers:
        writer.close()
    return {**probed, **counts}


SETTLE = 2.0  # seconds bench.agents lets its agents settle after the ramp before it measures


async def agents_probed(job: dict[str, Any]) -> dict[str, Any]:
    """``agents`` simulated agents (bench/agents.py, in ``processes`` load processes of their
    own) stream a batch every ``interval`` seconds each (1) over a WebSocket to the port at
    ``url`` while probes run, ``probes_per_s`` a second
    over the agents' measured window. Reported beside the probes: agents connected, batches
    acknowledged, the acknowledgements' p99, and the agents' errors (failed connections,
    error answers, connections the server closed, batches never acknowledged)."""
    import multiprocessing

    from bench.agents import load_process

    host, port = _target(job)
    n, processes, ramp, duration = job["agents"], job["processes"], job["ramp"], job["duration"]
    ctx = multiprocessing.get_context("spawn")
    results: Any = ctx.Queue()
    share = [n // processes + (1 if i < n % processes else 0) for i in range(processes)]
    loaders = [
        ctx.Process(
            target=load_process,
            kwargs={
                "first": sum(share[:i]),
                "count": share[i],
                "port": port,
                "transport": "ws",
                "ramp": ramp,
                "duration": duration,
                "interval": job.get("interval", 1.0),
                "values": job.get("values", 20),
                "settle": SETTLE,
                "results": results,
            },
        )
        for i in range(processes)
    ]
    for p in loaders:
        p.start()
    try:
        # bench.agents measures from 0.5 s + ramp + SETTLE after its process starts; its imports
        # take about a second more: the probes run within its window.
        await asyncio.sleep(ramp + SETTLE + 2.0)
        count = max(1, int((duration - 2.0) * job["probes_per_s"]))
        probed = await probe_series(host, port, job, count, duration - 2.0)
        loop = asyncio.get_running_loop()
        out = [await loop.run_in_executor(None, results.get, True, duration + 60) for _ in loaders]
    finally:
        for p in loaders:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    # bench.agents reports each latency as seconds, or as (when made, seconds): its format changes
    latencies = sorted(x[-1] if isinstance(x, (list, tuple)) else x for r in out for x in r["latencies"])
    connect_errors = sum(r["connect_errors"] for r in out)
    error_answers = sum(r["error_answers"] for r in out)
    unacked = sum(r["unacked"] for r in out)
    closed = sum(r.get("closed_by_server", 0) for r in out)
    return {
        **probed,
        "agents_held": sum(r["peak_held"] for r in out),
        "acked": sum(len(r["acked"]) for r in out),
        "ack_p99": summary(latencies)["p99"],
        "agent_errors": connect_errors + error_answers + unacked + closed,
        "closed_by_server": closed,
        "connect_errors": connect_errors,
        "error_answers": error_answers,
        "unacked": unacked,
        "agent_error_samples": sorted({e for r in out for e in r["errors"]})[:5],
    }


def main() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    job = json.loads(sys.argv[1])
    kind = job["kind"]
    if kind in ("sequential", "exec_poll"):
        out = sequential(job)
    elif kind == "rate":
        out = asyncio.run(rate(job))
    elif kind == "slow_download":
        out = asyncio.run(slow_download(job))
    elif kind == "slow_upload":
        out = asyncio.run(slow_upload(job))
    elif kind == "idle_keepalive":
        out = asyncio.run(idle_keepalive(job))
    elif kind == "agents_probed":
        out = asyncio.run(agents_probed(job))
    else:
        raise SystemExit(f"unknown job kind {kind}")
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
