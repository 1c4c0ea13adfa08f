"""The libcst rewrite on small sources: each Flask construct and what Quart needs instead.

Every test also checks what holds for any output: it compiles, it keeps every comment of
the source, and porting it again changes nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from porter.port import port

from .helpers import compileall, lost_comments, port_files


def check_output(tmp_path: Path, files: dict[str, str], outputs: dict[str, str]) -> None:
    """Compiles, keeps the source's comments, and is a fixed point of the porter."""
    dest = tmp_path / "dest"
    assert compileall(dest).returncode == 0
    for rel, text in outputs.items():
        source = files.get(rel)
        if source is not None:
            import textwrap

            assert not lost_comments(textwrap.dedent(source).lstrip("\n"), text), rel
    again = port(next(dest.iterdir()), tmp_path / "again")
    for rel, text in outputs.items():
        assert (tmp_path / "again" / rel).read_text(encoding="utf-8") == text, f"{rel} changed on a second run"
    assert not again.changed


def test_imports(tmp_path: Path) -> None:
    files = {
        "app/__init__.py": """
        import flask  # the module
        from flask import Flask, jsonify, request  # names
        from flask.views import MethodView
        from flask.json.provider import DefaultJSONProvider
        from werkzeug.utils import redirect, secure_filename  # one moves, one stays
        from werkzeug.exceptions import NotFound


        def create_app() -> Flask:
            app = Flask(__name__)
            other = flask.Flask("x")
            return app
    """
    }
    out, result = port_files(tmp_path, files)
    text = out["app/__init__.py"]
    assert "import quart  # the module\n" in text
    assert "from quart import Quart, jsonify, request  # names\n" in text
    assert "from quart.views import MethodView\n" in text
    assert "from quart.json.provider import DefaultJSONProvider\n" in text
    assert "from werkzeug.utils import secure_filename  # one moves, one stays\nfrom quart import redirect\n" in text
    assert "from werkzeug.exceptions import NotFound\n" in text
    assert 'def create_app() -> Quart:\n    app = Quart(__name__)\n    other = quart.Quart("x")' in text
    assert "flask" not in text.replace("# ", "")
    assert result.app == "app:create_app"
    check_output(tmp_path, files, out)


def test_views_await_what_quart_makes_awaitable(tmp_path: Path) -> None:
    files = {
        "app/__init__.py": """
        from flask import Flask, flash, make_response, render_template as rt, request, send_file


        def create_app():
            app = Flask(__name__)

            @app.route("/", methods=["GET", "POST"])
            def index():
                # read the form
                name = request.form["name"]
                other = request.form.get("other", "")
                data = request.get_json(silent=True)
                flash("saved")
                return rt("index.html", name=name, form=request.form, data=data)

            @app.post("/upload")
            def upload():
                f = request.files["file"]
                return make_response(send_file(f.stream, download_name="x.bin", max_age=10))

            return app
    """
    }
    out, _ = port_files(tmp_path, files)
    text = out["app/__init__.py"]
    assert "    async def index():\n        # read the form\n" in text
    assert 'name = (await request.form)["name"]' in text
    assert 'other = (await request.form).get("other", "")' in text
    assert "data = await request.get_json(silent=True)" in text
    assert 'await flash("saved")' in text
    assert 'return await rt("index.html", name=name, form=await request.form, data=data)' in text
    assert 'f = (await request.files)["file"]' in text
    # Quart 0.22's send_file names, and Flask's default conditional=True made explicit
    assert (
        'return await make_response(await send_file(f.stream, attachment_filename="x.bin", '
        "cache_timeout=10, conditional=True))"
    ) in text
    check_output(tmp_path, files, out)


def test_send_file_etag_value_goes_through_the_support_module(tmp_path: Path) -> None:
    files = {
        "app/__init__.py": """
        from flask import Flask, send_file


        def create_app():
            app = Flask(__name__)

            @app.get("/f/<name>")
            def f(name):
                return send_file(name, etag="abc", conditional=True)

            return app
    """
    }
    out, result = port_files(tmp_path, files)
    assert 'return await _porter.send_file(name, etag="abc", conditional=True)' in out["app/__init__.py"]
    assert "from . import _porter" in out["app/__init__.py"]
    assert "app/_porter.py" in out and result.support is not None
    check_output(tmp_path, files, out)


