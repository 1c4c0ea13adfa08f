"""Issue 11, item 8: JSON nested too deep is a 400 ``invalid_json`` in both apps, never a 500.

``json.loads`` of a body nested 100,000 deep raised ``RecursionError``: a 500 and a traceback on
``POST /data/``, ``/``, ``/ingest`` and ``/api/exec``; ``/api/<user>/<uuid>`` answered 200 in the
port and 500 in the Flask version. One rule in ``hostpulse.jsondepth`` now refuses a body nesting
deeper than ``MAX_DEPTH`` wherever a route decodes JSON, whatever the server's stack depth
(``RecursionError`` depends on it, the rule does not). Both apps run under their real servers:
the Flask version on gunicorn, the port on Hypercorn.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent.live import ADMIN, AGENT, VIEWER, Service
from tests.faults.wire import both_apps
from tests.support import http

DEEP_OPEN = b"[" * 100_000  # never closed: the decoder recurses first
DEEP_LIST = b"[" * 100_000 + b"]" * 100_000  # valid JSON, 100,000 deep
DEEP_OBJECT = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
# /api/exec reads at most 64 KiB (16 times max_command_length): 10,000 deep fits, and is as deep
SMALL = {
    DEEP_OPEN: b"[" * 10_000,
    DEEP_LIST: b"[" * 10_000 + b"]" * 10_000,
    DEEP_OBJECT: b'{"a":' * 9_000 + b"1" + b"}" * 9_000,
}
JSON = {"Content-Type": "application/json"}
MAX_DEPTH = 512  # hostpulse.jsondepth.MAX_DEPTH, in the README's configuration section


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Service]]:
    with both_apps(tmp_path_factory.mktemp("deep-json")) as apps:
        yield apps


def call(
    service: Service, path: str, token: str, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, str, bytes]:
    status, got, reply = http(
        "POST", service.url + path, body=body, headers={"Authorization": f"Bearer {token}", **(headers or {})}
    )
    return status, got.get("content-type", ""), reply


# (path, token, extra headers): every route that reads a JSON body, in both apps
REFUSING = [
    ("/data/", AGENT, {}),
    ("/data/", AGENT, JSON),
    ("/", AGENT, {}),
    ("/api/exec/deep-1", ADMIN, JSON),
]


@pytest.mark.parametrize("body", [DEEP_OPEN, DEEP_LIST, DEEP_OBJECT], ids=["open", "list", "object"])
@pytest.mark.parametrize("path,token,headers", REFUSING, ids=[f"{p} {h}" for p, _, h in REFUSING])
def test_deep_json_is_invalid_json_in_both_apps(
    servers: dict[str, Service], path: str, token: str, headers: dict[str, str], body: bytes
) -> None:
    if path.startswith("/api/exec/"):
        body = SMALL[body]
    answers = {name: call(service, path, token, body, headers) for name, service in servers.items()}
    status, content_type, reply = answers["port"]
    assert (status, content_type) == (400, "application/json"), answers["port"]
    assert json.loads(reply)["error"] == "invalid_json"
    assert str(MAX_DEPTH) in json.loads(reply)["message"]
    assert answers["flask"] == answers["port"]


@pytest.mark.parametrize("body", [DEEP_OPEN, DEEP_LIST], ids=["open", "list"])
def test_deep_json_is_ignored_by_the_silent_echo_in_both_apps(servers: dict[str, Service], body: bytes) -> None:
    """``/api/<user>/<uuid>`` reads its body with ``get_json(silent=True)`` (SPEC): ignored, 200."""
    answers = {name: call(service, "/api/chad/097aa543", VIEWER, body, JSON) for name, service in servers.items()}
    assert answers["flask"] == answers["port"] == (200, "application/json", b'{"user":"chad","uuid":"097aa543"}\n')


@pytest.mark.parametrize("body", [DEEP_OPEN, DEEP_LIST], ids=["open", "list"])
def test_deep_batch_is_invalid_json_on_ingest(servers: dict[str, Service], body: bytes) -> None:
    status, _, reply = call(servers["port"], "/ingest", AGENT, body, JSON)
    assert status == 400
    assert json.loads(reply)["error"] == "invalid_json"
    assert json.loads(reply)["seq"] is None


def test_the_limit_is_the_same_in_both_apps(servers: dict[str, Service]) -> None:
    """At the limit a body decodes; one level more is refused, under both servers' stacks."""
    for service in servers.values():
        assert call(service, "/data/", AGENT, nested(MAX_DEPTH))[:2] == (200, "application/json")
        assert json.loads(call(service, "/data/", AGENT, nested(MAX_DEPTH))[2])["items"] == 1
        assert call(service, "/data/", AGENT, nested(MAX_DEPTH + 1))[0] == 400
        # json.loads alone gets past MAX_DEPTH; the rule, not the recursion limit, refuses these
        assert call(service, "/data/", AGENT, nested(MAX_DEPTH + 100))[0] == 400
        wide = b"[" + b",".join([nested(MAX_DEPTH - 1)] * 2000) + b"]"  # deep and wide: still allowed
        assert call(service, "/data/", AGENT, wide)[0] == 200
        reply = call(service, "/", AGENT, b"[" + nested(MAX_DEPTH - 1) + b"]")
        assert reply[0] == 200 and reply[2].startswith(b"request: [[")


def test_no_traceback_in_either_log(servers: dict[str, Service]) -> None:
    for service in servers.values():
        call(service, "/data/", AGENT, DEEP_LIST)
        call(service, "/", AGENT, DEEP_OPEN)
        call(service, "/api/chad/x", VIEWER, DEEP_OPEN, JSON)
    for name, service in servers.items():
        text = Path(service.log).read_text(errors="replace")
        assert "RecursionError" not in text and "Traceback" not in text, (name, text[-3000:])


def test_the_rule_has_one_home_and_is_documented() -> None:
    from hostpulse import jsondepth

    assert jsondepth.MAX_DEPTH == MAX_DEPTH
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert f"nested more than {MAX_DEPTH} deep" in readme
