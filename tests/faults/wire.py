"""Both apps on their real servers, and raw bytes on a socket: what the fault tests share."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hostpulse.testing import write_test_config
from tests.agent.live import TOKENS, Service


def started(instance: Path, server: str = "hypercorn", **limits: object) -> Service:
    """The port on Hypercorn, or the Flask version on gunicorn, with these ``[limits]``."""
    flavour = {} if server == "hypercorn" else {"factory": "compat.flask_app:create_app()", "server": "gunicorn"}
    service = Service(instance, **flavour)
    write_test_config(instance, TOKENS, limits=limits, store={"retention": 30 * 24 * 3600.0})
    return service.start()


@contextmanager
def both_apps(root: Path, **limits: object) -> Iterator[dict[str, Service]]:
    """``{"flask": ..., "port": ...}``, stopped at the end."""
    made: list[Service] = []
    try:
        made.append(started(root / "flask", "gunicorn", **limits))
        made.append(started(root / "port", **limits))
        yield {"flask": made[0], "port": made[1]}
    finally:
        for service in made:
            service.stop()


def connect(port: int, timeout: float = 10.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def read_until_closed(sock: socket.socket, timeout: float = 10.0) -> tuple[bytes, bool]:
    """Everything the server sends until it closes (True) or ``timeout`` passes quietly (False)."""
    sock.settimeout(timeout)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        return received, False
    except ConnectionResetError:
        pass
    return received, True


def exchange(port: int, data: bytes, timeout: float = 10.0) -> tuple[bytes, bool]:
    """Send ``data``, read until the server closes (True) or goes quiet (False)."""
    with connect(port) as sock:
        sock.sendall(data)
        return read_until_closed(sock, timeout)


def status_of(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1])


def body_of(reply: bytes) -> bytes:
    return reply.partition(b"\r\n\r\n")[2]
