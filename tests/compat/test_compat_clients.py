"""The in-process clients drive an app as a server would: a real WSGI environ, a real ASGI
scope on one persistent loop with the lifespan, HEAD bodies dropped, chunked bodies."""

from __future__ import annotations

import asyncio

from flask import Flask
from quart import Quart

from compat.clients import ASGIClient, Reply, WSGIClient, client_for


def test_reply_header_is_case_insensitive_and_json_decodes():
    reply = Reply(200, [("Content-Type", "application/json"), ("X-A", "1"), ("x-a", "2")], b'{"a": 1}')
    assert reply.header("content-type") == "application/json"
    assert reply.header("X-a") == "1"
    assert reply.header_all("X-A") == ["1", "2"]
    assert reply.header("missing") is None
    assert reply.json() == {"a": 1}


def test_client_for_picks_the_protocol_of_the_app():
    with client_for(Flask("f")) as wsgi:
        assert isinstance(wsgi, WSGIClient)
    with client_for(Quart("q")) as asgi:
        assert isinstance(asgi, ASGIClient)


def _recording_wsgi_app(seen: dict):
    class Body:
        def __init__(self, chunks):
            self.chunks = chunks
            self.closed = False

        def __iter__(self):
            return iter(self.chunks)

        def close(self):
            seen["closed"] = True

    def app(environ, start_response):
        seen["environ"] = dict(environ)
        seen["input"] = environ["wsgi.input"].read()
        start_response("201 Created", [("X-Mixed-Case", "v"), ("Content-Type", "text/plain")])
        return Body([b"he", b"", b"llo"])

    return app


def test_wsgi_environ_is_what_a_server_builds():
    seen: dict = {}
    client = WSGIClient(_recording_wsgi_app(seen))
    reply = client.request(
        "POST",
        "/a%20b/caf%C3%A9?x=1&y=%C3%A9",
        headers=[("X-Dup", "1"), ("X-Dup", "2"), ("Content-Type", "text/plain")],
        body=b"payload",
    )
    env = seen["environ"]
    assert reply == Reply(201, [("X-Mixed-Case", "v"), ("Content-Type", "text/plain")], b"hello")
    assert seen["closed"] is True
    assert env["REQUEST_METHOD"] == "POST"
    assert env["PATH_INFO"] == "/a b/caf\u00c3\u00a9"  # bytes as latin-1 (PEP 3333)
    assert env["QUERY_STRING"] == "x=1&y=%C3%A9"
    assert env["SERVER_NAME"] == "127.0.0.1" and env["HTTP_HOST"] == "localhost"
    assert env["CONTENT_LENGTH"] == "7" and env["CONTENT_TYPE"] == "text/plain"
    assert env["HTTP_X_DUP"] == "1,2"  # as gunicorn joins repeated headers
    assert env["wsgi.input_terminated"] is True
    assert seen["input"] == b"payload"


def test_wsgi_chunked_body_has_no_content_length():
    seen: dict = {}
    client = WSGIClient(_recording_wsgi_app(seen))
    client.request("POST", "/", body=[b"ab", b"cd", b"e"])
    assert "CONTENT_LENGTH" not in seen["environ"]
    assert seen["environ"]["wsgi.input_terminated"] is True
    assert seen["input"] == b"abcde"


def test_wsgi_head_body_is_dropped_and_counted():
    def app(environ, start_response):
        start_response("200 OK", [("Content-Length", "5")])
        return [b"hello"]

    reply = WSGIClient(app).request("HEAD", "/")
    assert reply.body == b"" and reply.app_head_body == 5
    assert reply.header("content-length") == "5"


class _RecordingASGI:
    """A raw ASGI app: records lifespan events and scopes; starts a task that outlives a request."""

    def __init__(self):
        self.events = []
        self.scopes = []
        self.bodies = []
        self.task = None
        self.loops = set()

    async def __call__(self, scope, receive, send):
        self.loops.add(id(asyncio.get_running_loop()))
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                self.events.append(message["type"])
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        self.scopes.append(scope)
        parts = []
        while True:
            message = await receive()
            parts.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        self.bodies.append(parts)
        if scope["path"] == "/start":
            self.task = asyncio.ensure_future(asyncio.sleep(3600))
        alive = b"alive" if self.task is not None and not self.task.done() else b"none"
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"x-task", alive)],
            }
        )
        await send({"type": "http.response.body", "body": b"par", "more_body": True})
        await send({"type": "http.response.body", "body": b"ts", "more_body": False})


def test_asgi_lifespan_one_loop_and_background_tasks_survive():
    app = _RecordingASGI()
    client = ASGIClient(app)
    assert app.events == ["lifespan.startup"]
    first = client.request("GET", "/start")
    second = client.request("GET", "/later")
    assert first.body == b"parts" and first.header("X-Task") == "alive"
    assert second.header("x-task") == "alive"  # the task started by the first request still runs
    assert len(app.loops) == 1
    client.close()
    assert app.events == ["lifespan.startup", "lifespan.shutdown"]


def test_asgi_scope_and_chunked_body():
    app = _RecordingASGI()
    with ASGIClient(app) as client:
        client.request("POST", "/caf%C3%A9/x?q=%20", headers={"X-A": "1"}, body=[b"ab", b"cd"])
        client.request("PUT", "/", body=b"whole")
        head = client.request("HEAD", "/")
    scope = app.scopes[0]
    assert scope["type"] == "http" and scope["method"] == "POST"
    assert scope["path"] == "/caf\u00e9/x" and scope["raw_path"] == b"/caf%C3%A9/x"
    assert scope["query_string"] == b"q=%20"
    names = [n for n, _ in scope["headers"]]
    assert (b"host", b"localhost") in scope["headers"] and b"x-a" in names
    assert b"content-length" not in names and (b"transfer-encoding", b"chunked") in scope["headers"]
    assert app.bodies[0] == [b"ab", b"cd", b""]
    assert (b"content-length", b"5") in app.scopes[1]["headers"] and app.bodies[1] == [b"whole"]
    assert head.body == b"" and head.app_head_body == 5


def test_quart_before_and_after_serving_run_and_request_body_arrives():
    app = Quart("q")
    calls = []

    @app.before_serving
    async def startup():
        calls.append("start")

    @app.after_serving
    async def shutdown():
        calls.append("stop")

    @app.post("/echo")
    async def echo():
        from quart import request

        return await request.get_data()

    client = client_for(app)
    assert calls == ["start"]
    assert client.request("POST", "/echo", body=[b"x" * 70000, b"y"]).body == b"x" * 70000 + b"y"
    client.close()
    assert calls == ["start", "stop"]


def test_wsgi_client_feeds_flask_like_gunicorn():
    app = Flask("f")

    @app.post("/len")
    def length():
        from flask import request

        return str(len(request.get_data()))

    client = client_for(app)
    assert client.request("POST", "/len", body=b"12345").body == b"5"
    assert client.request("POST", "/len", body=[b"12", b"345"]).body == b"5"
