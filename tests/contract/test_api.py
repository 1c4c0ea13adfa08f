"""Seed 004's routes: the echo ``/api/<user>/<uuid>``, ``exec`` (checks, allow-list) and precedence."""

from __future__ import annotations

import json

import pytest

from .helpers import compact_json

# ------------------------------------------------------------------------------ echo


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_echo_answers_user_and_uuid(svc, method):
    reply = svc.call(method, "/api/alice/097aa543", "viewer")
    assert reply.status == 200
    assert reply.header("Content-Type") == "application/json"
    assert reply.body == compact_json({"user": "alice", "uuid": "097aa543"})


@pytest.mark.parametrize(
    "content_type, body",
    [
        ("application/json", b'{"a": 1}'),
        ("application/json", b"{not json"),
        ("application/json", b"\xff\xfe"),
        ("application/json", b""),
        ("text/plain", b"plain words"),
        ("application/octet-stream", b"\x00\x01"),
        (None, b"whatever"),
    ],
    ids=["json", "bad-json", "not-utf8", "empty-json", "text", "binary", "no-type"],
)
def test_echo_ignores_a_body_it_cannot_read(svc, content_type, body):
    reply = svc.post("/api/bob/a-1_B", body, "viewer", content_type)
    assert reply.status == 200, reply.body[:200]
    assert reply.json() == {"user": "bob", "uuid": "a-1_B"}


def test_echo_decodes_percent_escapes(svc):
    reply = svc.get("/api/a%20b/x%2Dy", role="viewer")
    assert reply.status == 200
    assert reply.json() == {"user": "a b", "uuid": "x-y"}


# ------------------------------------------------------------------------ precedence


def test_post_api_exec_is_the_exec_route(svc):
    reply = svc.exec("prec1", "python3 quick.py")
    assert reply.status == 200
    assert reply.json() == {"mode": "exec", "status": "accepted"}
    final, outputs = svc.wait_finished("prec1")
    assert final == {"mode": "poll", "status": "finished", "returncode": 0, "output": final["output"]}
    assert outputs == ["quick"]


def test_post_api_exec_needs_admin_not_viewer(svc):
    # as the echo it would be a viewer route; as exec it is admin's
    reply = svc.exec("prec2", "python3 count.py", role="viewer")
    assert reply.status == 403
    assert reply.json()["error"] == "forbidden"


def test_get_api_exec_is_the_echo(svc):
    reply = svc.get("/api/exec/x", role="viewer")
    assert reply.status == 200
    assert reply.json() == {"user": "exec", "uuid": "x"}


def test_get_api_poll_is_the_poll_route(svc):
    reply = svc.get("/api/poll/x", role="admin")
    assert reply.status == 404
    assert reply.json()["error"] == "unknown_job"
    # and a viewer cannot reach it as the echo
    assert svc.get("/api/poll/x", role="viewer").status == 403


# ----------------------------------------------------------------- exec: the request


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonx",
        "text/json",
    ],
)
def test_exec_needs_a_json_content_type(svc, content_type):
    reply = svc.post("/api/exec/ct1", json.dumps({"cmd": "python3 count.py"}).encode(), "admin", content_type)
    assert reply.status == 415
    body = reply.json()
    assert set(body) == {"error", "message"}
    assert body["error"] == "unsupported_media_type"
    assert svc.poll("ct1").status == 404, "nothing started"


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "application/JSON", "application/vnd.api+json"]
)
def test_exec_accepts_json_content_types(svc, content_type):
    reply = svc.post("/api/exec/ct2", json.dumps({"cmd": "python3 quick.py"}).encode(), "admin", content_type)
    assert reply.status == 200, reply.body
    assert reply.json() == {"mode": "exec", "status": "accepted"}
    final, _ = svc.wait_finished("ct2")
    assert final["returncode"] == 0


@pytest.mark.parametrize(
    "body",
    [b"{nope", b'{"cmd": "uptime"', b"\xff", b"{'cmd': 'uptime'}"],
    ids=["garbage", "truncated", "not-utf8", "quotes"],
)
def test_exec_bad_json_is_400_invalid_json(svc, body):
    reply = svc.post("/api/exec/bj", body, "admin", "application/json")
    assert reply.status == 400
    assert reply.json()["error"] == "invalid_json"
    assert svc.poll("bj").status == 404


def test_exec_empty_body_is_400(svc):
    reply = svc.post("/api/exec/eb", b"", "admin", "application/json")
    assert reply.status == 400
    assert reply.json()["error"] == "invalid_json"


@pytest.mark.parametrize("body", [{}, {"command": "uptime"}, {"CMD": "uptime"}])
def test_exec_missing_cmd_is_400_missing_field(svc, body):
    reply = svc.post_json("/api/exec/mc", body, "admin")
    assert reply.status == 400
    answer = reply.json()
    assert set(answer) == {"error", "message"}
    assert answer["error"] == "missing_field"
    assert "cmd" in answer["message"]


@pytest.mark.parametrize("body", [["uptime"], "uptime", 42, None, {"cmd": ["uptime"]}, {"cmd": 1}, {"cmd": None}])
def test_exec_body_of_the_wrong_shape_is_400(svc, body):
    reply = svc.post_json("/api/exec/ws", body, "admin")
    assert reply.status == 400
    assert reply.json()["error"] in ("bad_request", "missing_field")
    assert svc.poll("ws").status == 404


