"""The bench's peers: the bare Quart app answers what the port answers on ``GET /json/dict``, and
every server has a command line."""

from __future__ import annotations

from app.views import examples
from bench.bare_quart import app as bare
from bench.servers import ALL, Server


async def test_bare_quart_answers_the_ports_dict() -> None:
    client = bare.test_client()
    response = await client.get("/json/dict")
    assert response.status_code == 200
    assert await response.get_json() == await examples.json_dict()
    assert (await client.get("/healthz")).status_code == 200


def test_every_server_has_a_command_line() -> None:
    for name in ALL:
        argv = Server(name, ALL[name], port=8000).argv(2)
        assert "127.0.0.1" in " ".join(argv)
    assert "gevent" in Server("flask-gevent", "", port=8000).argv(2)
    assert "bench.bare_quart:app" in Server("quart-bare", "", port=8000).argv(2)
