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
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
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
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
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


async def slow_clients(job: dict[str, Any]) -> dict[str, Any]:
    """Many keep-alive connections of slow clients: each writes its request in two parts
    ``pause`` apart, reads the answer, thinks ``think`` seconds, and goes again on the same
    connection (a new one when the server closed it)."""
    url = urlsplit(job["url"])
    n, duration, pause, think = job["connections"], job["duration"], job["pause"], job["think"]
    request = (f"GET {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\nUser-Agent: bench-slow\r\n").encode()
    latencies: list[float] = []
    counts = {"ok": 0, "errors": 0, "reconnects": 0}
    served: set[int] = set()
    deadline = time.perf_counter() + duration

    async def client(index: int) -> None:
        await asyncio.sleep(index * job["ramp"] / n)
        reader = writer = None
        while time.perf_counter() < deadline:
            try:
                if writer is None:
                    reader, writer = await asyncio.wait_for(asyncio.open_connection(url.hostname, url.port), 10)
                writer.write(request)
                await writer.drain()
                await asyncio.sleep(pause)
                started = time.perf_counter()
                writer.write(b"\r\n")
                await writer.drain()
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
                lines = head.decode("latin-1").split("\r\n")
                fields = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)}
                await asyncio.wait_for(reader.readexactly(int(fields.get("content-length", "0"))), 10)
                latencies.append(time.perf_counter() - started)
                counts["ok"] += 1
                served.add(index)
                if fields.get("connection", "").lower() == "close":
                    writer.close()
                    reader = writer = None
                    counts["reconnects"] += 1
                await asyncio.sleep(think)
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
                counts["errors"] += 1
                if writer is not None:
                    writer.close()
                reader = writer = None
                await asyncio.sleep(0.1)
        if writer is not None:
            writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(n)))
    elapsed = time.perf_counter() - began
    return {"rps": counts["ok"] / elapsed, "clients_served": len(served), **counts, **summary(latencies)}


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


async def slow_download(job: dict[str, Any]) -> dict[str, Any]:
    """``clients`` slow clients download ``path`` at ``rate`` bytes/s each (a small receive buffer,
    so the server's writes wait on them, as over a slow link), cut off at ``duration``; meanwhile
    ``probes_per_s`` fast probes (``probe_path`` on new connections, ``probe_timeout`` each)
    measure the server's latency. Returns the probes' p50/p99 and errors, and the bytes received."""
    url = urlsplit(job["url"])
    host, port = url.hostname or "127.0.0.1", int(url.port or 80)
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

    latencies: list[float] = []
    probe_errors = 0

    async def probe() -> None:
        nonlocal probe_errors
        latency, ok = await _probe(host, port, job["probe_path"], job["probe_timeout"])
        latencies.append(latency)  # a timed-out probe counts as the timeout in p50/p99
        probe_errors += not ok

    async def probes() -> None:
        await asyncio.sleep(ramp)
        tasks = []
        # the last probe still has its whole timeout before the slow clients are cut off
        while time.perf_counter() < deadline - job["probe_timeout"]:
            tasks.append(asyncio.create_task(probe()))
            await asyncio.sleep(1 / job["probes_per_s"])
        await asyncio.gather(*tasks)

    await asyncio.gather(probes(), *(client(i) for i in range(n)))
    return {
        **summary(latencies),
        "probes": len(latencies),
        "errors": probe_errors,
        **counts,
        "slow_kib_s": counts["slow_bytes"] / 1024 / (time.perf_counter() - began) / max(1, n),
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
    elif kind == "slow":
        out = asyncio.run(slow_clients(job))
    elif kind == "slow_download":
        out = asyncio.run(slow_download(job))
    else:
        raise SystemExit(f"unknown job kind {kind}")
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