# --------------------------------------------------------------- exec: the allow-list

REJECTED = [
    "python3 count.py; rm -rf /",
    "python3 count.py ; rm -rf /",
    "python3 count.py;",
    "python3 count.py | cat",
    "python3 count.py|cat",
    "python3 $(echo count.py)",
    "python3 count.py $(touch pwned)",
    "python3 count.py && uptime",
    "uptime && python3 count.py",
    "python3 count.py || uptime",
    "python3 `echo count.py`",
    "python3 count.py > pwned",
    "python3 count.py >> pwned",
    "python3 count.py < /etc/passwd",
    "python3 count.py 2>&1",
    "python3 count.py &",
    "python3 count.py\nuptime",
    "uptime; touch pwned",
    "uptime extra",
    "df",
    "df -h /",
    "df -h -a",
    "free",
    "free -m -h",
    "python3",
    "python3 count.py extra",
    "python3 -c 'print(1)'",
    "python3 -m http.server",
    "python3 ../count.py",
    "python3 ../../etc/passwd.py",
    "python3 /tmp/count.py",
    "python3 scripts/count.py",
    "python3 ./count.py",
    "python3 .hidden.py",
    "python3 count.sh",
    "/usr/bin/python3 count.py",
    "python count.py",
    "sh -c uptime",
    "bash -c 'python3 count.py'",
    "rm -rf /",
    "touch pwned",
    "UPTIME",
    " ",
    "",
    "python3 'count.py",
    'python3 "count.py',
]


@pytest.mark.parametrize("cmd", REJECTED)
def test_commands_off_the_allow_list_are_rejected(svc, cmd):
    reply = svc.exec("rej", cmd)
    assert reply.status == 403, (cmd, reply.body)
    body = reply.json()
    assert set(body) == {"error", "message", "mode", "status"}
    assert body["error"] == "command_rejected"
    assert body["mode"] == "exec"
    assert body["status"] == "rejected"
    assert isinstance(body["message"], str) and body["message"]
    # nothing ran: no job under that id, nothing written by a would-be shell
    assert svc.poll("rej").status == 404
    assert not (svc.scripts / "pwned").exists()


@pytest.mark.parametrize("cmd", ["uptime", "df -h", "free -m"])
def test_default_allow_list(svc, cmd):
    reply = svc.exec("default", cmd)
    assert reply.status == 200
    assert reply.json() == {"mode": "exec", "status": "accepted"}
    final, _ = svc.wait_finished("default")
    assert final["status"] == "finished"
    assert isinstance(final["returncode"], int)


def test_shell_metacharacters_stay_plain_arguments_with_a_permissive_entry(make_service):
    # even an entry that accepts any argument never hands the line to a shell (without the
    # entry, an extra argument is rejected: see REJECTED)
    svc = make_service(
        extra_toml="""
        [[commands]]
        program = "python3"
        args = ["quick.py", ".*"]
        """
    )
    for n, arg in enumerate(
        ["'; touch pwned'", "'$(touch pwned)'", "'`touch pwned`'", "'> pwned'", "'&& touch pwned'"]
    ):
        reply = svc.exec(f"meta{n}", f"python3 quick.py {arg}")
        assert reply.status == 200, reply.body
        final, _ = svc.wait_finished(f"meta{n}")
        assert final["returncode"] == 0
    assert not (svc.scripts / "pwned").exists()


# ------------------------------------------------------------------------- job ids


@pytest.mark.parametrize(
    "job_id",
    ["x" * 65, "a.b", "a!b", "a~b", "a%20b", "%C3%A9", "a+b", "a@b", "a:b", "a%2Cb", "%7E"],
)
@pytest.mark.parametrize("route", ["exec", "poll"])
def test_invalid_job_id_is_400(svc, job_id, route):
    if route == "exec":
        reply = svc.post_json(f"/api/exec/{job_id}", {"cmd": "python3 count.py"}, "admin")
    else:
        reply = svc.poll(job_id)
    assert reply.status == 400, (job_id, reply.status, reply.body)
    body = reply.json()
    assert set(body) == {"error", "message"}
    assert body["error"] == "invalid_job_id"


@pytest.mark.parametrize("job_id", ["x" * 64, "097aa543", "A-Z_a-z_0-9", "-", "_"])
def test_valid_job_ids(svc, job_id):
    # a valid id gets past the id check (here to the allow-list)
    reply = svc.exec(job_id, "not-allowed")
    assert reply.status == 403
    assert reply.json()["error"] == "command_rejected"
    assert svc.poll(job_id).json()["error"] == "unknown_job"


@pytest.mark.parametrize("method, path", [("POST", "/api/exec/"), ("GET", "/api/poll/"), ("POST", "/api/poll/")])
def test_empty_job_id_is_routed_as_404(svc, method, path):
    headers = {"Content-Type": "application/json"} if method == "POST" else {}
    reply = svc.call(method, path, "admin", headers, b'{"cmd": "uptime"}' if method == "POST" else None)
    assert reply.status == 404
    assert reply.json()["error"] == "not_found"


def test_job_id_with_a_slash_is_not_the_exec_route(svc):
    reply = svc.exec("a%2Fb", "python3 count.py")
    assert reply.status == 404
    assert svc.poll("a").status == 404