def test_decorator_awaits_the_view(tmp_path: Path) -> None:
    files = {
        "app/__init__.py": """
        import functools

        from flask import Blueprint, g, redirect

        bp = Blueprint("x", __name__)


        def login_required(view):
            @functools.wraps(view)
            def wrapped_view(**kwargs):
                if g.user is None:
                    return redirect("/login")
                return view(**kwargs)  # the view itself

            return wrapped_view


        def roles(*names):
            def decorator(view):
                def inner(*args, **kwargs):
                    return view(*args, **kwargs)
                return inner
            return decorator


        @bp.route("/a")
        @login_required
        def a():
            return "a"


        @bp.route("/b")
        @roles("admin")
        def b():
            return "b"
    """
    }
    out, _ = port_files(tmp_path, files)
    text = out["app/__init__.py"]
    assert "def login_required(view):\n    @functools.wraps(view)\n    async def wrapped_view(**kwargs):" in text
    assert "return await view(**kwargs)  # the view itself" in text
    assert "def roles(*names):\n    def decorator(view):\n        async def inner(*args, **kwargs):" in text
    assert "return await view(*args, **kwargs)" in text
    assert "async def a():" in text and "async def b():" in text
    check_output(tmp_path, files, out)


def test_method_view_and_helpers_on_self(tmp_path: Path) -> None:
    files = {
        "app/views.py": """
        from flask import request
        from flask.views import MethodView


        class Base(MethodView):
            def load(self):
                return request.values


        class Items(Base):
            decorators = []

            def get(self):
                return {"n": len(self.load())}

            def post(self):
                return request.get_data()

            def helper(self):
                return 1
    """,
        "app/__init__.py": """
        from flask import Flask
        from .views import Items


        def create_app():
            app = Flask(__name__)
            app.add_url_rule("/items", view_func=Items.as_view("items"))
            return app
    """,
    }
    out, _ = port_files(tmp_path, files)
    text = out["app/views.py"]
    assert "    async def load(self):\n        return await request.values" in text
    assert '    async def get(self):\n        return {"n": len(await self.load())}' in text
    assert "    async def post(self):\n        return await request.get_data()" in text
    assert "    def helper(self):" in text  # no awaitable: stays sync
    check_output(tmp_path, files, out)


def test_hooks_by_decorator_and_by_call(tmp_path: Path) -> None:
    files = {
        "app/__init__.py": """
        from flask import Blueprint, Flask, g

        bp = Blueprint("auth", __name__)


        @bp.before_app_request
        def load_user():
            g.user = None


        @bp.app_errorhandler(500)
        def oops(e):
            return "oops", 500


        def close_db(e=None):
            g.pop("db", None)


        def check():
            return None


        def not_found(e):
            return "nope", 404


        def stamp(response):
            return response


        def create_app():
            app = Flask(__name__)
            app.teardown_appcontext(close_db)
            app.before_request(check)
            app.after_request(stamp)
            app.register_error_handler(404, not_found)
            app.errorhandler(405)(not_found)

            @app.context_processor
            def extra():
                return {}

            @app.template_filter()
            def shout(s):
                return s.upper()

            return app
    """
    }
    out, result = port_files(tmp_path, files)
    text = out["app/__init__.py"]
    for name in ("load_user", "oops", "close_db", "check", "not_found", "stamp", "extra"):
        assert f"async def {name}(" in text, name
    assert "    def shout(s):" in text  # Jinja calls filters synchronously
    assert "def create_app():" in text  # the factory stays sync
    check_output(tmp_path, files, out)


