"""In-process clients that drive an app the way a server does.

Neither client uses a framework's test client: the WSGI client builds a real WSGI environ
(PEP 3333) and calls ``app(environ, start_response)``; the ASGI client calls
``app(scope, receive, send)`` with an ``http`` scope (ASGI 3) on one event loop that runs in a
background thread for the whole life of the client, so background tasks an app starts (a
job's child process, a writer task) survive between requests, and it runs the ASGI lifespan
(startup when the client is created, shutdown when it is closed).

Both clients do what the servers do and nothing more:

- a HEAD response's body is dropped (gunicorn and Hypercorn never send it);
- the body is the concatenation of every chunk the app produced;
- headers are kept as the app gave them, in order (a comparison must treat names
  case-insensitively: Hypercorn lower-cases them on the wire);
- nothing is added (no Date, Server, Content-Length or chunked framing).

A request body may be ``bytes`` (sent with ``Content-Length``) or an iterable of ``bytes``
chunks (sent as a chunked request: no ``Content-Length``; WSGI gets
``wsgi.input_terminated = True``, ASGI several ``http.request`` messages).
"""

from __future__ import annotations

import asyncio
import inspect
import io
import json as _json
import sys
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, unquote_to_bytes

__all__ = [
    "Reply",
    "AppClient",
    "WSGIClient",
    "ASGIClient",
    "client_for",
    "is_asgi_app",
    "split_target",
    "normalise_headers",
]

DEFAULT_HOST = "localhost"
SERVER_ADDR = ("127.0.0.1", 80)
CLIENT_ADDR = ("127.0.0.1", 50000)
REQUEST_TIMEOUT = 120.0


@dataclass(frozen=True)
class Reply:
    """One answer as a client receives it."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    # bytes of a body the app produced for a HEAD request and the client dropped, as the
    # servers do; not part of what a client receives (an app-level note, not a difference)
    app_head_body: int = field(default=0, compare=False)
    # what the app logged (warnings, errors, tracebacks) while it handled this request
    log: str = field(default="", compare=False)

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), else None."""
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return None

    def header_all(self, name: str) -> list[str]:
        lname = name.lower()
        return [v for k, v in self.headers if k.lower() == lname]

    def json(self) -> Any:
        return _json.loads(self.body)

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


# ---------------------------------------------------------------------------- helpers

_SAFE_TARGET = "".join(chr(c) for c in range(0x21, 0x7F))


def encode_target(target: str) -> str:
    """Percent-encode what a client could not put on a request line (spaces, non-ASCII)."""
    out = []
    for ch in target:
        if ch in _SAFE_TARGET:
            out.append(ch)
        else:
            out.append("".join(f"%{b:02X}" for b in ch.encode("utf-8")))
    return "".join(out)


def split_target(target: str) -> tuple[bytes, bytes]:
    """The raw path and raw query string, as bytes, of a request target."""
    target = encode_target(target)
    if not target.startswith("/"):
        target = "/" + target
    path, _, query = target.partition("?")
    return path.encode("ascii"), query.encode("ascii")


def _header_value_bytes(value: str | bytes) -> bytes:
    if isinstance(value, bytes):
        return value
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def normalise_headers(
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None,
) -> list[tuple[str, bytes]]:
    """Request headers as (name, raw value bytes), in order."""
    if headers is None:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    out = []
    for name, value in items:
        out.append((str(name), _header_value_bytes(value)))
    return out


def _body_parts(body: bytes | Iterable[bytes] | None) -> tuple[bool, list[bytes]]:
    """(chunked?, chunks). ``bytes`` -> one part sent with Content-Length."""
    if body is None:
        return False, []
    if isinstance(body, (bytes, bytearray, memoryview)):
        return False, [bytes(body)]
    if isinstance(body, str):
        raise TypeError("body must be bytes or an iterable of bytes, not str")
    return True, [bytes(chunk) for chunk in body]


