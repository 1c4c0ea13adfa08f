"""Seed 002's form and file uploads, sent back with ``send_file``, and stored uploads."""

from __future__ import annotations

import shutil

from flask import Blueprint, Response, abort, jsonify, request, send_file

from hostpulse.payloads import demo_fields, demo_id
from hostpulse.uploads import UploadSink, etag_of, mimetype_of, resolve

from ..resources import get_settings

bp = Blueprint("demo", __name__)

COPY_BUFFER = 256 * 1024


def file_response(name: str) -> Response:
    path = resolve(get_settings().uploads, name)
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
    settings = get_settings()
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
