"""Issue 11, item 9: logs could be forged, and held secrets.

The access log wrote the decoded path: ``%0A`` started a forged line, ``%1b[`` wrote raw
terminal escapes, ``%00`` a NUL byte; a ``?token=`` query string was logged in clear. The access
line now carries the request target as sent (percent-encoded), control characters and quotes
escaped, and the values of secret-looking query parameters redacted; the service's own log lines
(``hostpulse.*`` loggers, the apps' loggers) escape control characters in what they write,
tracebacks' exception messages included.
"""

from __future__ import annotations

import io
import logging
import re
import socket
import time
from pathlib import Path

import pytest

from hostpulse.testing import write_test_config
from tests.support import free_port, hypercorn_argv, serve

ADMIN = "admin-token-for-log-forging"
VIEWER = "viewer-token-for-log-forging"
LINE = re.compile(rb"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] \[\d+\] \[[A-Z]+\] ")
FORGED = b'[2026-01-01 00:00:00 +0000] [1] [INFO] <1> 10.0.0.1:1 "GET /admin 1.1" 200 1 1us'
SECRETS = ["s3cr3t-token-value", "an0ther-s3cr3t", "pa55w0rd-value", VIEWER]


def raw_get(port: int, target: bytes, headers: bytes = b"") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + headers + b"\r\n")
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    return reply


@pytest.fixture(scope="module")
def access_log(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The port under Hypercorn (``hypercorn.toml``), sent hostile targets; its whole log."""
    instance = tmp_path_factory.mktemp("log-forging")
    write_test_config(instance, {"admin": ADMIN, "viewer": VIEWER})
    port = free_port()
    log = instance / "hypercorn.log"
    argv = hypercorn_argv(port)
    targets = [
        b"/nothing%0A" + FORGED.replace(b" ", b"%20"),
        b"/nothing%0D%0A" + FORGED.replace(b" ", b"%20"),
        b"/json/dict%1b[31mRED%1b[0m",
        b"/json/dict%00nul",
        b'/json/dict"%20200%201%201us',
        b"/json/%E2%80%A8dict%C2%85",
        b"/json/dict?token=s3cr3t-token-value&keep=visible-1",
        b"/json/dict?x=1&access_token=an0ther-s3cr3t&Password=pa55w0rd-value",
        b"/json/dict?TOKEN=s3cr3t-token-value",
        b"/json/dict?%74oken=s3cr3t-token-value",
    ]
    with serve(argv, port, env={"HOSTPULSE_INSTANCE": str(instance)}, log=log):
        for target in targets:
            assert raw_get(port, target).startswith(b"HTTP/1.1 ")
        raw_get(port, b"/_get_current_user", f"Authorization: Bearer {VIEWER}\r\n".encode())
        deadline = time.monotonic() + 20
        while log.read_bytes().count(b'"GET /') < len(targets) + 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    return log.read_bytes()


def test_every_line_is_a_real_record(access_log: bytes) -> None:
    lines = access_log.split(b"\n")
    assert b"\x1b" not in access_log and b"\x00" not in access_log and b"\r" not in access_log
    for line in lines:
        if line and not line.startswith((b"Traceback", b"  ")):
            assert LINE.match(line), line
    forged = [line for line in lines if b"/admin" in line]
    assert forged and all(b'"GET /nothing' in line for line in forged), forged


def test_the_target_is_logged_as_sent_with_quotes_escaped(access_log: bytes) -> None:
    assert b'"GET /nothing%0A%5B2026' in access_log or b'"GET /nothing%0A[2026' in access_log
    assert b'"GET /json/dict%1b[31mRED%1b[0m 1.1" 404' in access_log
    assert b'"GET /json/dict%00nul 1.1" 404' in access_log
    assert b'"GET /json/dict\\"%20200%201%201us 1.1" 404' in access_log
    assert b'"GET /json/%E2%80%A8dict%C2%85 1.1" 404' in access_log


def test_no_secret_is_logged(access_log: bytes) -> None:
    for secret in SECRETS:
        assert secret.encode() not in access_log, secret
    assert b'"GET /json/dict?token=[redacted]&keep=visible-1 1.1" 200' in access_log
    assert b'"GET /json/dict?x=1&access_token=[redacted]&Password=[redacted] 1.1" 200' in access_log
    assert b'"GET /json/dict?TOKEN=[redacted] 1.1" 200' in access_log
    assert b'"GET /json/dict?%74oken=[redacted] 1.1" 200' in access_log


# --- the service's own lines -----------------------------------------------------------------


def boom(message: str) -> None:
    try:
        raise ValueError(message)
    except ValueError:
        logging.getLogger("hostpulse.metrics").exception("storing a batch for %s failed", message)


@pytest.mark.parametrize("flavour", ["port", "flask"])
def test_the_apps_own_log_lines_escape_control_characters(tmp_path: Path, flavour: str) -> None:
    """Whatever handler an operator gives them: the records themselves are made safe."""
    write_test_config(tmp_path, {"admin": ADMIN})
    if flavour == "port":
        import app as port

        application = port.create_app(tmp_path)
    else:
        from compat import flask_app

        application = flask_app.create_app(tmp_path)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    loggers = [application.logger] + ([logging.getLogger("hostpulse")] if flavour == "port" else [])
    for logger in loggers:
        logger.addHandler(handler)
    try:
        hostile = "/x\n[2026-01-01 00:00:00 +0000] [1] [ERROR] forged\x1b[31m\x00 Authorization: Bearer " + VIEWER
        application.logger.error("unhandled error on %s %s", "GET", hostile)
        if flavour == "port":
            boom(hostile + " ?token=" + SECRETS[0])
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
    out = stream.getvalue()
    assert out.count("forged") == (3 if flavour == "port" else 1), out  # messages, and the traceback's
    assert "\x1b" not in out and "\x00" not in out and VIEWER not in out and SECRETS[0] not in out, out
    for line in out.splitlines():
        assert "forged" not in line or line.startswith(
            (
                "ERROR unhandled error on GET /x\\x0a[2026",
                "ERROR storing a batch for /x\\x0a[2026",
                "ValueError: /x\\x0a[2026",
            )
        ), line
