"""Seed 004's JSON echo and its command exec/poll microservice."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from hostpulse.jobs import check_job_id, exec_argv, exec_body_limit, exec_body_too_large, poll_answer
from hostpulse.payloads import decode_json, require_json

from ..resources import get_jobs, get_settings, get_store

bp = Blueprint("api", __name__)


@bp.route("/api/<user>/<uuid>", methods=["GET", "POST"])
def add_message(user: str, uuid: str) -> Response:
    request.get_json(silent=True)
    return jsonify({"user": user, "uuid": uuid})


@bp.post("/api/exec/<uuid>")
def exec_job(uuid: str) -> Response | tuple[Response, int]:
    check_job_id(uuid)
    require_json(request.mimetype)
    settings = get_settings()
    request.max_content_length = exec_body_limit(settings)  # a command is short: 413 beyond
    try:
        raw = request.get_data()
    except RequestEntityTooLarge:
        raise exec_body_too_large(settings) from None
    argv = exec_argv(decode_json(raw), settings)
    return jsonify(get_jobs().start(uuid, argv))


@bp.route("/api/poll/<uuid>", methods=["GET", "POST"])
def poll_job(uuid: str) -> Response:
    check_job_id(uuid)
    state = get_store().poll_job(uuid, get_settings().jobs.line_num)
    return jsonify(poll_answer(state))
