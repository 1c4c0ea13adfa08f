"""Seed 002's ``/demo``: the query string on GET, ``request.values`` semantics on POST."""

from __future__ import annotations

import pytest

from .helpers import compact_json


def test_get_demo_reads_the_query_string(svc):
    reply = svc.get("/demo?id=7&name=tiger&list=a&list=b&list=c", role="viewer")
    assert reply.status == 200
    assert reply.header("Content-Type") == "application/json"
    expected = {"id": "7", "name": "tiger", "list": ["a", "b", "c"]}
    assert reply.json() == expected
    assert reply.body == compact_json(expected)


def test_get_demo_without_query(svc):
    reply = svc.get("/demo", role="viewer")
    assert reply.status == 200
    assert reply.json() == {"id": None, "name": None, "list": []}


def test_get_demo_decodes_percent_escapes(svc):
    reply = svc.get("/demo?id=1&name=r%C3%A9sum%C3%A9&list=a%26b&list=%20x&list=", role="viewer")
    assert reply.status == 200
    assert reply.json() == {"id": "1", "name": "r\u00e9sum\u00e9", "list": ["a&b", " x", ""]}


def test_get_demo_first_value_wins_for_single_fields(svc):
    reply = svc.get("/demo?id=1&id=2&name=a&name=b", role="viewer")
    assert reply.json() == {"id": "1", "name": "a", "list": []}


def test_post_demo_answers_the_id_as_text(svc):
    reply = svc.form(fields=[("id", "42"), ("name", "tiger")])
    assert reply.status == 200
    assert reply.body == b"42"
    assert reply.header("Content-Type").startswith("text/")


def test_post_demo_query_string_comes_before_form(svc):
    reply = svc.form("/demo?id=from-query", fields=[("id", "from-form")])
    assert reply.status == 200
    assert reply.body == b"from-query"


def test_post_demo_form_is_used_when_query_has_no_id(svc):
    reply = svc.form("/demo?name=x", fields=[("id", "from-form")])
    assert reply.status == 200
    assert reply.body == b"from-form"


def test_post_demo_id_from_query_alone(svc):
    reply = svc.post("/demo?id=only-query", b"", "admin")
    assert reply.status == 200
    assert reply.body == b"only-query"


def test_post_demo_repeated_list_fields(svc):
    reply = svc.form(fields=[("id", "9"), ("list", "a"), ("list", "b"), ("list", "c")])
    assert reply.status == 200
    assert reply.body == b"9"


def test_post_demo_urlencoded_form(svc):
    reply = svc.post("/demo", b"id=5&name=n&list=a&list=b", "admin", "application/x-www-form-urlencoded")
    assert reply.status == 200
    assert reply.body == b"5"


def test_post_demo_unicode_id(svc):
    reply = svc.form(fields=[("id", "r\u00e9sum\u00e9")])
    assert reply.status == 200
    assert reply.body == "r\u00e9sum\u00e9".encode()


@pytest.mark.parametrize(
    "send",
    [
        pytest.param(lambda s: s.form(fields=[("name", "tiger"), ("list", "a")]), id="multipart"),
        pytest.param(
            lambda s: s.post("/demo", b"name=tiger", "admin", "application/x-www-form-urlencoded"), id="urlencoded"
        ),
        pytest.param(lambda s: s.post("/demo", b"", "admin"), id="empty"),
        pytest.param(lambda s: s.form("/demo?name=x", fields=[]), id="empty-multipart"),
    ],
)
def test_post_demo_missing_id_is_400(svc, send):
    reply = send(svc)
    assert reply.status == 400
    assert reply.header("Content-Type") == "application/json"
    body = reply.json()
    assert set(body) == {"error", "message"}
    assert body["error"] == "missing_field"
    assert "id" in body["message"]


def test_post_demo_without_file_writes_nothing(svc):
    before = sorted(svc.uploads.iterdir())
    assert svc.form(fields=[("id", "1")]).status == 200
    assert sorted(svc.uploads.iterdir()) == before
