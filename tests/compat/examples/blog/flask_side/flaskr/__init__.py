"""Flaskr: a small blog (users, posts) on SQLite, in the style of Flask's tutorial app.

An example app for the compat suite (tests/compat/examples/blog); quart_side/ holds its port.
"""

from __future__ import annotations

import os

from flask import Flask


def create_app(test_config=None, instance_path=None):
    """Create and configure an instance of the app.

    ``instance_path`` is the folder of the SQLite file (``flaskr.sqlite``); without it,
    ``$COMPAT_INSTANCE``, else Flask's default instance folder.
    """
    if instance_path is None:
        instance_path = os.environ.get("COMPAT_INSTANCE")
    if instance_path is not None:
        instance_path = os.path.abspath(instance_path)
    app = Flask(__name__, instance_path=instance_path, instance_relative_config=True)
    app.config.from_mapping(
        SECRET_KEY="dev",
        DATABASE=os.path.join(app.instance_path, "flaskr.sqlite"),
    )
    if test_config is None:
        app.config.from_pyfile("config.py", silent=True)
    else:
        app.config.from_mapping(test_config)

    os.makedirs(app.instance_path, exist_ok=True)

    @app.route("/hello")
    def hello():
        return "Hello, World!"

    from . import auth, blog, csrf, db

    db.init_app(app)
    csrf.init_app(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(blog.bp)
    app.add_url_rule("/", endpoint="index")
    return app
