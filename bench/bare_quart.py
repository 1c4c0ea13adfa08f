"""The limit for the port: a bare Quart app on the same Hypercorn configuration (hypercorn.toml,
no access log), with no interceptors, answering ``GET /json/dict`` with the port's dict.

``hypercorn --config hypercorn.toml bench.bare_quart:app``
"""

from __future__ import annotations

from quart import Quart

app = Quart(__name__)


@app.get("/json/dict")
async def json_dict() -> dict[str, str]:
    return {"hello": "world", "name": "huaiyue"}


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
