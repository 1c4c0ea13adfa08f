"""Issue 11, item 11: protocol edges.

- A request with both ``Content-Length`` and ``Transfer-Encoding``: Hypercorn read the body as
  chunked and answered the request smuggled behind it; gunicorn answers 400. Both now answer
  400 and close the connection; nothing behind it is answered.
- A WebSocket handshake with two ``Authorization`` lines used the first; HTTP joins them (one
  unknown token, 401). The handshake now follows the same rule.
- Idle WebSockets and slow bodies were held forever. ``[limits] websocket_idle_timeout`` closes
  an agent's WebSocket that sends nothing, ``[limits] body_timeout`` answers 408 to a body that
  stops arriving, and ``[limits] connections_per_token`` caps what one token holds in a worker.

Real servers on loopback (Hypercorn for the port, gunicorn for the Flask version), raw sockets.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hostpulse.settings import Settings
from tests.agent.live import AGENT, VIEWER, Service
from tests.faults.wire import (
    body_of,
    both_apps,
    connect,
    exchange,
    read_until_closed,
    started,
    status_of,
)

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Service]]:
    with both_apps(tmp_path_factory.mktemp("protocol-edges")) as apps:
        yield apps


# --- Content-Length with Transfer-Encoding -------------------------------------------------

SMUGGLED = b"GET /json/dict HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
AUTH = b"Authorization: Bearer " + AGENT.encode() + b"\r\n"
FRAMINGS = {
    "cl-then-te": b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
    "te-then-cl": b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
    "cl-zero": b"Content-Length: 0\r\nTransfer-Encoding: chunked\r\n",
    "te-upper": b"Content-Length: 5\r\nTRANSFER-ENCODING: Chunked\r\n",
}


@pytest.mark.parametrize("framing", FRAMINGS.values(), ids=FRAMINGS.keys())
@pytest.mark.parametrize("flavour", ["port", "flask"])
def test_content_length_with_transfer_encoding_is_400_and_closes(
    servers: dict[str, Service], flavour: str, framing: bytes
) -> None:
    request = b"POST /data/ HTTP/1.1\r\nHost: 127.0.0.1\r\n" + AUTH + framing + b"\r\n0\r\n\r\n" + SMUGGLED
    reply, closed = exchange(servers[flavour].port, request)
    assert status_of(reply) == 400, reply
    assert closed, reply
    assert reply.count(b"HTTP/1.1 ") == 1 and b"huaiyue" not in reply, reply  # the smuggled GET: unanswered


def test_the_port_says_why_in_json(servers: dict[str, Service]) -> None:
    request = b"POST /data/ HTTP/1.1\r\nHost: 127.0.0.1\r\n" + AUTH + FRAMINGS["cl-then-te"] + b"\r\n0\r\n\r\n"
    reply, _ = exchange(servers["port"].port, request)
    head = reply.partition(b"\r\n\r\n")[0].lower()
    assert b"connection: close" in head and b"x-request-id: " in head
    assert json.loads(body_of(reply))["error"] == "bad_request"


# --- WebSocket handshakes ------------------------------------------------------------------


def handshake(authorizations: list[str], path: str = "/ws/agent") -> bytes:
    key = base64.b64encode(os.urandom(16))
    lines = [
        f"GET {path} HTTP/1.1".encode(),
        b"Host: 127.0.0.1",
        b"Upgrade: websocket",
        b"Connection: Upgrade",
        b"Sec-WebSocket-Key: " + key,
        b"Sec-WebSocket-Version: 13",
    ]
    lines += [f"Authorization: {value}".encode() for value in authorizations]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def open_websocket(port: int, authorizations: list[str]) -> tuple[socket.socket, bytes]:
    """The socket and the handshake's answer (its status line and headers)."""
    sock = connect(port)
    sock.sendall(handshake(authorizations))
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    return sock, head


@pytest.mark.parametrize(
    "authorizations,expected",
    [
        ([f"Bearer {AGENT}"], 101),
        ([f"Bearer {AGENT}", "Bearer someone-else"], 401),
        (["Bearer someone-else", f"Bearer {AGENT}"], 401),
        ([f"Bearer {AGENT}", f"Bearer {AGENT}"], 401),
    ],
)
def test_two_authorization_lines_on_a_handshake_are_one_unknown_token(
    servers: dict[str, Service], authorizations: list[str], expected: int
) -> None:
    sock, head = open_websocket(servers["port"].port, authorizations)
    sock.close()
    assert status_of(head) == expected, head


@pytest.mark.parametrize("flavour", ["port", "flask"])
def test_http_joins_two_authorization_lines_too(servers: dict[str, Service], flavour: str) -> None:
    request = (
        b"GET /_get_current_user HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        + f"Authorization: Bearer {VIEWER}\r\nAuthorization: Bearer {VIEWER}\r\n\r\n".encode()
    )
    reply, _ = exchange(servers[flavour].port, request)
    assert status_of(reply) == 401, reply


# --- idle WebSockets, slow bodies, connections per token -----------------------------------


def test_the_defaults_are_documented() -> None:
    limits = Settings().limits
    text = README.read_text()
    assert f"body_timeout = {limits.body_timeout!r}" in text
    assert f"websocket_idle_timeout = {limits.websocket_idle_timeout!r}" in text
    assert f"connections_per_token = {limits.connections_per_token!r}" in text
    assert 0 < limits.body_timeout <= 120 and 0 < limits.websocket_idle_timeout <= 3600
    assert 0 < limits.connections_per_token <= 1024


