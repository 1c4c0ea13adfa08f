"""Seed 001's bulk JSON resource, a ``MethodView`` where the seed had a flask-restful ``Resource``."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from flask.views import MethodView

from hostpulse.payloads import seed_data, unpack

bp = Blueprint("data", __name__)


class Data(MethodView):
    def get(self) -> Response:
        return jsonify(seed_data())

    def post(self) -> Response:
        return jsonify(unpack(request.get_data()))


bp.add_url_rule("/data/", view_func=Data.as_view("data"))
