"""Seed 001's bulk JSON resource as a Quart ``MethodView``."""

from __future__ import annotations

from quart import Blueprint, Response, current_app, jsonify
from quart.views import MethodView

from app.requests import unpack_body
from hostpulse.payloads import seed_data

bp = Blueprint("data", __name__)


class Data(MethodView):
    async def get(self) -> Response:
        return jsonify(seed_data())

    async def post(self) -> Response:
        return jsonify(await unpack_body(current_app.extensions["hostpulse"].limits.max_content_length))


bp.add_url_rule("/data/", view_func=Data.as_view("data"))
