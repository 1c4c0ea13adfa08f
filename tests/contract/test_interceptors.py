"""``after_request``: ``X-Request-ID`` (echo a valid one, else a new one) and ``X-Response-Time``."""

from __future__ import annotations

import math
import re

import pytest

from .helpers import json_of_size

# What makes a request id acceptable is not spelled out beyond "valid"; these are
# unquestionably valid (a UUID, a hex id, the usual tracing characters) ...
VALID_IDS = [
    "3f2c6c1e-8f0b-4a8e-9a57-3a7b1c2d4e5f",
    "0123456789abcdef0123456789abcdef",
    "req-42",
    "a",
]
# ... and these are unquestionably not (too long, spaces, quotes, CR/LF, non-ASCII, empty).
INVALID_IDS = [
    "x" * 1000,
    "has space",
    'quote"d',
    "semi;colon",
    "<script>",
    "caf\u00e9",
    "",
]


def assert_response_time(reply):
    value = reply.header("X-Response-Time")
    assert value is not None
    number = float(value)
    assert math.isfinite(number) and number >= 0


def fresh_id(reply):
    value = reply.header("X-Request-ID")
    assert value, "X-Request-ID missing"
    assert re.fullmatch(r"[\x21-\x7e]{1,128}", value), value
    return value


@pytest.mark.parametrize("incoming", VALID_IDS)
def test_valid_request_id_is_echoed(svc, incoming):
    reply = svc.get("/", headers={"X-Request-ID": incoming})
    assert reply.status == 200
    assert reply.header("X-Request-ID") == incoming


@pytest.mark.parametrize("incoming", INVALID_IDS, ids=lambda v: repr(v[:20]))
def test_invalid_request_id_is_replaced(svc, incoming):
    reply = svc.get("/", headers={"X-Request-ID": incoming})
    assert reply.status == 200
    assert fresh_id(reply) != incoming


def test_request_id_is_generated_when_absent_and_unique(svc):
    ids = {fresh_id(svc.get("/")) for _ in range(5)}
    assert len(ids) == 5


def test_one_request_id_per_response(svc):
    reply = svc.get("/", headers={"X-Request-ID": "abc-1"})
    assert reply.header_all("X-Request-ID") == ["abc-1"]
    assert len(reply.header_all("X-Response-Time")) == 1


def test_response_time_is_a_number(svc):
    assert_response_time(svc.get("/"))
    assert_response_time(svc.get("/data/", role="viewer"))


ERRORS = [
    pytest.param("GET", "/nope", None, None, None, 404, id="404"),
    pytest.param("DELETE", "/data/", None, None, None, 405, id="405"),
    pytest.param("GET", "/data/", None, None, None, 401, id="401"),
    pytest.param("GET", "/data/", "agent", None, None, 403, id="403"),
    pytest.param("POST", "/data/", "agent", "application/json", b"{nope", 400, id="400"),
    pytest.param("POST", "/api/exec/j", "admin", "text/plain", b"{}", 415, id="415"),
    pytest.param("POST", "/api/exec/j", "admin", "application/json", b'{"cmd": "rm -rf /"}', 403, id="403-rejected"),
    pytest.param("GET", "/api/poll/nothing-here", "admin", None, None, 404, id="404-unknown-job"),
]


@pytest.mark.parametrize("method, path, role, content_type, body, status", ERRORS)
def test_errors_carry_request_id_and_response_time(svc, method, path, role, content_type, body, status):
    headers = {"Content-Type": content_type} if content_type else {}
    reply = svc.call(method, path, role, headers, body)
    assert reply.status == status
    assert_response_time(reply)
    fresh_id(reply)
    echoed = svc.call(method, path, role, {**headers, "X-Request-ID": "err-trace-1"}, body)
    assert echoed.status == status
    assert echoed.header("X-Request-ID") == "err-trace-1"
    assert_response_time(echoed)


def test_413_carries_request_id(make_service):
    svc = make_service(limits={"max_content_length": 64})
    reply = svc.post("/data/", json_of_size(65), "agent", "application/json", headers={"X-Request-ID": "big-1"})
    assert reply.status == 413
    assert reply.header("X-Request-ID") == "big-1"
    assert_response_time(reply)


def test_request_id_on_redirect_and_head(svc):
    assert svc.get("/usrname", headers={"X-Request-ID": "r-1"}).header("X-Request-ID") == "r-1"
    assert svc.call("HEAD", "/", headers={"X-Request-ID": "h-1"}).header("X-Request-ID") == "h-1"
