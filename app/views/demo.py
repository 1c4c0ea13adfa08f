"""Seed 002's form and file uploads, sent back with ``send_file``, and stored uploads."""

from __future__ import annotations

import asyncio
import logging

from quart import Blueprint, Response, abort, current_app, jsonify, request
from quart.blueprints import BlueprintSetupState
from werkzeug.datastructures import CombinedMultiDict

from ..files import send_stored
from ..forms import read_form
from hostpulse.payloads import demo_fields, demo_id
from hostpulse.uploads import resolve, sweep_parts

bp = Blueprint("demo", __name__)
log = logging.getLogger("hostpulse")


@bp.record_once
def sweep_leftovers(state: BlueprintSetupState) -> None:
    """At the app's start: the part files of uploads a killed server cut short go."""
    settings = state.app.extensions.get("hostpulse")
    if settings is not None:
        removed = sweep_parts(settings.uploads)
        if removed:
            log.warning("uploads: removed %d part file(s) of uploads cut short: %s", len(removed), ", ".join(removed))


async def file_response(name: str) -> Response:
    path = await asyncio.to_thread(resolve, current_app.extensions["hostpulse"].uploads, name)
    if path is None:
        abort(404)
    return await send_stored(path)


@bp.get("/demo")
async def demo_query() -> Response:
    return jsonify(demo_fields(request.args))


@bp.post("/demo")
async def demo_upload() -> Response | str:
    form, upload = await read_form(current_app.extensions["hostpulse"])
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
