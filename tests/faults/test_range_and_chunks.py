"""Issue 11, item 14 (HTTP parts): a suffix range longer than the file, and malformed chunks.

- ``Range: bytes=-<huge>`` answered 206 (the whole file) in the port and 416 in the Flask
  version. Pinned to the Flask version's (Werkzeug's) answer: a suffix longer than the file
  is 416 with ``Content-Range: bytes */<size>``, in both apps.
- A chunk extension outside RFC 9112's grammar (or a bad chunk size) raised gunicorn's parse
  error inside the Flask view: a 500 and a traceback. The port (h11) accepted any extension.
  Both now refuse it with 400 and close the connection.

Both apps under their real servers (gunicorn, Hypercorn), on loopback; raw sockets for the chunks.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.agent.live import ADMIN, AGENT, VIEWER, Service
from tests.contract.helpers import multipart
from tests.faults.wire import both_apps, exchange
from tests.support import http

CONTENT = b"0123456789"


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Service]]:
    with both_apps(tmp_path_factory.mktemp("range-chunks")) as apps:
        yield apps


def stored(service: Service) -> str:
    body, content_type = multipart([("id", "1")], [("file", "ten.txt", CONTENT)])
    status, headers, _ = http(
        "POST",
        service.url + "/demo",
        body=body,
        headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": content_type},
    )
    assert status == 200
    return headers["content-location"]


def fetch(service: Service, path: str, byte_range: str) -> tuple[int, str | None, bytes]:
    status, headers, body = http(
        "GET", service.url + path, headers={"Authorization": f"Bearer {VIEWER}", "Range": byte_range}
    )
    return status, headers.get("content-range"), body if status == 206 else b""


@pytest.mark.parametrize(
    "byte_range,expected",
    [
        ("bytes=-99999999999999999999", (416, "bytes */10", b"")),
        ("bytes=-11", (416, "bytes */10", b"")),
        ("bytes=-10", (206, "bytes 0-9/10", CONTENT)),
        ("bytes=-3", (206, "bytes 7-9/10", b"789")),
        ("bytes=0-99999999999999999999", (206, "bytes 0-9/10", CONTENT)),
    ],
)
def test_suffix_ranges_answer_alike(servers: dict[str, Service], byte_range: str, expected: tuple) -> None:
    answers = {name: fetch(service, stored(service), byte_range) for name, service in servers.items()}
    assert answers["flask"] == answers["port"] == expected


def chunked_post(body: bytes) -> bytes:
    return (
        b"POST /data/ HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
        + AGENT.encode()
        + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
        + body
    )


BAD_CHUNKS = {
    "extension-open-quote": b'5;"bad\r\n[1,2]\r\n0\r\n\r\n',
    "extension-bare-cr": b"5;a\rb\r\n[1,2]\r\n0\r\n\r\n",
    "extension-space-in-name": b"5;a b\r\n[1,2]\r\n0\r\n\r\n",
    "extension-no-name": b"5;=x\r\n[1,2]\r\n0\r\n\r\n",
    "size-not-hex": b"5x\r\n[1,2]\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("chunks", BAD_CHUNKS.values(), ids=BAD_CHUNKS.keys())
def test_a_malformed_chunk_is_400_and_the_connection_closes(servers: dict[str, Service], chunks: bytes) -> None:
    for name, service in servers.items():
        # a second request pipelined behind: it must not be answered
        reply, closed = exchange(service.port, chunked_post(chunks) + b"GET /json/dict HTTP/1.1\r\nHost: x\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 400"), (name, reply[:300])
        assert closed, (name, reply)
        assert reply.count(b"HTTP/1.1 ") == 1, (name, reply)
    text = servers["flask"].log.read_text(errors="replace")
    assert "Traceback" not in text, text[-3000:]


def test_the_flask_version_answers_json(servers: dict[str, Service]) -> None:
    reply, _ = exchange(servers["flask"].port, chunked_post(BAD_CHUNKS["extension-open-quote"]))
    head, _, body = reply.partition(b"\r\n\r\n")
    assert b"application/json" in head.lower()
    assert json.loads(body)["error"] == "bad_request"


@pytest.mark.parametrize("extension", [b";a", b";a=b", b' ; a = "q \\" x" ;b', b";a=b;c=d"])
def test_valid_chunk_extensions_are_still_accepted(servers: dict[str, Service], extension: bytes) -> None:
    for name, service in servers.items():
        reply, _ = exchange(service.port, chunked_post(b"5" + extension + b"\r\n[1,2]\r\n0\r\n\r\n"), timeout=3)
        assert reply.startswith(b"HTTP/1.1 200"), (name, reply[:300])
        assert reply.endswith(b'{"bytes":5,"items":2,"status":"success"}\n'), (name, reply)
