"""``python -m bench.overhead`` and the cuts it measured: each variant really takes its layer
out, and the cheaper paths write what the slower ones wrote."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from app import access_log, logs
from app.edge import Edge, edge_of
from bench import overhead
from hostpulse import payloads


def test_the_overhead_tool_runs_every_variant() -> None:
    figures = asyncio.run(overhead.measure(30, 1, profile=False))  # each app answers 200 (its warm-up asserts)
    assert set(figures) == {"bare Quart", *overhead.VARIANTS}
    assert all(seconds > 0 for seconds in figures.values())


def test_each_variant_takes_its_layer_out(tmp_path: Path) -> None:
    port = overhead.port_app(tmp_path / "port")
    layer = edge_of(port)
    assert layer.access is not None and layer.stamps is not None
    assert "app.interceptors" in hooks(port)
    no_log = overhead.port_app(tmp_path / "no-log")
    overhead.VARIANTS["- access log"](no_log)
    assert edge_of(no_log).access is None and edge_of(no_log).stamps is not None
    stripped = overhead.port_app(tmp_path / "stripped")
    overhead.VARIANTS["- access log - interceptors - protocol"](stripped)
    assert not isinstance(stripped.asgi_app, Edge)
    assert "app.interceptors" not in hooks(stripped)


def hooks(app: Any) -> set[str]:
    return {f.__module__ for funcs in app.before_request_funcs.values() for f in funcs}


def test_a_new_request_id_is_a_uuid4_hex() -> None:
    ids = {payloads.new_request_id() for _ in range(1000)}  # several pools of 256
    assert len(ids) == 1000
    for value in ids:
        parsed = uuid.UUID(hex=value)
        assert parsed.hex == value and parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_a_forked_worker_hands_out_ids_of_its_own() -> None:
    payloads.new_request_id()  # the parent's pool is filled: a fork copies it
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child's
        os.write(write, "".join(payloads.new_request_id() for _ in range(10)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    with os.fdopen(read) as f:
        theirs = f.read()
    ours = "".join(payloads.new_request_id() for _ in range(10))
    assert len(theirs) == len(ours) == 320 and theirs != ours


def test_the_access_logs_fast_path_writes_what_logging_wrote(monkeypatch: pytest.MonkeyPatch) -> None:
    handler = logs.configure(access_log.log.name, "stdout", safe=False).handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    writer = access_log._Writer(handler)
    monkeypatch.setattr(access_log.log, "handlers", [handler])  # pytest adds its capture handlers
    assert writer.agrees() and writer.usable()
    middleware = access_log.AccessLog()
    scope = {
        "type": "http",
        "method": "GET",
        "raw_path": b"/json/dict",
        "path": "/json/dict",
        "query_string": b"token=secret&x=1",
        "http_version": "1.1",
        "client": ("127.0.0.1", 40000),
    }
    lines = []
    for fast in (writer, None):
        out = io.StringIO()
        monkeypatch.setattr(sys, "stdout", out)
        middleware.writer = fast
        middleware.write(scope, 200, 35, 312.9)
        lines.append(out.getvalue())
    fast_line, logged_line = lines
    assert writer.second != -1  # the fast path wrote the first
    # the same second, else the stamps differ: compare past the time
    assert fast_line.split("] ", 1)[1] == logged_line.split("] ", 1)[1]
    assert fast_line.endswith('127.0.0.1:40000 "GET /json/dict?token=[redacted]&x=1 1.1" 200 35 312us\n')


def test_a_changed_handler_is_written_through_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    handler = logs.configure(access_log.log.name, "stdout", safe=False).handlers[0]
    writer = access_log._Writer(handler)  # type: ignore[arg-type]
    monkeypatch.setattr(access_log.log, "handlers", [handler])  # pytest adds its capture handlers
    assert writer.usable()
    monkeypatch.setattr(access_log.log, "handlers", [handler, logging.NullHandler()])
    assert not writer.usable()
    monkeypatch.setattr(access_log.log, "handlers", [handler])
    monkeypatch.setattr(handler, "formatter", logging.Formatter("%(message)s"))
    assert not writer.usable()
