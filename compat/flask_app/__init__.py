"""The Flask version of hostpulse: the service as its seeds would be written with Flask 3.

It is the reference the compat suite holds the Quart port to. Serve it with
``gunicorn 'compat.flask_app:create_app()'``.
"""

from __future__ import annotations

import os

from flask import Flask

from hostpulse import logsafe
from hostpulse.settings import Settings, for_app

from . import interceptors
from .requests import JSONProvider, Request
from .resources import open_resources
from .views import api, data, demo, examples, health, pages


def create_app(instance_path: str | os.PathLike[str] | None = None, *, settings: Settings | None = None) -> Flask:
    """The Flask version on the instance folder ``instance_path`` (else ``$HOSTPULSE_INSTANCE``,
    else ``./instance``) and its config file, or on ``settings`` made in code (no file read)."""
    settings = for_app(instance_path, settings)
    app = Flask(__name__, instance_path=str(settings.instance), static_folder=None)
    app.request_class = Request
    app.json = JSONProvider(app)  # the JSON depth rule of both apps (hostpulse/jsondepth.py)
    logsafe.protect(app.logger)  # its lines escaped and without secrets, as the port's
    app.config.update(
        MAX_CONTENT_LENGTH=settings.limits.max_content_length,
        MAX_FORM_MEMORY_SIZE=settings.limits.max_form_memory_size,
        MAX_FORM_PARTS=settings.limits.max_form_parts,
    )
    open_resources(app, settings)
    interceptors.register(app)
    for blueprint in (pages.bp, examples.bp, data.bp, demo.bp, api.bp, health.bp):
        app.register_blueprint(blueprint)
    return app
