"""Seed 001: ``GET /data/`` (1,000 entries, encoded once) and ``POST /data/`` (the raw body, unpacked)."""

from __future__ import annotations

import json

import pytest

from .helpers import compact_json

SEED_ENTRIES = 100_000


def seed_payload() -> bytes:
    """Seed 001's client payload: ``{i: {"name": "tigerrose"}}`` for 100,000 entries."""
    return json.dumps({i: {"name": "tigerrose"} for i in range(SEED_ENTRIES)}).encode()


def test_get_data_has_1000_entries_encoded_once(svc):
    reply = svc.get("/data/", role="viewer")
    assert reply.status == 200
    assert reply.header("Content-Type") == "application/json"
    document = reply.json()
    assert isinstance(document, dict), "the document is encoded once, not a JSON string"
    assert set(document) == {"data"}
    data = document["data"]
    assert set(data) == {str(i) for i in range(1000)}
    assert all(entry == {"name": "tigerrose", "tag": "cool"} for entry in data.values())
    # Flask 3's provider output of the seed's document, whose keys are ints (sorted as ints)
    seed_document = {"data": {i: {"name": "tigerrose", "tag": "cool"} for i in range(1000)}}
    assert reply.body == compact_json(seed_document)


def test_head_data_has_no_body(svc):
    get = svc.get("/data/", role="viewer")
    head = svc.call("HEAD", "/data/", "viewer")
    assert head.status == 200 and head.body == b""
    assert head.header("Content-Length") == str(len(get.body))


def test_post_data_seed_payload(svc):
    payload = seed_payload()
    reply = svc.post("/data/", payload, "agent", "application/json")
    assert reply.status == 200
    assert reply.json() == {"status": "success", "bytes": len(payload), "items": SEED_ENTRIES}


def test_post_data_seed_payload_chunked(svc):
    payload = seed_payload()
    pieces = [payload[i : i + 65536] for i in range(0, len(payload), 65536)]
    reply = svc.post("/data/", pieces, "agent", "application/json")
    assert reply.status == 200
    assert reply.json() == {"status": "success", "bytes": len(payload), "items": SEED_ENTRIES}


def test_post_data_list_counts_entries(svc):
    payload = json.dumps([{"name": "a"}, {"name": "b"}, 3]).encode()
    reply = svc.post("/data/", payload, "agent", "application/json")
    assert reply.status == 200
    assert reply.json() == {"status": "success", "bytes": len(payload), "items": 3}


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/octet-stream", "application/x-www-form-urlencoded"]
)
def test_post_data_reads_the_raw_body_whatever_its_type(svc, content_type):
    payload = b'{"a": 1, "b": 2}'
    reply = svc.post("/data/", payload, "agent", content_type)
    assert reply.status == 200
    assert reply.json() == {"status": "success", "bytes": len(payload), "items": 2}


def test_post_data_counts_bytes_not_characters(svc):
    payload = json.dumps({"k": "r\u00e9sum\u00e9 \u6587\u4ef6"}, ensure_ascii=False).encode("utf-8")
    reply = svc.post("/data/", payload, "agent", "application/json")
    assert reply.status == 200
    assert reply.json()["bytes"] == len(payload) != len(payload.decode())


@pytest.mark.parametrize(
    "body",
    [b"{nope", b'{"a": 1', b"[1, 2,]", b"\xff\xfe\x00", b"{'a': 1}", b"NaNa"],
    ids=["garbage", "truncated", "trailing-comma", "not-utf8", "single-quotes", "bad-literal"],
)
def test_post_data_bad_json_is_400_invalid_json(svc, body):
    reply = svc.post("/data/", body, "agent", "application/json")
    assert reply.status == 400
    assert reply.header("Content-Type") == "application/json"
    answer = reply.json()
    assert set(answer) == {"error", "message"}
    assert answer["error"] == "invalid_json"


@pytest.mark.parametrize("body", [b"", b"   \n"], ids=["empty", "blank"])
def test_post_data_empty_body_is_400(svc, body):
    reply = svc.post("/data/", body, "agent", "application/json")
    assert reply.status == 400
    assert reply.json()["error"] == "invalid_json"


@pytest.mark.parametrize("body", [b"42", b'"text"', b"true", b"null", b"1.5"])
def test_post_data_json_scalar_is_400(svc, body):
    reply = svc.post("/data/", body, "agent", "application/json")
    assert reply.status == 400
    answer = reply.json()
    assert set(answer) == {"error", "message"}
    # valid JSON, so not invalid_json: the status's own code
    assert answer["error"] == "bad_request"
