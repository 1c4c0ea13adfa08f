"""Limits from configuration: 413 at the edge, with Content-Length or chunked, leaving nothing behind."""

from __future__ import annotations

import json

import pytest

from .helpers import chunks, json_of_size, multipart

LIMIT = 1024


def assert_413(reply):
    assert reply.status == 413, (reply.status, reply.body[:200])
    assert reply.header("Content-Type") == "application/json"
    body = reply.json()
    assert set(body) == {"error", "message"}
    assert body["error"] == "payload_too_large"


def send(body: bytes, chunked: bool) -> bytes | list[bytes]:
    return chunks(body, 100) if chunked else body


@pytest.fixture
def small(make_service):
    return make_service(limits={"max_content_length": LIMIT})


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("size", [LIMIT - 1, LIMIT, LIMIT + 1], ids=["limit-1", "limit", "limit+1"])
def test_post_data_at_the_edge(small, size, chunked):
    body = json_of_size(size)
    reply = small.post("/data/", send(body, chunked), "agent", "application/json")
    if size <= LIMIT:
        assert reply.status == 200, reply.body[:200]
        assert reply.json() == {"status": "success", "bytes": size, "items": 1}
    else:
        assert_413(reply)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("size", [LIMIT, LIMIT + 1], ids=["limit", "limit+1"])
def test_legacy_post_at_the_edge(small, size, chunked):
    body = b"[" + b"1," * ((size - 3) // 2) + b"1]"
    body = body + b" " * (size - len(body))
    assert len(body) == size and isinstance(json.loads(body), list)
    reply = small.post("/", send(body, chunked), "agent", "application/json")
    if size <= LIMIT:
        assert reply.status == 200
        assert reply.body == b"request: " + body
        assert len(small.store().legacy_posts()) == 1
    else:
        assert_413(reply)
        assert small.store().legacy_posts() == [], "a refused body is not kept"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("size", [LIMIT, LIMIT + 1], ids=["limit", "limit+1"])
def test_exec_body_at_the_edge(small, size, chunked):
    cmd = b'{"cmd": "rm -rf /", "pad": "'
    body = cmd + b"x" * (size - len(cmd) - 2) + b'"}'
    assert len(body) == size
    reply = small.post("/api/exec/edge", send(body, chunked), "admin", "application/json")
    if size <= LIMIT:
        # read whole and checked: a command off the allow-list
        assert reply.status == 403
        assert reply.json()["error"] == "command_rejected"
    else:
        assert_413(reply)
    assert small.poll("edge").status == 404


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_echo_json_over_the_limit_is_413(small, chunked):
    reply = small.post("/api/someone/abc", send(json_of_size(LIMIT + 1), chunked), "viewer", "application/json")
    assert_413(reply)
    ok = small.post("/api/someone/abc", send(json_of_size(LIMIT), chunked), "viewer", "application/json")
    assert ok.status == 200


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_urlencoded_demo_over_the_limit_is_413(small, chunked):
    body = b"id=1&name=" + b"x" * LIMIT
    reply = small.post("/demo", send(body, chunked), "admin", "application/x-www-form-urlencoded")
    assert_413(reply)


@pytest.mark.parametrize("path, role", [("/data/", "agent"), ("/", "agent"), ("/api/exec/far", "admin")])
def test_far_over_the_limit_is_413(small, path, role):
    reply = small.post(path, json_of_size(LIMIT * 4), role, "application/json")
    assert_413(reply)


def test_upload_is_not_bound_by_max_content_length(make_service):
    svc = make_service(limits={"max_content_length": 256, "max_upload_length": 64 * 1024})
    content = b"u" * 4096
    reply = svc.upload("fits.bin", content)
    assert reply.status == 200, reply.body[:200]
    assert reply.body == content


# ------------------------------------------------------------------------- form limits


def test_form_field_over_max_form_memory_size(make_service):
    svc = make_service(limits={"max_form_memory_size": 1000})
    ok = svc.form(fields=[("id", "1"), ("name", "x" * 100)])
    assert ok.status == 200 and ok.body == b"1"
    for chunked in (None, 256):
        reply = svc.form(fields=[("id", "1"), ("name", "x" * 3000)], chunked=chunked)
        assert_413(reply)
    assert list(svc.uploads.iterdir()) == []


@pytest.mark.parametrize("chunked", [None, 64], ids=["content-length", "chunked"])
def test_more_parts_than_max_form_parts(make_service, chunked):
    svc = make_service(limits={"max_form_parts": 5})
    at_limit = svc.form(fields=[("id", "1")] + [("list", str(i)) for i in range(4)], chunked=chunked)
    assert at_limit.status == 200 and at_limit.body == b"1"
    over = svc.form(fields=[("id", "1")] + [("list", str(i)) for i in range(5)], chunked=chunked)
    assert_413(over)


@pytest.mark.parametrize("chunked", [None, 100], ids=["content-length", "chunked"])
def test_upload_over_max_upload_length_leaves_nothing(make_service, tmp_path, chunked):
    svc = make_service(limits={"max_upload_length": 2000})
    before = sorted(p for p in tmp_path.rglob("*"))
    reply = svc.form(fields=[("id", "1")], files=[("file", "big.bin", b"z" * 6000)], chunked=chunked)
    assert_413(reply)
    assert list(svc.uploads.iterdir()) == [], "no stored file, no .part-* left"
    after = sorted(p for p in tmp_path.rglob("*") if not p.name.startswith(svc.settings.db_path.name))
    assert after == [p for p in before if not p.name.startswith(svc.settings.db_path.name)]
    # a file under the limit still goes through
    fits = svc.form(fields=[("id", "1")], files=[("file", "small.bin", b"s" * 500)], chunked=chunked)
    assert fits.status == 200 and fits.body == b"s" * 500
    assert len(list(svc.uploads.iterdir())) == 1


def test_upload_over_the_limit_in_a_later_part_leaves_nothing(make_service):
    svc = make_service(limits={"max_upload_length": 4000})
    body, content_type = multipart([("id", "1")], [("file", "a.bin", b"a" * 3000), ("other", "b.bin", b"b" * 3000)])
    reply = svc.post("/demo", chunks(body, 512), "admin", content_type)
    assert_413(reply)
    assert list(svc.uploads.iterdir()) == []
