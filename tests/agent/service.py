"""The port with the metrics blueprint, for the agent's end-to-end tests.

``app.create_app`` registers ``app.views.metrics`` itself once the lead has wired it;
until then (or if not) this adds it, so the tests run against the same blueprint either way.
"""

from __future__ import annotations

import os

from quart import Quart

import app as port
from app.views import metrics


def create_app(instance_path: str | os.PathLike[str] | None = None) -> Quart:
    service = port.create_app(instance_path)
    if metrics.bp.name not in service.blueprints:
        service.register_blueprint(metrics.bp)
    return service
