"""Issue 11, item 5: one request could stall a worker.

``shlex.split`` of a 1 MB command took 21.7 s on the port's event loop (and held a gunicorn
worker as long); the command is now bounded (``[limits] max_command_length``, 413 above, its
body read up to 16 times that), both apps alike. A 28 MB ``POST /data/`` body containing
``NaN``, which the simdjson fast path declines, was decoded by ``json.loads`` on the loop
(5.8 s): a body the fast path declines is now decoded on the loop only when small, else in
a helper process while the loop serves other requests.

Nothing here asserts a duration: the stall is shown by order (a small request sent while
the big body is being decoded is answered first).
"""

from __future__ import annotations

import json
import select
import socket
import time

import pytest

from tests.agent.live import AGENT
from tests.faults.live_jobs import JobsService
from tests.support import http


def assert_413(status: int, answer: object) -> None:
    assert status == 413, (status, answer)
    assert isinstance(answer, dict) and answer["error"] == "payload_too_large", answer


@pytest.mark.parametrize("flavour", ["quart", "flask"])
def test_a_1_mb_command_is_refused_before_it_is_parsed(services, tmp_path, flavour):
    service = JobsService(tmp_path / flavour, flavour)
    services.append(service)
    service.start()
    status, answer = service.send_whole("POST", "/api/exec/huge", json.dumps({"cmd": "a" * 1_000_000}).encode())
    assert_413(status, answer)
    assert service.request("GET", "/api/poll/huge")[0] == 404, "nothing was started"
    assert "max_command_length" in answer["message"]


@pytest.mark.parametrize("flavour", ["quart", "flask"])
def test_max_command_length_at_its_edge(services, tmp_path, flavour):
    service = JobsService(tmp_path / flavour, flavour, limits={"max_command_length": 64})
    services.append(service)
    service.start()

    def exec_(cmd: str, **extra: str) -> tuple[int, object]:
        body = json.dumps({"cmd": cmd, **extra}).encode()
        return service.request("POST", "/api/exec/edge", body, content_type="application/json")

    status, answer = exec_("x" * 64)  # read and checked: not on the allow-list
    assert (status, answer["error"]) == (403, "command_rejected"), answer
    assert_413(*exec_("x" * 65))
    # the body itself is read up to 16 times the limit: beyond, 413 before it is decoded
    assert exec_("uptime", pad="p" * (16 * 64 - 40))[0] == 200
    assert service.wait_finished("edge")[0]["returncode"] == 0
    assert_413(*exec_("uptime", pad="p" * (16 * 64)))


def nan_body(items: int) -> bytes:
    """Valid for ``json.loads`` (NaN), declined by simdjson: a list of small objects."""
    return b"[" + b",".join([b'{"a":1,"b":[NaN]}'] * items) + b"]"


def test_a_large_body_simdjson_declines_is_decoded_off_the_loop(services, tmp_path):
    service = JobsService(tmp_path / "quart", "quart")
    services.append(service)
    service.start()
    body = nan_body(1_600_000)  # 28.8 MB: json.loads takes seconds here
    head = (
        f"POST /data/ HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {AGENT}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    big = socket.create_connection(("127.0.0.1", service.port), timeout=120)
    try:
        big.sendall(head + body)
        time.sleep(0.5)  # the body is in; its decode has begun
        status, _, reply = http("GET", service.url + "/json/dict", timeout=120)
        assert (status, reply) == (200, b'{"hello":"world","name":"huaiyue"}\n')
        readable, _, _ = select.select([big], [], [], 0)
        assert not readable, "the small request waited for the big body's decode: the loop was held"
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.endswith(b"}\n"):
            chunk = big.recv(65536)
            if not chunk:
                break
            answer += chunk
    finally:
        big.close()
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1]) == {"status": "success", "bytes": len(body), "items": 1_600_000}


DECLINED = [  # simdjson declines each; json.loads decides, on the loop when small, else aside
    (b'[1, 2, NaN, {"a": Infinity}]', 200),
    (b'{"a": 1, "a": 2, "b": [NaN]}', 200),
    (b"[NaN, 1" + b" " * 70_000, 400),
    (b"[NaN, " + b"1, " * 40_000 + b"nope]", 400),
    (b'{"k": [NaN], "n": ' + b"9" * 5000 + b"}" + b" " * 70_000, 400),
]


def test_the_declined_bodies_answer_as_json_loads_would(services, tmp_path):
    """Small or large (decoded aside), valid or not: the port answers as the Flask version."""
    answers: dict[str, list[tuple[int, object]]] = {}
    for flavour in ("quart", "flask"):
        service = JobsService(tmp_path / flavour, flavour)
        services.append(service)
        service.start()
        answers[flavour] = []
        for body, _ in DECLINED:
            status, _, reply = http(
                "POST",
                service.url + "/data/",
                body=body,
                headers={"Authorization": f"Bearer {AGENT}", "Content-Type": "application/json"},
            )
            answers[flavour].append((status, json.loads(reply)))
        service.stop()
    assert answers["quart"] == answers["flask"]
    assert [status for status, _ in answers["quart"]] == [status for _, status in DECLINED], answers["quart"]
