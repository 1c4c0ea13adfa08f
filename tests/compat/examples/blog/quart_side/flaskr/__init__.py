"""Flaskr ported to Quart: the blog of flask_side/, answering the same way.

The port follows Quart's migration guide: ``from quart import ...``, ``async def`` views and
hooks, ``await request.form``, ``await render_template(...)``, ``await flash(...)``. SQLite
stays on the standard library's sqlite3 (sync, short calls), opened on the event loop's thread.
"""

from __future__ import annotations

import os

from quart import Quart


def create_app(test_config=None, instance_path=None):
    """Create and configure an instance of the app.

    ``instance_path`` is the folder of the SQLite file (``flaskr.sqlite``); without it,
    ``$COMPAT_INSTANCE``, else Quart's default instance folder.
    """
    if instance_path is None:
        instance_path = os.environ.get("COMPAT_INSTANCE")
    if instance_path is not None:
        instance_path = os.path.abspath(instance_path)
    app = Quart(__name__, instance_path=instance_path, instance_relative_config=True)
    app.config.from_mapping(
        SECRET_KEY="dev",
        DATABASE=os.path.join(app.instance_path, "flaskr.sqlite"),
        MAX_CONTENT_LENGTH=None,  # Flask's default: no body limit (Quart's is 16 MiB, then 413)
        SEND_FILE_MAX_AGE_DEFAULT=None,  # Flask's default: files go out with no max age (Quart's: 12 h)
    )
    if test_config is None:
        app.config.from_pyfile("config.py", silent=True)
    else:
        app.config.from_mapping(test_config)

    os.makedirs(app.instance_path, exist_ok=True)

    @app.route("/hello")
    async def hello():
        return "Hello, World!"

    from . import auth, blog, csrf, db, flask_parity

    flask_parity.install(app)  # Vary: Cookie, static file headers, 204/304 headers as Flask sends them
    db.init_app(app)
    csrf.init_app(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(blog.bp)
    app.add_url_rule("/", endpoint="index")
    return app