def is_asgi_app(app: Any) -> bool:
    """True for an ASGI 3 application (Quart, Starlette, any ``async def app(scope, receive, send)``)."""
    # Quart and Flask both have ``wsgi_app``; Quart's __call__ is a coroutine function.
    call = app if inspect.isfunction(app) or inspect.ismethod(app) else getattr(app, "__call__", None)  # noqa: B004 -- the method is inspected, not callability
    if call is None:
        return False
    if inspect.iscoroutinefunction(call):
        return True
    if inspect.iscoroutinefunction(app):
        return True
    # asgiref-style single-callable objects with an async __call__ attribute lookups
    try:
        params = inspect.signature(call).parameters
    except (TypeError, ValueError):
        return False
    return list(params)[:3] == ["scope", "receive", "send"]


def client_for(app: Any) -> AppClient:
    """A WSGI client for a WSGI app (Flask), an ASGI client for an ASGI app (Quart)."""
    if is_asgi_app(app):
        return ASGIClient(app)
    return WSGIClient(app)


class AppClient:
    """Common interface; use :func:`client_for`."""

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        body: bytes | Iterable[bytes] | None = None,
    ) -> Reply:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> AppClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------------- WSGI


class _ChunkedInput(io.RawIOBase):
    """A wsgi.input that ends at the end of the body (as gunicorn's de-chunked reader)."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._buf = io.BytesIO(b"".join(chunks))

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = self._buf.read(len(b))
        b[: len(data)] = data
        return len(data)


class WSGIClient(AppClient):
    """Calls ``app(environ, start_response)`` with a real environ."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._lock = threading.Lock()

    def build_environ(
        self, method: str, path: str, headers: list[tuple[str, bytes]], chunked: bool, body: bytes
    ) -> dict[str, Any]:
        raw_path, raw_query = split_target(path)
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method.upper(),
            "SCRIPT_NAME": "",
            # gunicorn: unquote to bytes, then latin-1 (PEP 3333's "bytes as str")
            "PATH_INFO": unquote_to_bytes(raw_path).decode("latin-1"),
            "QUERY_STRING": raw_query.decode("latin-1"),
            "RAW_URI": (raw_path + (b"?" + raw_query if raw_query else b"")).decode("latin-1"),
            "SERVER_NAME": SERVER_ADDR[0],
            "SERVER_PORT": str(SERVER_ADDR[1]),
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": CLIENT_ADDR[0],
            "REMOTE_PORT": str(CLIENT_ADDR[1]),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        has_host = False
        for name, value in headers:
            key = name.upper().replace("-", "_")
            sval = value.decode("latin-1")
            if key == "CONTENT_LENGTH":
                if chunked:
                    continue
                environ["CONTENT_LENGTH"] = sval
                continue
            if key == "TRANSFER_ENCODING" and chunked:
                continue
            if key == "CONTENT_TYPE":
                environ["CONTENT_TYPE"] = sval
                continue
            if key == "HOST":
                has_host = True
            hkey = "HTTP_" + key
            if hkey in environ:
                environ[hkey] = environ[hkey] + "," + sval
            else:
                environ[hkey] = sval
        if not has_host:
            environ["HTTP_HOST"] = DEFAULT_HOST
        # gunicorn (the Flask version's server) always sets wsgi.input_terminated: its
        # body reader ends at Content-Length or at the last chunk.
        environ["wsgi.input_terminated"] = True
        if chunked:
            environ["HTTP_TRANSFER_ENCODING"] = "chunked"
            environ["wsgi.input"] = io.BufferedReader(_ChunkedInput([body]))
        else:
            environ["wsgi.input"] = io.BytesIO(body)
            if body and "CONTENT_LENGTH" not in environ:
                environ["CONTENT_LENGTH"] = str(len(body))
        return environ

    def request(self, method, path, *, headers=None, body=None) -> Reply:
        hdrs = normalise_headers(headers)
        chunked, parts = _body_parts(body)
        data = b"".join(parts)
        environ = self.build_environ(method, path, hdrs, chunked, data)
        captured: dict[str, Any] = {}
        written: list[bytes] = []

        def start_response(status: str, response_headers: list, exc_info: Any = None):
            if exc_info is not None and captured.get("sent"):
                raise exc_info[1].with_traceback(exc_info[2])
            captured["status"] = status
            captured["headers"] = [(str(k), str(v)) for k, v in response_headers]
            return written.append

        result = self.app(environ, start_response)
        chunks: list[bytes] = []
        try:
            for chunk in result:
                if chunk:
                    captured["sent"] = True
                    chunks.append(bytes(chunk))
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        if "status" not in captured:
            raise RuntimeError("WSGI app did not call start_response")
        status = int(captured["status"].split(" ", 1)[0])
        payload = b"".join(written) + b"".join(chunks)
        dropped = 0
        if method.upper() == "HEAD":
            dropped, payload = len(payload), b""
        return Reply(status=status, headers=captured["headers"], body=payload, app_head_body=dropped)


