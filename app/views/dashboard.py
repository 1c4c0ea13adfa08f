"""The dashboard (issue 14, first slice): static pages and their files, public since they
hold no data; the browser reads ``GET /hosts`` and ``GET /hosts/<host>/series`` with the
viewer's token (kept in the tab's sessionStorage, sent as ``Authorization: Bearer``)."""

from __future__ import annotations

from pathlib import Path

from quart import Blueprint, Response, send_from_directory

STATIC = Path(__file__).resolve().parent.parent / "static" / "dashboard"

bp = Blueprint("dashboard", __name__)


async def _page(name: str) -> Response:
    response = await send_from_directory(STATIC, name, mimetype="text/html")
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/dashboard")
async def overview() -> Response:
    return await _page("overview.html")


@bp.get("/dashboard/hosts/<host>")
async def host_page(host: str) -> Response:
    return await _page("host.html")  # the script reads the host's name from the path


@bp.get("/dashboard/static/<path:name>")
async def static_file(name: str) -> Response:
    """A file of ``app/static/dashboard/`` (404 for anything else, ``..`` included)."""
    response = await send_from_directory(STATIC, name)
    response.headers["Cache-Control"] = "no-cache"
    return response
