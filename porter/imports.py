"""Where each Flask (and WSGI-only Werkzeug) name lives in Quart 0.22.

The tables say, for an ``import`` or ``from ... import`` of the Flask project, which module
and name the Quart project imports instead; what cannot be imported from Quart is named
in :data:`UNPORTABLE_MODULES` and :data:`EXTENSIONS` (flagged, not rewritten).
"""

from __future__ import annotations

# flask.<module> -> quart.<module> (the submodules Quart has under the same role)
MODULES: dict[str, str] = {
    "flask": "quart",
    "flask.blueprints": "quart.blueprints",
    "flask.cli": "quart.cli",
    "flask.config": "quart.config",
    "flask.ctx": "quart.ctx",
    "flask.globals": "quart.globals",
    "flask.helpers": "quart.helpers",
    "flask.json": "quart.json",
    "flask.json.provider": "quart.json.provider",
    "flask.json.tag": "quart.json.tag",
    "flask.logging": "quart.logging",
    "flask.sessions": "quart.sessions",
    "flask.signals": "quart.signals",
    "flask.templating": "quart.templating",
    "flask.testing": "quart.testing",
    "flask.typing": "quart.typing",
    "flask.views": "quart.views",
    "flask.wrappers": "quart.wrappers",
}

# names that are spelt otherwise in Quart, wherever they are imported from
RENAMED: dict[str, str] = {
    "Flask": "Quart",
    "FlaskClient": "QuartClient",
    "FlaskCliRunner": "QuartCliRunner",
    "FlaskGroup": "QuartGroup",
}

# Werkzeug names whose WSGI objects Quart cannot serve: the Quart ones instead
WERKZEUG: dict[tuple[str, str], tuple[str, str]] = {
    ("werkzeug.wrappers", "Response"): ("quart", "Response"),
    ("werkzeug.wrappers", "Request"): ("quart", "Request"),
    ("werkzeug.wrappers.response", "Response"): ("quart", "Response"),
    ("werkzeug.wrappers.request", "Request"): ("quart", "Request"),
    ("werkzeug", "Response"): ("quart", "Response"),
    ("werkzeug", "Request"): ("quart", "Request"),
    ("werkzeug.utils", "redirect"): ("quart", "redirect"),
    ("werkzeug.utils", "send_file"): ("quart", "send_file"),
    ("werkzeug.utils", "send_from_directory"): ("quart", "send_from_directory"),
}

# what Quart's top-level package exports (quart/__init__.py, 0.22), besides the renamed
QUART_TOP = {
    "escape",
    "Markup",
    "Quart",
    "Blueprint",
    "Config",
    "after_this_request",
    "copy_current_app_context",
    "copy_current_request_context",
    "copy_current_websocket_context",
    "has_app_context",
    "has_request_context",
    "has_websocket_context",
    "current_app",
    "g",
    "request",
    "session",
    "websocket",
    "abort",
    "flash",
    "get_flashed_messages",
    "get_template_attribute",
    "make_push_promise",
    "make_response",
    "redirect",
    "send_file",
    "send_from_directory",
    "stream_with_context",
    "url_for",
    "jsonify",
    "appcontext_popped",
    "appcontext_pushed",
    "appcontext_tearing_down",
    "before_render_template",
    "got_request_exception",
    "message_flashed",
    "request_finished",
    "request_started",
    "request_tearing_down",
    "signals_available",
    "template_rendered",
    "render_template",
    "render_template_string",
    "stream_template",
    "stream_template_string",
    "ResponseReturnValue",
    "Request",
    "Response",
    "Websocket",
    # submodules, importable with ``from quart import json``
    "json",
    "views",
    "cli",
    "sessions",
    "testing",
    "typing",
    "helpers",
    "ctx",
    "globals",
    "signals",
    "templating",
    "wrappers",
    "blueprints",
    "config",
    "logging",
}

# Werkzeug modules that only make sense under a WSGI server (flagged where imported)
WSGI_ONLY = {
    "werkzeug.wsgi": "WSGI stream helpers: Quart has no WSGI environ or wsgi.input; code using them never runs under Quart",
    "werkzeug.serving": "Werkzeug's WSGI development server: serve the Quart app with Hypercorn (`hypercorn module:app`)",
    "werkzeug.middleware": "WSGI middleware cannot wrap an ASGI app: Hypercorn has `ProxyFixMiddleware`, "
    "or use an ASGI middleware",
    "werkzeug.middleware.proxy_fix": "WSGI middleware cannot wrap an ASGI app: use "
    "`hypercorn.middleware.ProxyFixMiddleware`",
    "werkzeug.middleware.dispatcher": "WSGI dispatching: use Hypercorn's `DispatcherMiddleware` (ASGI)",
    "werkzeug.middleware.shared_data": "WSGI static files middleware: serve static files with Quart",
    "werkzeug.test": "Werkzeug's WSGI test client: use `app.test_client()` (Quart's, awaited)",
    "werkzeug.local": "thread-locals (`Local`, `LocalStack`): under Quart every request shares the event loop's "
    "thread; use `contextvars` or `g`",
}

# Flask extensions: their Quart counterpart (None: none known)
EXTENSIONS: dict[str, str | None] = {
    "flask_cors": "quart_cors (`cors(app)`)",
    "flask_login": "quart_auth (another API: `AuthUser`, `login_user`, `login_required`)",
    "flask_sqlalchemy": "quart_sqlalchemy, or SQLAlchemy's asyncio extension",
    "flask_wtf": "quart_wtf (forms read with `await`)",
    "flask_restful": "quart_schema (another API)",
    "flask_restx": "quart_schema (another API)",
    "flask_socketio": "Quart's own websockets (`@app.websocket`)",
    "flask_limiter": "quart_rate_limiter",
    "flask_compress": "quart_compress",
    "flask_babel": "quart_babel",
    "flask_session": "quart_session",
    "flask_jwt_extended": "quart_jwt_extended",
    "flask_caching": None,
    "flask_mail": None,
    "flask_migrate": None,
    "flask_admin": None,
    "flask_marshmallow": None,
    "flask_bcrypt": None,
    "flask_debugtoolbar": None,
}


def module_of(dotted: str) -> str | None:
    """The Quart module for a ``flask...`` module, or None."""
    return MODULES.get(dotted)


def extension_of(dotted: str) -> str | None:
    """The Flask extension a module belongs to (``flask_login.utils`` -> ``flask_login``), else None;
    ``flask.ext.x`` (old spelling) counts as ``flask_x``."""
    top = dotted.split(".")[0]
    if dotted.startswith("flask.ext."):
        return "flask_" + dotted.split(".")[2]
    if top.startswith("flask_"):
        return top
    return None
