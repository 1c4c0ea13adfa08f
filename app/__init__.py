"""The async port of hostpulse: the Flask service on Quart, served by Hypercorn.

``hypercorn --config hypercorn.toml 'app:create_app()'``. Every handler is a coroutine;
SQLite, file writes and child processes never block the event loop.
"""

from __future__ import annotations

import os

from quart import Quart

from hostpulse.settings import Settings, for_app

from . import edge, interceptors, live, logs, loop_probe, protocol
from .requests import BoundedHTTPConnection, BoundedRequest
from .resources import open_resources
from .views import api, dashboard, data, demo, examples, health, metrics, pages


def create_app(instance_path: str | os.PathLike[str] | None = None, *, settings: Settings | None = None) -> Quart:
    """The port on the instance folder ``instance_path`` (else ``$HOSTPULSE_INSTANCE``, else
    ``./instance``) and its config file, or on ``settings`` made in code (no file read)."""
    logs.configure("hostpulse", "stderr")
    settings = for_app(instance_path, settings)
    app = Quart(__name__, instance_path=str(settings.instance), static_folder=None)
    logs.protect_app(app.logger)  # control characters escaped, secrets redacted (hostpulse/logsafe.py)
    app.request_class, app.asgi_http_class = BoundedRequest, BoundedHTTPConnection  # body backpressure
    # Quart's own body limit misses a chunked body read in parts and ignores a per-request
    # limit (README, "Flask vs Quart: what the port pins"): app/requests.py counts the bytes.
    app.config.update(MAX_CONTENT_LENGTH=None, BODY_TIMEOUT=None, RESPONSE_TIMEOUT=None, SEND_FILE_MAX_AGE_DEFAULT=None)
    live.install(app)  # the dashboard's feed; first, so its poller stops before the store closes
    open_resources(app, settings)  # closed when serving stops
    interceptors.register(app)  # authentication (and the connection counted against its token), JSON errors
    protocol.install(app)  # strict chunk lines, direct WebSockets
    loop_probe.install(app)  # only with HOSTPULSE_LOOP_PROBE set (tests/app/test_loop_lag.py)
    edge.install(app)  # framing, body timeout, stamps, access log, slots given back: outermost
    for blueprint in (pages.bp, examples.bp, data.bp, demo.bp, api.bp, health.bp, metrics.bp, dashboard.bp):
        app.register_blueprint(blueprint)
    return app
