"""Seed 004's JSON echo and its command exec/poll microservice."""

from __future__ import annotations

import asyncio

from quart import Blueprint, Response, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from hostpulse.jobs import check_job_id, exec_argv, exec_body_limit, exec_body_too_large, poll_answer
from hostpulse.payloads import decode_json, is_json_mimetype, require_json

from ..requests import read_body
from ..resources import get_jobs, get_settings, get_store

bp = Blueprint("api", __name__)


@bp.route("/api/<user>/<uuid>", methods=["GET", "POST"])
async def add_message(user: str, uuid: str) -> Response:
    # Flask's get_json(silent=True): a JSON body is read (413 over the limit), then ignored.
    if is_json_mimetype(request.mimetype):
        await read_body(get_settings().limits.max_content_length)
    return jsonify({"user": user, "uuid": uuid})


@bp.post("/api/exec/<uuid>")
async def exec_job(uuid: str) -> Response:
    check_job_id(uuid)
    require_json(request.mimetype)
    settings = get_settings()
    # a command is short (max_command_length): its body is read up to a bound fitting it, so
    # a large one is refused before it is held or decoded on the loop
    try:
        raw = await read_body(exec_body_limit(settings))
    except RequestEntityTooLarge:
        raise exec_body_too_large(settings) from None
    argv = exec_argv(decode_json(raw), settings)
    return jsonify(await get_jobs().start(uuid, argv))


@bp.route("/api/poll/<uuid>", methods=["GET", "POST"])
async def poll_job(uuid: str) -> Response:
    check_job_id(uuid)
    state = await asyncio.to_thread(get_store().poll_job, uuid, get_settings().jobs.line_num)
    return jsonify(poll_answer(state))
