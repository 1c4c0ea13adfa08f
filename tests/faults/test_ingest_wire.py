"""The cheaper ingest path (issue 12, item 4) answers byte for byte as before, on raw sockets.

``/ws/agent`` now reads ASGI messages itself (``app/protocol.py``'s direct WebSocket), checks
each batch where it arrives and answers from the group committer's callback, and
``POST /ingest`` writes its answer without ``jsonify``: the bytes an agent sees are the same
(compact JSON, keys sorted; over HTTP a trailing newline and ``application/json``).
An empty binary frame, which Quart's queue passed on as ``None`` (a 500 "could not be
stored" and a logged traceback), is now an empty body: 400 ``invalid_json``.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent.live import TOKENS, Service
from tests.faults.test_protocol_edges import open_websocket
from tests.faults.wire import connect, started, status_of

AGENT = TOKENS["agent"]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    running = started(tmp_path_factory.mktemp("ingest-wire"), websocket_idle_timeout=60.0)
    try:
        yield running
    finally:
        running.stop()


def wire(answer: dict[str, object]) -> bytes:
    return json.dumps(answer, separators=(",", ":"), sort_keys=True).encode()


def batch(seq: int, host: str = "wire-1", run: str = "r1", **extra: object) -> dict[str, object]:
    return {"host": host, "run": run, "seq": seq, "samples": [{"ts": time.time(), "values": {"x": 1.5}}], **extra}


def frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """A masked client frame of any size."""
    mask = os.urandom(4)
    size = len(payload)
    if size < 126:
        head = bytes([0x80 | opcode, 0x80 | size])
    elif size < 65536:
        head = bytes([0x80 | opcode, 0x80 | 126]) + size.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 0x80 | 127]) + size.to_bytes(8, "big")
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class Frames:
    """Server frames read off a socket: (opcode, payload)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buffer = sock, b""

    def _need(self, size: int) -> None:
        while len(self.buffer) < size:
            chunk = self.sock.recv(65536)
            assert chunk, "the server closed the connection"
            self.buffer += chunk

    def next(self) -> tuple[int, bytes]:
        self._need(2)
        opcode, size, at = self.buffer[0] & 0x0F, self.buffer[1] & 0x7F, 2
        if size == 126:
            self._need(4)
            size, at = int.from_bytes(self.buffer[2:4], "big"), 4
        elif size == 127:
            self._need(10)
            size, at = int.from_bytes(self.buffer[2:10], "big"), 10
        self._need(at + size)
        payload, self.buffer = self.buffer[at : at + size], self.buffer[at + size :]
        return opcode, payload


def opened(service: Service) -> tuple[socket.socket, Frames]:
    sock, head = open_websocket(service.port, [f"Bearer {AGENT}"])
    assert status_of(head) == 101, head
    sock.settimeout(20)
    return sock, Frames(sock)


def post(service: Service, body: bytes, token: str = AGENT) -> tuple[int, dict[str, str], bytes]:
    with connect(service.port, timeout=20) as sock:
        sock.sendall(
            b"POST /ingest HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    head, _, content = reply.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status_of(reply), headers, content


def test_http_answers_are_jsonify_bytes(service: Service) -> None:
    status, headers, content = post(service, wire(batch(0, run="http1")))
    assert (status, headers["content-type"], content) == (
        200,
        "application/json",
        wire({"ack": 0, "run": "http1"}) + b"\n",
    )
    assert headers["content-length"] == str(len(content))
    status, headers, content = post(service, b'{"host": "wire-1", "run": "http1", "seq": 1, "samples": [')
    assert status == 400 and headers["content-type"] == "application/json"
    answer = json.loads(content)
    assert content == wire(answer) + b"\n" and answer["error"] == "invalid_json" and answer["seq"] is None
    status, _, content = post(service, wire(batch(2, run="http1", goodbye=1)))
    assert (
        status == 400
        and content == wire({"error": "bad_request", "message": "goodbye must be true or false", "seq": 2}) + b"\n"
    )
    status, _, content = post(service, wire(batch(3, host="other-host", run="http1")), token=TOKENS["viewer"])
    assert status == 403  # the route's role, before any batch is read


def test_websocket_answers_text_and_binary_frames_and_stays_open(service: Service) -> None:
    sock, frames = opened(service)
    with sock:
        sock.sendall(frame(wire(batch(0))))
        assert frames.next() == (0x1, wire({"ack": 0, "run": "r1"}))
        sock.sendall(frame(wire(batch(1)), opcode=0x2))  # a binary frame holding a batch
        assert frames.next() == (0x1, wire({"ack": 1, "run": "r1"}))
        sock.sendall(frame(b""))  # an empty text frame, as before
        empty = frames.next()
        assert empty[0] == 0x1 and json.loads(empty[1])["error"] == "invalid_json"
        assert empty[1] == wire({"error": "invalid_json", "message": json.loads(empty[1])["message"], "seq": None})
        sock.sendall(frame(b"", opcode=0x2))  # empty binary: the same, no longer a store failure
        assert frames.next() == empty
        sock.sendall(frame(wire(batch(2, interval="10"))))
        opcode, payload = frames.next()
        assert opcode == 0x1 and json.loads(payload)["seq"] == 2 and json.loads(payload)["error"] == "bad_request"
        sock.sendall(frame(("\ufeff" + json.dumps(batch(3))).encode()))  # a BOM, read as json.loads reads bytes
        assert frames.next() == (0x1, wire({"ack": 3, "run": "r1"}))
        sock.sendall(frame(wire(batch(0))))  # again: acked, not stored twice
        assert frames.next() == (0x1, wire({"ack": 0, "run": "r1"}))


def test_many_batches_at_once_are_all_acked_past_the_in_flight_cap(service: Service) -> None:
    """200 batches sent without reading: reading pauses at 64 awaiting their commit, then
    goes on; every one is acknowledged once."""
    sock, frames = opened(service)
    with sock:
        sock.sendall(b"".join(frame(wire(batch(seq, run="many"))) for seq in range(200)))
        acks = [json.loads(frames.next()[1])["ack"] for _ in range(200)]
    assert sorted(acks) == list(range(200))


def test_a_client_that_leaves_mid_commit_leaves_the_service_serving(service: Service) -> None:
    for _ in range(5):
        sock, _ = opened(service)
        sock.sendall(b"".join(frame(wire(batch(seq, run="leaver"))) for seq in range(50)))
        sock.close()
    sock, frames = opened(service)
    with sock:
        sock.sendall(b"".join(frame(wire(batch(seq, run="leaver"))) for seq in range(50)))
        assert sorted(json.loads(frames.next()[1])["ack"] for _ in range(50)) == list(range(50))


def test_an_idle_socket_with_acks_due_is_not_closed(tmp_path: Path) -> None:
    """The idle timer, one per connection now, closes a quiet socket and keeps a busy one."""
    running = started(tmp_path, websocket_idle_timeout=1.0)
    try:
        sock, frames = opened(running)
        with sock:
            for seq in range(6):
                sock.sendall(frame(wire(batch(seq, run="busy"))))
                assert json.loads(frames.next()[1]) == {"ack": seq, "run": "busy"}
                time.sleep(0.4)
            opcode, payload = frames.next()  # then quiet: closed with 1000 and the reason
        assert opcode == 0x8 and payload[:2] == (1000).to_bytes(2, "big") and b"idle for 1 s" in payload
    finally:
        running.stop()
