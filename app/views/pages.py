"""Seed 002's pages and seed 000's legacy metrics post on ``/``."""

from __future__ import annotations

import asyncio

from quart import Blueprint, Response, g, redirect, url_for
from werkzeug.wrappers.response import Response as WerkzeugResponse

from hostpulse.payloads import legacy_echo, legacy_list

from ..requests import read_body
from ..resources import get_settings, get_store

bp = Blueprint("pages", __name__)


@bp.get("/")
async def hello_world() -> str:
    return "Hello, World!"


@bp.post("/")
async def legacy_post() -> Response:
    data = await read_body(get_settings().limits.max_content_length)
    if legacy_list(data):
        await asyncio.to_thread(get_store().add_legacy_post, g.user.username, data.decode("utf-8", "replace"))
    return Response(legacy_echo(data), mimetype="text/plain")


@bp.get("/usrname")
async def admin() -> WerkzeugResponse:
    return redirect(url_for("pages.login"))


@bp.get("/login")
async def login() -> str:
    return "Please login first"


@bp.get("/regist")
async def regist() -> str:
    return "Registration is not open yet"