# ---------------------------------------------------------------------------- ASGI


class ASGIClient(AppClient):
    """Calls ``app(scope, receive, send)`` on one event loop in a background thread."""

    def __init__(self, app: Any, *, lifespan: bool = True, startup_timeout: float = 60.0) -> None:
        self.app = app
        self.state: dict[str, Any] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name="asgi-client-loop", daemon=True)
        self._thread.start()
        self._closed = False
        self._lifespan_task: asyncio.Future | None = None
        self._lifespan_queue: asyncio.Queue | None = None
        self._lifespan_supported = False
        self._startup_done: asyncio.Event | None = None
        self._shutdown_done: asyncio.Event | None = None
        self._lifespan_error: str | None = None
        if lifespan:
            try:
                self._call(self._startup(), timeout=startup_timeout)
            except BaseException:
                self._stop_loop()
                raise

    # -- loop plumbing
    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()
        # drain: cancel what is left, then close
        pending = [t for t in asyncio.all_tasks(self._loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.close()

    def _call(self, coro: Any, timeout: float | None = REQUEST_TIMEOUT) -> Any:
        if self._closed and self._loop.is_closed():
            raise RuntimeError("client is closed")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout)

    def _stop_loop(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)

    # -- lifespan
    async def _startup(self) -> None:
        self._lifespan_queue = asyncio.Queue()
        self._startup_done = asyncio.Event()
        self._shutdown_done = asyncio.Event()
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }

        async def receive() -> dict:
            return await self._lifespan_queue.get()

        async def send(message: dict) -> None:
            kind = message["type"]
            if kind == "lifespan.startup.complete":
                self._startup_done.set()
            elif kind == "lifespan.startup.failed":
                self._lifespan_error = message.get("message", "") or "startup failed"
                self._startup_done.set()
            elif kind in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                if kind == "lifespan.shutdown.failed":
                    self._lifespan_error = message.get("message", "") or "shutdown failed"
                self._shutdown_done.set()

        async def run() -> None:
            try:
                await self.app(scope, receive, send)
            except Exception:  # an app without lifespan support raises: carry on without it
                if not self._startup_done.is_set():
                    self._lifespan_supported = False
                    self._startup_done.set()
                    return
                raise
            finally:
                self._startup_done.set()
                self._shutdown_done.set()

        self._lifespan_supported = True
        self._lifespan_task = asyncio.ensure_future(run())
        await self._lifespan_queue.put({"type": "lifespan.startup"})
        await self._startup_done.wait()
        if self._lifespan_error:
            raise RuntimeError(f"ASGI lifespan startup failed: {self._lifespan_error}")

    async def _shutdown(self) -> None:
        if self._lifespan_task is None or not self._lifespan_supported or self._lifespan_task.done():
            return
        await self._lifespan_queue.put({"type": "lifespan.shutdown"})
        await self._shutdown_done.wait()
        try:
            await asyncio.wait_for(self._lifespan_task, timeout=30)
        except Exception:
            pass

    # -- requests
    async def _request(
        self, method: str, path: str, headers: list[tuple[str, bytes]], chunked: bool, parts: list[bytes]
    ) -> Reply:
        raw_path, raw_query = split_target(path)
        asgi_headers: list[tuple[bytes, bytes]] = []
        has_host = False
        for name, value in headers:
            lname = name.lower()
            if chunked and lname == "content-length":
                continue
            if lname == "host":
                has_host = True
            asgi_headers.append((lname.encode("latin-1"), value))
        if not has_host:
            asgi_headers.insert(0, (b"host", DEFAULT_HOST.encode()))
        if not chunked:
            if parts and parts[0] and not any(n == b"content-length" for n, _ in asgi_headers):
                asgi_headers.append((b"content-length", str(len(parts[0])).encode()))
        elif not any(n == b"transfer-encoding" for n, _ in asgi_headers):
            asgi_headers.append((b"transfer-encoding", b"chunked"))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.1"},
            "http_version": "1.1",
            "method": method.upper(),
            "scheme": "http",
            # Hypercorn: unquote(path.decode("ascii")) (UTF-8, errors replaced)
            "path": unquote(raw_path.decode("ascii")),
            "raw_path": raw_path,
            "query_string": raw_query,
            "root_path": "",
            "headers": asgi_headers,
            "client": CLIENT_ADDR,
            "server": SERVER_ADDR,
            "state": dict(self.state),
            "extensions": {},
        }
        messages: list[dict] = []
        if chunked:
            for chunk in parts:
                if chunk:
                    messages.append({"type": "http.request", "body": chunk, "more_body": True})
            messages.append({"type": "http.request", "body": b"", "more_body": False})
        else:
            messages.append({"type": "http.request", "body": parts[0] if parts else b"", "more_body": False})
        messages.reverse()
        response_done = asyncio.Event()
        result: dict[str, Any] = {"chunks": []}

        async def receive() -> dict:
            if messages:
                return messages.pop()
            # Like a server: the connection stays open until the answer has been sent.
            await response_done.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            kind = message["type"]
            if kind == "http.response.start":
                if "status" in result:
                    raise RuntimeError("http.response.start sent twice")
                result["status"] = int(message["status"])
                result["headers"] = [
                    (bytes(k).decode("latin-1"), bytes(v).decode("latin-1")) for k, v in message.get("headers", [])
                ]
            elif kind == "http.response.body":
                if "status" not in result:
                    raise RuntimeError("http.response.body before http.response.start")
                result["chunks"].append(bytes(message.get("body", b"")))
                if not message.get("more_body", False):
                    response_done.set()
            # other messages (trailers, push, early hints) are not advertised: ignore

        try:
            await self.app(scope, receive, send)
        finally:
            response_done.set()
        if "status" not in result:
            raise RuntimeError("ASGI app finished without sending a response")
        payload = b"".join(result["chunks"])
        dropped = 0
        if method.upper() == "HEAD":
            dropped, payload = len(payload), b""
        return Reply(status=result["status"], headers=result["headers"], body=payload, app_head_body=dropped)

    def request(self, method, path, *, headers=None, body=None) -> Reply:
        if self._closed:
            raise RuntimeError("client is closed")
        hdrs = normalise_headers(headers)
        chunked, parts = _body_parts(body)
        return self._call(self._request(method, path, hdrs, chunked, parts))

    def run(self, coro: Any, timeout: float | None = REQUEST_TIMEOUT) -> Any:
        """Run a coroutine on the client's loop (for tests that need the app's loop)."""
        return self._call(coro, timeout)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self._lifespan_task is not None:
                self._call(self._shutdown(), timeout=60)
        finally:
            self._stop_loop()
