"""Live mode: both apps served on loopback by real servers, read through a raw socket.

Servers (each in its own instance folder, ``$COMPAT_INSTANCE``, each building its side's
app in its own processes from ``<package>.serve:app``, its setup hook run once before):

- the reference (a WSGI app: the Flask version) under **gunicorn**, twice: the second
  instance is where noise is learnt (Diffy's secondary);
- the candidate (an ASGI app: the port) under **Hypercorn**: this pair, what a team
  deploys, decides the verdict;
- on request (``--servers gunicorn,hypercorn,hypercorn-wsgi``) the reference under
  **Hypercorn's WSGI mode**, reported as a pair of its own.

Each server gets a listening socket that this process bound to ``127.0.0.1:0`` and passes
as ``fd://N`` (gunicorn and Hypercorn both take it), so the port is known before the server
starts and no other process can take it. Only loopback is used. Every server runs in its own
process group and is stopped (SIGTERM, then SIGKILL) by the process id this module started.

The raw client writes the request bytes itself (``Content-Length`` or chunked framing,
``Connection: close``) and reads the status line, the headers as sent (names as the server
wrote them) and the body bytes (``Content-Length``, chunked or until close). After a HEAD
answer it keeps reading until the server closes: any byte there is a body the server sent
for HEAD, a real wire difference.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from hostpulse.processes import stop_group

from .allow import AllowList
from .apps import AppSpec, InstanceSetup, Workdir
from .clients import AppClient, Reply, normalise_headers, split_target
from .corpus import Scenario
from .loading import SideSpec
from .play import Target, play_all
from .results import PairReport, compare_runs
from .sides import PACKAGE, child_cwd, child_env, prepare, tail

HOST = "127.0.0.1"
READ_TIMEOUT = 60.0
LIVE_HOST_HEADER = "localhost"


class LiveError(RuntimeError):
    pass


# ---------------------------------------------------------------------------- raw client


class _Reader:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.eof = False

    def _fill(self) -> bool:
        if self.eof:
            return False
        try:
            data = self.sock.recv(262144)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def line(self) -> bytes:
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                out = bytes(self.buf[:i])
                del self.buf[: i + 2]
                return out
            if not self._fill():
                raise LiveError("connection closed in the middle of the head")

    def exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise LiveError(f"connection closed after {len(self.buf)} of {n} body bytes")
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def rest(self) -> bytes:
        while self._fill():
            pass
        out = bytes(self.buf)
        self.buf.clear()
        return out


class LiveClient(AppClient):
    """One request per connection to a server on loopback, read byte by byte."""

    def __init__(self, port: int, host: str = HOST, timeout: float = READ_TIMEOUT, log: Path | None = None) -> None:
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError("the live client only talks to loopback")
        self.host, self.port, self.timeout = host, port, timeout
        self.log = log  # the server's log: what it wrote during a request travels with the reply

    def _log_size(self) -> int:
        try:
            return self.log.stat().st_size if self.log is not None else 0
        except OSError:
            return 0

    def _log_since(self, offset: int) -> str:
        """Error lines and tracebacks the server logged since ``offset`` (access lines left out)."""
        if self.log is None:
            return ""
        try:
            with open(self.log, "rb") as f:
                f.seek(offset)
                text = f.read(65536).decode("utf-8", "replace")
        except OSError:
            return ""
        return text if ("Traceback" in text or "ERROR" in text or "Error" in text) else ""

    def request(self, method, path, *, headers=None, body=None) -> Reply:
        offset = self._log_size()
        reply = self._request(method, path, headers=headers, body=body)
        return replace(reply, log=self._log_since(offset)) if self.log is not None else reply

    def _request(self, method, path, *, headers=None, body=None) -> Reply:
        method = method.upper()
        hdrs = normalise_headers(headers)
        chunked = body is not None and not isinstance(body, (bytes, bytearray, memoryview))
        parts = [bytes(c) for c in body] if chunked else ([bytes(body)] if body is not None else [])
        raw_path, raw_query = split_target(path)
        target = raw_path + (b"?" + raw_query if raw_query else b"")
        lines = [method.encode("ascii") + b" " + target + b" HTTP/1.1"]
        names = {n.lower() for n, _ in hdrs}
        if "host" not in names:
            lines.append(b"Host: " + LIVE_HOST_HEADER.encode())
        for name, value in hdrs:
            if chunked and name.lower() in ("content-length", "transfer-encoding"):
                continue
            lines.append(name.encode("latin-1") + b": " + value)
        if chunked:
            lines.append(b"Transfer-Encoding: chunked")
        elif parts and parts[0] and "content-length" not in names:
            lines.append(b"Content-Length: " + str(len(parts[0])).encode())
        if "connection" not in names:
            lines.append(b"Connection: close")
        head = b"\r\n".join(lines) + b"\r\n\r\n"
        if chunked:
            payload = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in parts if c) + b"0\r\n\r\n"
        else:
            payload = parts[0] if parts else b""
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        try:
            send_error: list[BaseException] = []

            def sender() -> None:
                try:
                    sock.sendall(head + payload)
                except OSError as exc:  # the server may answer (413) and close before reading all
                    send_error.append(exc)

            if len(payload) > 65536:
                t = threading.Thread(target=sender, daemon=True)
                t.start()
            else:
                t = None
                sender()
            reader = _Reader(sock)
            try:
                status, resp_headers = self._head(reader)
            except LiveError:
                if send_error:
                    raise LiveError(f"no answer; sending failed with {send_error[0]!r}") from None
                raise
            body_bytes = self._body(reader, method, status, resp_headers)
            if t is not None:
                t.join(timeout=self.timeout)
            return Reply(status=status, headers=resp_headers, body=body_bytes)
        finally:
            try:
                sock.close()
            except OSError:
                pass

    def _head(self, reader: _Reader) -> tuple[int, list[tuple[str, str]]]:
        while True:
            status_line = reader.line()
            parts = status_line.split(b" ", 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
                raise LiveError(f"bad status line {status_line!r}")
            status = int(parts[1])
            headers: list[tuple[str, str]] = []
            while True:
                line = reader.line()
                if not line:
                    break
                name, _, value = line.partition(b":")
                headers.append((name.decode("latin-1"), value.strip().decode("latin-1")))
            if 100 <= status < 200 and status != 101:
                continue  # 100 Continue and other interim answers
            return status, headers

    def _body(self, reader: _Reader, method: str, status: int, headers: list[tuple[str, str]]) -> bytes:
        get = {k.lower(): v for k, v in reversed(headers)}
        if method == "HEAD" or status in (204, 304):
            # nothing may follow; with Connection: close, anything until EOF was sent by mistake
            return reader.rest()
        if "chunked" in get.get("transfer-encoding", "").lower():
            out = bytearray()
            while True:
                size_line = reader.line()
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while reader.line():  # trailers
                        pass
                    return bytes(out)
                out += reader.exactly(size)
                reader.exactly(2)
        if "content-length" in get:
            return reader.exactly(int(get["content-length"]))
        return reader.rest()


# ---------------------------------------------------------------------------- servers


@dataclass
class Server:
    label: str
    kind: str  # gunicorn | hypercorn-wsgi | hypercorn
    spec: SideSpec
    folder: Path
    log: Path
    port: int = 0
    proc: subprocess.Popen | None = None
    argv: list[str] = field(default_factory=list)

    def client(self) -> LiveClient:
        return LiveClient(self.port, log=self.log)


def _listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    sock.listen(128)
    return sock


SERVED_APP = f"{PACKAGE}.serve:app"


def start_server(server: Server, workers: int, workdir: Path) -> None:
    sock = _listening_socket()
    server.port = sock.getsockname()[1]
    fd = sock.fileno()
    py = sys.executable
    if server.kind == "gunicorn":
        argv = [
            py,
            "-m",
            "gunicorn",
            "--bind",
            f"fd://{fd}",
            "--workers",
            str(workers),
            "--graceful-timeout",
            "5",
            "--timeout",
            "60",
            SERVED_APP,
        ]
    else:
        conf = workdir / "hypercorn-live.toml"
        if not conf.exists():
            # WSGI mode buffers a whole body and refuses one over wsgi_max_body_size (16 MiB
            # by default) with an empty 400: raised so the apps' own limits answer
            conf.write_text("wsgi_max_body_size = 268435456\ngraceful_timeout = 5\n")
        mode = "wsgi:" if server.kind == "hypercorn-wsgi" else "asgi:"
        argv = [
            py,
            "-m",
            "hypercorn",
            "--config",
            str(conf),
            "--bind",
            f"fd://{fd}",
            "--workers",
            str(workers),
            "--worker-class",
            "asyncio",
            mode + SERVED_APP,
        ]
    server.argv = argv
    log = open(server.log, "ab")
    try:
        server.proc = subprocess.Popen(
            argv,
            cwd=child_cwd(server.spec),
            env=child_env(server.spec, server.folder),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            pass_fds=(fd,),
            start_new_session=True,
        )
    finally:
        log.close()
        sock.close()  # the child holds its own copy


def wait_ready(server: Server, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    client = LiveClient(server.port, timeout=5)
    last: BaseException | None = None
    while time.monotonic() < deadline:
        if server.proc is not None and server.proc.poll() is not None:
            raise LiveError(f"{server.label} exited with {server.proc.returncode}:\n{tail(server.log)}")
        try:
            client.request("GET", "/")
            return
        except (OSError, LiveError) as exc:
            last = exc
            time.sleep(0.1)
    raise LiveError(f"{server.label} did not answer within {timeout:.0f} s ({last!r}):\n{tail(server.log)}")


def stop_server(server: Server) -> None:
    if server.proc is not None:
        stop_group(server.proc, timeout=15)  # the group of the process this module started


SERVER_KINDS = ("gunicorn", "hypercorn-wsgi", "hypercorn")
# what a team deploys: the reference on gunicorn, the port on Hypercorn; Hypercorn's WSGI
# mode for the reference is a pair of its own, compared only when asked
DEFAULT_SERVERS = ("gunicorn", "hypercorn")


def run_live(
    reference: AppSpec,
    candidate: AppSpec,
    scenarios: list[Scenario],
    setup: InstanceSetup,
    allow: AllowList,
    *,
    keep: bool = False,
    servers: list[str] | None = None,
    workers: int = 1,
    logs: Path | None = None,
    limits: list[int] = (),
    edges: bool = False,
) -> list[PairReport]:
    """Reference x2 (noise) and every candidate server; one report per candidate server.

    The first report (reference on gunicorn against the port on Hypercorn, for a WSGI
    reference and an ASGI candidate) decides the verdict; the others are informational.
    With ``edges``, the size edges (long request lines and headers, bodies at the limits)
    are played too: what the servers refuse, a client sees."""
    wanted = set(servers or DEFAULT_SERVERS)
    unknown = wanted - set(SERVER_KINDS)
    if unknown:
        raise SystemExit(f"compat: unknown live server(s) {sorted(unknown)}; known: {', '.join(SERVER_KINDS)}")
    workdir = Workdir(keep=keep, prefix="compat-live-", logs=logs)
    started: list[Server] = []
    routes: dict[str, list] = {}
    try:

        def prepared(label: str, spec: AppSpec, side: str) -> tuple[str, SideSpec, Path]:
            folder = workdir.new_instance_dir(label)
            setup.prepare(folder)
            info = prepare(spec.side(side), folder, workdir.log_path(label), label)
            if spec.hook and info.get("kwargs") is None:
                raise LiveError(f"{label}: the setup hook's factory arguments must be JSON values in live mode")
            routes[label] = [tuple(r) for r in info.get("routes", [])]
            return str(info["kind"]), spec.side(side, kwargs=info.get("kwargs")), folder

        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=4) as pool:
            jobs = {
                "primary": pool.submit(prepared, "reference", reference, "reference"),
                "secondary": pool.submit(prepared, "reference-2", reference, "reference"),
                "candidate": pool.submit(prepared, "candidate", candidate, "candidate"),
            }
            if "hypercorn-wsgi" in wanted:
                jobs["wsgi"] = pool.submit(prepared, "reference-wsgi", reference, "reference")
            ready = {k: f.result() for k, f in jobs.items()}
        ref_kind, cand_kind = ready["primary"][0], ready["candidate"][0]
        if edges:
            from .edges import edge_scenarios
            from .hints import learn_hints

            scenarios = scenarios + edge_scenarios(routes["reference"], learn_hints(scenarios), list(limits))
        ref_server = "gunicorn" if ref_kind == "wsgi" else "hypercorn"
        cand_server = "hypercorn" if cand_kind == "asgi" else "gunicorn"
        ref_name = "flask" if ref_kind == "wsgi" else "reference"

        def server(key: str, label: str, kind: str) -> Server:
            _kind, side, folder = ready[key]
            s = Server(label=label, kind=kind, spec=side, folder=folder, log=workdir.log_path(label))
            start_server(s, workers, workdir.path)
            started.append(s)
            return s

        primary = server("primary", f"{ref_name}@{ref_server}", ref_server)
        secondary = server("secondary", f"{ref_name}@{ref_server}-2", ref_server)
        candidates = [
            server("candidate", f"{'port' if cand_kind == 'asgi' else 'candidate'}@{cand_server}", cand_server)
        ]
        if ref_kind == "wsgi" and "hypercorn-wsgi" in wanted:
            candidates.append(server("wsgi", f"{ref_name}@hypercorn-wsgi", "hypercorn-wsgi"))
        for s in started:
            wait_ready(s)
        targets = [Target(s.label, s.client(), s.folder, " ".join(s.argv[2:])) for s in started]
        runs = play_all(
            scenarios,
            [t for t in targets if t.label != secondary.label],
            later=[t for t in targets if t.label == secondary.label],
        )
        reports = []
        for i, c in enumerate(candidates):
            rep = compare_runs(
                scenarios,
                runs[primary.label],
                runs[secondary.label],
                runs[c.label],
                mode="live",
                reference_label=primary.label,
                candidate_label=c.label,
                allow=allow,
                live=True,
                secret_key=reference.secret_key,
            )
            rep.extra["servers"] = {s.label: " ".join(s.argv[2:]) for s in (primary, secondary, c)}
            rep.extra["logs"] = str(workdir.logs) if logs else None
            if i:
                rep.extra["informational"] = "another server pair, compared on request: not part of the verdict"
            reports.append(rep)
        return reports
    finally:
        for s in started:
            stop_server(s)
        workdir.close()
