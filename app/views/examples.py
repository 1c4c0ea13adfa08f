"""Seed 003's auto-JSON responses (its examples of returning a list or a dict) and the current user."""

from __future__ import annotations

from quart import Blueprint, Response, g, jsonify

bp = Blueprint("examples", __name__)


@bp.get("/json/list")
async def json_list() -> list[int]:
    return [1, 2, 3]


@bp.get("/json/dict")
async def json_dict() -> dict[str, str]:
    return {"hello": "world", "name": "huaiyue"}


@bp.get("/_get_current_user")
async def get_current_user() -> Response:
    return jsonify(username=g.user.username, email=g.user.email, id=g.user.id)
