"""The async port of hostpulse: the Flask service on Quart, served by Hypercorn.

``hypercorn --config hypercorn.toml 'app:create_app()'``. Every handler is a coroutine;
SQLite, file writes and child processes never block the event loop.
"""

from __future__ import annotations

import os

from quart import Quart

from . import access_log, interceptors, logs, loop_probe, protocol
from .jobs import JobRunner
from .requests import BoundedHTTPConnection, BoundedRequest
from .views import api, data, demo, health, metrics, pages, samples
from hostpulse import settings as settings_module
from hostpulse.store import Store


def create_app(instance_path: str | os.PathLike[str] | None = None) -> Quart:
    logs.configure("hostpulse", "stderr")
    settings = settings_module.load(instance_path)
    app = Quart(__name__, instance_path=str(settings.instance), static_folder=None)
    logs.protect_app(app.logger)  # control characters escaped, secrets redacted (hostpulse/logsafe.py)
    app.request_class, app.asgi_http_class = BoundedRequest, BoundedHTTPConnection  # body backpressure
    # Quart's own body limit misses chunked bodies and ignores per-request limits
    # (DESIGN, "Measured here"): app/requests.py counts the bytes itself.
    app.config.update(
        MAX_CONTENT_LENGTH=None, BODY_TIMEOUT=None, RESPONSE_TIMEOUT=None, SEND_FILE_MAX_AGE_DEFAULT=None
    )
    for folder in (settings.instance, settings.uploads, settings.scripts):
        folder.mkdir(parents=True, exist_ok=True)
    store = Store(settings.db_path, settings.store.legacy_retention)
    jobs = JobRunner(settings, store)
    app.extensions["hostpulse"] = settings
    app.extensions["hostpulse.store"] = store
    app.extensions["hostpulse.jobs"] = jobs
    app.after_serving(jobs.shutdown)
    interceptors.register(app)
    protocol.install(app)  # framing, body timeout, connections per token (after authentication)
    loop_probe.install(app)  # only with HOSTPULSE_LOOP_PROBE set (tests/app/test_loop_lag.py)
    access_log.install(app)
    for blueprint in (pages.bp, samples.bp, data.bp, demo.bp, api.bp, health.bp, metrics.bp):
        app.register_blueprint(blueprint)
    return app
