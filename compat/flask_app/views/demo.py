"""Seed 002's form and file uploads, sent back with ``send_file``, and stored uploads."""

from __future__ import annotations

import logging
import shutil

from flask import Blueprint, Response, abort, current_app, jsonify, request, send_file
from flask.blueprints import BlueprintSetupState

from hostpulse.payloads import demo_fields, demo_id
from hostpulse.uploads import UploadSink, etag_of, mimetype_of, resolve, sweep_parts

bp = Blueprint("demo", __name__)
log = logging.getLogger("hostpulse")

COPY_BUFFER = 256 * 1024


@bp.record_once
def sweep_leftovers(state: BlueprintSetupState) -> None:
    """At the app's start: the part files of uploads a killed server cut short go."""
    settings = state.app.extensions.get("hostpulse")
    if settings is not None:
        removed = sweep_parts(settings.uploads)
        if removed:
            log.warning("uploads: removed %d part file(s) of uploads cut short: %s", len(removed), ", ".join(removed))


def file_response(name: str) -> Response:
    settings = current_app.extensions["hostpulse"]
    path = resolve(settings.uploads, name)
    if path is None:
        abort(404)
    response = send_file(path, mimetype=mimetype_of(name), etag=etag_of(name), conditional=True)
    response.headers["Content-Location"] = f"/files/{name}"
    return response


@bp.get("/demo")
def demo_query() -> Response:
    return jsonify(demo_fields(request.args))


@bp.post("/demo")
def demo_upload() -> Response | str:
    settings = current_app.extensions["hostpulse"]
    upload = request.files.get("file")
    if not upload:
        return demo_id(request.values)
    sink = UploadSink(settings.uploads, settings.limits.max_upload_length)
    try:
        shutil.copyfileobj(upload.stream, sink, COPY_BUFFER)
        name = sink.commit(upload.filename or "")
    except BaseException:
        sink.abort()
        raise
    return file_response(name)


@bp.get("/files/<name>")
def stored_file(name: str) -> Response:
    return file_response(name)