def ws_frame(text: str) -> bytes:
    """A masked client text frame (payload under 126 bytes)."""
    payload, mask = text.encode(), os.urandom(4)
    assert len(payload) < 126
    return bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def test_an_idle_agent_websocket_is_closed(tmp_path: Path) -> None:
    service = started(tmp_path, websocket_idle_timeout=1.0)
    try:
        sock, head = open_websocket(service.port, [f"Bearer {AGENT}"])
        with sock:
            assert status_of(head) == 101, head
            received, closed = read_until_closed(sock, timeout=20)
        assert closed, "the idle WebSocket was still open after 20 s"
        assert received[:1] == b"\x88", received  # a close frame first
        # A WebSocket that keeps sending stays open past the idle timeout.
        sock, head = open_websocket(service.port, [f"Bearer {AGENT}"])
        with sock:
            assert status_of(head) == 101, head
            batch = {"host": "busy-1", "run": "r1", "seq": 0, "samples": [{"ts": time.time(), "values": {"x": 1.0}}]}
            for seq in range(8):
                batch["seq"] = seq
                sock.sendall(ws_frame(json.dumps(batch, separators=(",", ":"))))
                time.sleep(0.3)
            sock.settimeout(10)
            answers = b""
            while answers.count(b'"ack"') < 8:
                chunk = sock.recv(65536)
                assert chunk and b"\x88" not in chunk[:1], answers + chunk
                answers += chunk
    finally:
        service.stop()


def slow_post(port: int, path: str, token: str | None, declared: int, sent: bytes) -> socket.socket:
    sock = connect(port)
    auth = f"Authorization: Bearer {token}\r\n".encode() if token else b""
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n".encode()
        + auth
        + f"Content-Length: {declared}\r\n\r\n".encode()
        + sent
    )
    return sock


def test_a_body_that_stops_arriving_is_408_and_closed(tmp_path: Path) -> None:
    service = started(tmp_path, body_timeout=1.0)
    try:
        for path in ("/ingest", "/data/", "/"):
            with slow_post(service.port, path, AGENT, 100, b'{"host": "slow"') as sock:
                reply, closed = read_until_closed(sock, timeout=20)
            assert closed and status_of(reply) == 408, (path, reply)
            assert json.loads(body_of(reply))["error"] == "request_timeout"
        # chunked, and an upload to /demo, alike
        with connect(service.port) as sock:
            sock.sendall(b"POST /data/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n" + AUTH + b"\r\n3\r\n[1,")
            reply, closed = read_until_closed(sock, timeout=20)
        assert closed and status_of(reply) == 408, reply
        # No byte for a second is the limit, not the body's whole time: a trickle gets through.
        body = json.dumps(
            {"host": "trickle-1", "run": "r1", "seq": 1, "samples": [{"ts": time.time(), "values": {"x": 1.0}}]}
        ).encode()
        with slow_post(service.port, "/ingest", AGENT, len(body), b"") as sock:
            for i in range(0, len(body), len(body) // 5 + 1):
                time.sleep(0.3)
                sock.sendall(body[i : i + len(body) // 5 + 1])
            sock.settimeout(20)
            reply = sock.recv(65536)
        assert status_of(reply) == 200, reply
    finally:
        service.stop()


def test_a_token_holds_at_most_its_cap_of_connections(tmp_path: Path) -> None:
    service = started(tmp_path, connections_per_token=3, body_timeout=60.0)
    held: list[socket.socket] = []
    try:
        held += [slow_post(service.port, "/ingest", AGENT, 100, b"{") for _ in range(2)]
        ws, head = open_websocket(service.port, [f"Bearer {AGENT}"])
        held.append(ws)
        assert status_of(head) == 101, head

        def refused() -> bytes:
            with slow_post(service.port, "/ingest", AGENT, 2, b"{}") as sock:
                return read_until_closed(sock, timeout=5)[0]

        # wait until the server holds all three (the requests reach the app asynchronously)
        deadline = time.monotonic() + 20
        while status_of(reply := refused()) != 429 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert status_of(reply) == 429, reply
        assert json.loads(body_of(reply))["error"] == "too_many_requests"
        sock, head = open_websocket(service.port, [f"Bearer {AGENT}"])
        sock.close()
        assert status_of(head) == 429, head
        # another token is not affected
        reply, _ = exchange(
            service.port,
            f"GET /hosts HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {VIEWER}\r\n\r\n".encode(),
        )
        assert status_of(reply) == 200, reply
        # one held connection goes: the token gets a slot back
        held.pop(0).close()
        deadline = time.monotonic() + 20
        while status_of(reply := refused()) == 429 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert status_of(reply) == 400, reply  # '{}' is not a batch: past the cap, into the route
    finally:
        for sock in held:
            sock.close()
        service.stop()


def test_a_request_without_a_valid_token_is_not_held(tmp_path: Path) -> None:
    service = started(tmp_path, body_timeout=60.0)
    try:
        for token in (None, "not-a-token"):
            with slow_post(service.port, "/ingest", token, 1000, b"{") as sock:
                reply, closed = read_until_closed(sock, timeout=10)
            assert status_of(reply) == 401 and closed, reply
    finally:
        service.stop()
