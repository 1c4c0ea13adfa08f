"""The limit for the port: a bare Quart app on the same Hypercorn configuration (hypercorn.toml,
no access log), with no interceptors, answering what the bench asks of the port with
Quart's own means: ``GET /json/dict`` (the port's dict), ``POST /demo`` (the body read and
dropped: the bench's slow uploads) and ``GET /files/<name>`` (``send_from_directory`` from
``$HOSTPULSE_INSTANCE/uploads``: the slow downloads).

``hypercorn --config hypercorn.toml bench.bare_quart:app``
"""

from __future__ import annotations

import os
from pathlib import Path

from quart import Quart, Response, request, send_from_directory

app = Quart(__name__)
UPLOADS = Path(os.environ.get("HOSTPULSE_INSTANCE", "instance")) / "uploads"


@app.get("/json/dict")
async def json_dict() -> dict[str, str]:
    return {"hello": "world", "name": "huaiyue"}


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/demo")
async def demo_upload() -> dict[str, int]:
    """Reads the body as it comes and keeps nothing: the cost of receiving it, no more."""
    size = 0
    async for chunk in request.body:
        size += len(chunk)
    return {"bytes": size}


@app.get("/files/<name>")
async def stored_file(name: str) -> Response:
    return await send_from_directory(UPLOADS, name)
