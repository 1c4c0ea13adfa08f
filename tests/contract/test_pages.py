"""Seed 002 and 003 pages: ``/``, ``/usrname``, ``/login``, ``/regist``, ``/json/*``, the current user."""

from __future__ import annotations

import pytest

from hostpulse.testing import ROLE_USERS

from .helpers import compact_json


def test_hello_world(svc):
    reply = svc.get("/")
    assert reply.status == 200
    assert reply.body == b"Hello, World!"
    assert reply.header("Content-Type") == "text/html; charset=utf-8"


def test_hello_world_head_is_get_without_body(svc):
    get, head = svc.get("/"), svc.call("HEAD", "/")
    assert head.status == get.status == 200
    assert head.body == b""
    assert head.header("Content-Type") == get.header("Content-Type")
    assert head.header("Content-Length") == str(len(get.body))


def test_usrname_redirects_to_login_relative(svc):
    reply = svc.get("/usrname")
    assert reply.status == 302
    assert reply.header("Location") == "/login"
    follow = svc.get(reply.header("Location"))
    assert follow.status == 200
    assert follow.body == b"Please login first"


def test_login_page(svc):
    reply = svc.get("/login")
    assert reply.status == 200
    assert reply.body == b"Please login first"
    assert reply.header("Content-Type") == "text/html; charset=utf-8"


def test_regist_is_a_public_placeholder(svc):
    reply = svc.get("/regist")
    assert reply.status == 200
    assert reply.body.strip()
    assert reply.header("Content-Type").startswith("text/html")


def test_json_list_is_auto_json(svc):
    reply = svc.get("/json/list")
    assert reply.status == 200
    assert reply.header("Content-Type") == "application/json"
    assert reply.json() == [1, 2, 3]
    assert reply.body == compact_json([1, 2, 3])


def test_json_dict_is_auto_json_sorted_compact(svc):
    reply = svc.get("/json/dict")
    assert reply.status == 200
    assert reply.header("Content-Type") == "application/json"
    expected = {"hello": "world", "name": "huaiyue"}
    assert reply.json() == expected
    assert reply.body == compact_json(expected)


def test_json_bodies_are_ascii_escaped(svc):
    reply = svc.get("/api/r%C3%A9sum%C3%A9/x", role="viewer")
    assert reply.status == 200
    assert reply.json() == {"user": "résumé", "uuid": "x"}
    assert reply.body == compact_json({"user": "résumé", "uuid": "x"})
    assert reply.body.isascii()


@pytest.mark.parametrize("role", ["viewer", "admin"])
def test_current_user_is_the_tokens_user(svc, role):
    reply = svc.get("/_get_current_user", role=role)
    assert reply.status == 200
    username, email, user_id = ROLE_USERS[role]
    assert reply.json() == {"username": username, "email": email, "id": user_id}
    assert reply.body == compact_json({"username": username, "email": email, "id": user_id})


def test_current_user_needs_a_token(svc):
    reply = svc.get("/_get_current_user")
    assert reply.status == 401
    assert reply.json()["error"] == "unauthorized"


# ----------------------------------------------------------------- legacy POST / (seed 000)


@pytest.mark.parametrize(
    "content_type, body",
    [
        ("application/json", b"[1, 2.5, 3]"),
        ("application/json", b'{"cpu": 12.5}'),
        ("application/octet-stream", b"\x01\x02 raw bytes"),
        (None, b"no content type at all"),
        ("text/plain; charset=utf-8", "r\u00e9sum\u00e9 \u6587\u4ef6".encode()),
    ],
    ids=["json-list", "json-object", "octet-stream", "no-type", "utf8-text"],
)
def test_legacy_post_echoes_the_body_as_text(svc, content_type, body):
    reply = svc.post("/", body, "agent", content_type)
    assert reply.status == 200
    assert reply.header("Content-Type").split(";")[0] == "text/plain"
    assert reply.body == b"request: " + body


def test_legacy_post_chunked(svc):
    body = b"[" + b",".join(str(i).encode() for i in range(500)) + b"]"
    reply = svc.post("/", [body[i : i + 100] for i in range(0, len(body), 100)], "agent", "application/json")
    assert reply.status == 200
    assert reply.body == b"request: " + body
    assert [post["body"] for post in svc.store().legacy_posts()] == [body.decode()]


def test_legacy_post_empty_body(svc):
    reply = svc.post("/", b"", "agent")
    assert reply.status == 200
    assert reply.body == b"request: "
    assert svc.store().legacy_posts() == []


def test_legacy_json_list_is_kept(svc):
    body = b"[12.5, 61.0, 3]"
    assert svc.post("/", body, "agent", "application/json").status == 200
    posts = svc.store().legacy_posts()
    assert len(posts) == 1
    assert posts[0]["username"] == ROLE_USERS["agent"][0]
    assert posts[0]["body"] == body.decode()
    assert isinstance(posts[0]["received"], float) and posts[0]["received"] > 0


def test_legacy_list_is_kept_whatever_the_content_type(svc):
    assert svc.post("/", b"[1]", "agent", "application/octet-stream").status == 200
    assert svc.post("/", b"[2]", "agent", None).status == 200
    assert [post["body"] for post in svc.store().legacy_posts()] == ["[1]", "[2]"]


@pytest.mark.parametrize("body", [b'{"cpu": 1}', b"42", b'"text"', b"[1, 2", b"not json", b"\xff\xfe"])
def test_legacy_non_list_is_not_kept(svc, body):
    reply = svc.post("/", body, "agent", "application/json")
    assert reply.status == 200
    assert reply.body.startswith(b"request: ")
    assert svc.store().legacy_posts() == []


def test_legacy_post_as_admin_is_kept_under_admin(svc):
    assert svc.post("/", b"[1]", "admin", "application/json").status == 200
    assert [post["username"] for post in svc.store().legacy_posts()] == [ROLE_USERS["admin"][0]]


def test_legacy_post_refused_is_not_kept(svc):
    assert svc.post("/", b"[1]", None, "application/json").status == 401
    assert svc.post("/", b"[1]", "viewer", "application/json").status == 403
    assert svc.store().legacy_posts() == []
