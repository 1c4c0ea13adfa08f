"""The Flask version of hostpulse: the service as its seeds would be written with Flask 3.

It is the reference the compat suite holds the Quart port to. Serve it with
``gunicorn 'compat.flask_app:create_app()'``.
"""

from __future__ import annotations

import os

from flask import Flask

from . import interceptors
from .jobs import JobRunner
from .requests import JSONProvider, Request
from .views import api, data, demo, health, pages, samples
from hostpulse import logsafe, settings as settings_module
from hostpulse.store import Store


def create_app(instance_path: str | os.PathLike[str] | None = None) -> Flask:
    settings = settings_module.load(instance_path)
    app = Flask(__name__, instance_path=str(settings.instance), static_folder=None)
    app.request_class = Request
    app.json = JSONProvider(app)  # the JSON depth rule of both apps (hostpulse/jsondepth.py)
    logsafe.protect(app.logger)  # its lines escaped and without secrets, as the port's
    app.config.update(
        MAX_CONTENT_LENGTH=settings.limits.max_content_length,
        MAX_FORM_MEMORY_SIZE=settings.limits.max_form_memory_size,
        MAX_FORM_PARTS=settings.limits.max_form_parts,
    )
    for folder in (settings.instance, settings.uploads, settings.scripts):
        folder.mkdir(parents=True, exist_ok=True)
    store = Store(settings.db_path, settings.store.legacy_retention)
    app.extensions["hostpulse"] = settings
    app.extensions["hostpulse.store"] = store
    app.extensions["hostpulse.jobs"] = JobRunner(settings, store)
    interceptors.register(app)
    for blueprint in (pages.bp, samples.bp, data.bp, demo.bp, api.bp, health.bp):
        app.register_blueprint(blueprint)
    return app