def test_propagation_through_the_projects_helpers(tmp_path: Path) -> None:
    files = {
        "app/forms.py": """
        from flask import request


        def read_form():
            '''Title and body.'''
            return request.form["title"], request.form.get("body", "")


        def clean():
            title, body = read_form()  # one level further
            return title.strip(), body
    """,
        "app/__init__.py": """
        from flask import Flask

        from . import forms
        from .forms import clean


        def create_app():
            app = Flask(__name__)

            def local_helper():
                return clean()

            @app.post("/a")
            def a():
                return {"t": local_helper()[0]}

            @app.post("/b")
            def b():
                return {"t": forms.read_form()[0]}

            return app
    """,
    }
    out, result = port_files(tmp_path, files)
    forms, init = out["app/forms.py"], out["app/__init__.py"]
    assert "async def read_form():" in forms
    assert "async def clean():\n    title, body = await read_form()  # one level further" in forms
    assert "    async def local_helper():\n        return await clean()" in init
    assert 'return {"t": (await local_helper())[0]}' in init
    assert 'return {"t": (await forms.read_form())[0]}' in init
    why = result.plan.async_keys["app.forms:clean"]
    assert "read_form" in why[0]
    check_output(tmp_path, files, out)


def test_cli_command_gets_an_app_context_and_stays_sync(tmp_path: Path) -> None:
    files = {
        "app/__init__.py": """
        import click
        from flask import Flask, current_app


        def init_db():
            return current_app.config["DATABASE"]


        @click.command("init-db")
        def init_db_command():
            init_db()
            click.echo("done")


        def create_app():
            app = Flask(__name__)
            app.cli.add_command(init_db_command)
            return app
    """
    }
    out, _ = port_files(tmp_path, files)
    text = out["app/__init__.py"]
    assert '@click.command("init-db")\n@with_appcontext\ndef init_db_command():' in text
    assert "from quart.cli import with_appcontext" in text
    check_output(tmp_path, files, out)


def test_test_client_and_open_resource(tmp_path: Path) -> None:
    files = {
        "app/__init__.py": """
        from flask import Flask, current_app


        def schema():
            with current_app.open_resource("schema.sql") as f:
                return f.read().decode("utf8")


        def create_app():
            return Flask(__name__)
    """,
        "app/test_app.py": """
        from . import create_app


        def test_index():
            app = create_app()
            with app.test_client() as client:
                reply = client.get("/")
            assert reply.status_code == 200
    """,
    }
    out, _ = port_files(tmp_path, files)
    assert (
        'async def schema():\n    async with await current_app.open_resource("schema.sql") as f:\n'
        '        return (await f.read()).decode("utf8")'
    ) in out["app/__init__.py"]
    test = out["app/test_app.py"]
    assert "async def test_index():" in test
    assert '    async with app.test_client() as client:\n        reply = await client.get("/")' in test
    check_output(tmp_path, files, out)


def test_a_module_file_and_a_module_level_app(tmp_path: Path) -> None:
    files = {
        "app.py": """
        from flask import Flask, render_template

        app = Flask(__name__)  # module level


        @app.route("/")
        def index():
            return render_template("i.html")
    """,
        "templates/i.html": "<p>{{ request.form['x'] }}</p>\n",
    }
    base = tmp_path / "src"
    from .helpers import write_project

    write_project(base, files)
    result = port(base / "app.py", tmp_path / "dest")
    text = (tmp_path / "dest" / "app.py").read_text()
    assert result.app == "app:app"
    assert 'app = Quart(__name__)  # module level\n_porter.request_in_templates(app, "form")' in text
    assert "import _porter" in text and (tmp_path / "dest" / "_porter.py").exists()
    assert (tmp_path / "dest" / "templates" / "i.html").exists()
    assert 'return await render_template("i.html")' in text
    assert compileall(tmp_path / "dest").returncode == 0


@pytest.mark.parametrize("existing", [True, False])
def test_dest_must_be_new(tmp_path: Path, existing: bool) -> None:
    from porter.port import PortError

    from .helpers import write_project

    write_project(tmp_path / "src", {"app/__init__.py": "from flask import Flask\n"})
    dest = tmp_path / "dest"
    if existing:
        dest.mkdir()
        (dest / "x").write_text("keep")
        with pytest.raises(PortError, match="not empty"):
            port(tmp_path / "src" / "app", dest)
        assert (dest / "x").read_text() == "keep"
    else:
        port(tmp_path / "src" / "app", dest)
        assert (dest / "app" / "__init__.py").read_text() == "from quart import Quart\n"
