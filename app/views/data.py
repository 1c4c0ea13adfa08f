"""Seed 001's bulk JSON resource as a Quart ``MethodView``."""

from __future__ import annotations

from quart import Blueprint, Response, current_app, jsonify
from quart.json.provider import DefaultJSONProvider
from quart.views import MethodView

from hostpulse.payloads import seed_data

from ..resources import get_resources, get_settings
from ..unpack import unpack_body

bp = Blueprint("data", __name__)


class Data(MethodView):
    async def get(self) -> Response:
        # The document never changes: encoded once per app, by the app's own provider
        # (about 0.5 ms a request otherwise, a quarter of the answer's time).
        resources = get_resources()
        if resources.seed_body is None:
            body = await jsonify(seed_data()).get_data()
            assert isinstance(body, bytes)  # as_text=False; Quart types get_data str | bytes
            resources.seed_body = body
        provider = current_app.json
        assert isinstance(provider, DefaultJSONProvider)  # the one with a mimetype; the app keeps it
        return current_app.response_class(resources.seed_body, mimetype=provider.mimetype)

    async def post(self) -> Response:
        return jsonify(await unpack_body(get_settings().limits.max_content_length))


bp.add_url_rule("/data/", view_func=Data.as_view("data"))
