"""Seed 002's form and file uploads, sent back with ``send_file``, and stored uploads."""

from __future__ import annotations

import asyncio

from quart import Blueprint, Response, abort, jsonify, request
from werkzeug.datastructures import CombinedMultiDict

from hostpulse.payloads import demo_fields, demo_id
from hostpulse.uploads import resolve

from ..files import send_stored
from ..forms import read_form
from ..resources import get_settings

bp = Blueprint("demo", __name__)


async def file_response(name: str) -> Response:
    path = await asyncio.to_thread(resolve, get_settings().uploads, name)
    if path is None:
        abort(404)
    return await send_stored(path)


@bp.get("/demo")
async def demo_query() -> Response:
    return jsonify(demo_fields(request.args))


@bp.post("/demo")
async def demo_upload() -> Response | str:
    form, upload = await read_form(get_settings())
    if upload is None:
        return demo_id(CombinedMultiDict([request.args, form]))
    try:
        name = await asyncio.to_thread(upload.sink.commit, upload.filename)
    except BaseException:
        await asyncio.to_thread(upload.sink.abort)
        raise
    return await send_stored(upload.sink.folder / name)  # just named by commit: no lookup


@bp.get("/files/<name>")
async def stored_file(name: str) -> Response:
    return await file_response(name)
