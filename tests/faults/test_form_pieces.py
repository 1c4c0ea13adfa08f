"""A multipart form that arrives in small pieces answers as it does in one piece.

The port fed Werkzeug's multipart decoder whatever pieces the network delivered; one
piece boundary made the decoder keep the CR before the closing delimiter in the field
(``POST /demo`` answered ``chunked\\r`` where the Flask version on gunicorn answers
``chunked``; the compat suite's live mode saw it under a slow client). A piece ending between the two dashes
that close the body did it. The port now feeds the decoder the 64 KiB blocks Werkzeug's own
parser reads.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent.live import ADMIN, Service

BOUNDARY = b"piecesboundary"
BODY = b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="id"\r\n\r\nchunked\r\n--' + BOUNDARY + b"--\r\n"


@pytest.fixture(scope="module", params=["hypercorn", "gunicorn"])
def service(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    factory = "app:create_app()" if request.param == "hypercorn" else "compat.flask_app:create_app()"
    svc = Service(Path(tmp_path_factory.mktemp(request.param)), factory=factory, server=request.param).start()
    try:
        yield svc
    finally:
        svc.stop()


def post_in_pieces(port: int, cuts: list[int]) -> bytes:
    """``POST /demo`` with the body cut at ``cuts`` (byte offsets), a pause after each piece."""
    head = (
        b"POST /demo HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer "
        + ADMIN.encode()
        + b"\r\nContent-Type: multipart/form-data; boundary="
        + BOUNDARY
        + b"\r\nContent-Length: "
        + str(len(BODY)).encode()
        + b"\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(head)
        start = 0
        for cut in cuts + [len(BODY)]:
            sock.sendall(BODY[start:cut])
            start = cut
            time.sleep(0.05)  # each piece reaches the app on its own
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    return reply


# the closing delimiter is "\r\n--BOUNDARY--": a piece that ends between its two last dashes
# made Werkzeug's decoder (fed piece by piece) keep the "\r" in the field
CLOSING_DASH = len(BODY) - len(b"-\r\n")


@pytest.mark.parametrize(
    "cuts",
    [[], [BODY.index(b"chunked") + 8], [30, CLOSING_DASH]],
    ids=["one-piece", "cut-after-the-cr", "cut-between-the-closing-dashes"],
)
def test_the_field_is_the_same_however_the_body_is_cut(service: Service, cuts: list[int]) -> None:
    reply = post_in_pieces(service.port, cuts)
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
    assert reply.split(b"\r\n\r\n", 1)[1] == b"chunked"
