"""What the porter cannot port safely is flagged with file and line, and stops the command (exit 2)."""

from __future__ import annotations

from pathlib import Path

from porter.__main__ import main

from .helpers import port_files, write_project

UNSAFE = {
    "app/__init__.py": """
        from flask import Flask, render_template, request
        from flask_login import LoginManager

        from .stream import stream_view


        def create_app():
            app = Flask(__name__)
            LoginManager(app)

            @app.route("/")
            def index():
                return render_template("i.html")

            @app.template_global()
            def form_value(name):
                return request.form.get(name)

            app.add_url_rule("/stream", view_func=stream_view)
            app.before_request(lambda: None)
            return app
    """,
    "app/stream.py": """
        import threading

        from flask import Response, request, stream_with_context

        cache = threading.local()


        def stream_view():
            def generate():
                yield request.stream.read()

            return Response(stream_with_context(generate()))
    """,
}


def codes(result) -> set[tuple[str, int, str]]:
    return {(f.file, f.line, f.code) for f in result.flags}


def test_each_unsafe_construct_is_flagged_at_its_line(tmp_path: Path) -> None:
    _out, result = port_files(tmp_path, UNSAFE)
    found = codes(result)
    assert ("app/__init__.py", 2, "flask-extension") in found
    assert ("app/__init__.py", 16, "await-in-sync") in found  # a template global must stay sync
    assert ("app/__init__.py", 20, "sync-hook") in found  # a lambda hook stays sync (warning)
    assert ("app/stream.py", 5, "thread-local") in found
    assert ("app/stream.py", 10, "request-stream") in found
    assert ("app/stream.py", 12, "stream-with-context") in found
    assert ("app/stream.py", 9, "generator-response") in found
    extension = next(f for f in result.flags if f.code == "flask-extension")
    assert extension.severity == "error" and "quart_auth" in extension.message
    assert str(extension).startswith("app/__init__.py:2: error [flask-extension] ")
    assert next(f for f in result.flags if f.code == "sync-hook").severity == "warning"


def test_the_command_stops_with_exit_2_and_keeps_the_port(tmp_path: Path, capsys) -> None:
    write_project(tmp_path / "src", UNSAFE)
    dest = tmp_path / "dest"
    assert main([str(tmp_path / "src" / "app"), str(dest)]) == 2
    out = capsys.readouterr().out
    assert "app/stream.py:10: error [request-stream]" in out
    assert "COULD NOT PORT" in out
    assert (dest / "app" / "stream.py").exists() and (dest / "port-report.json").exists()
    assert not (dest / "compat.toml").exists()  # nothing to prove


def test_wsgi_only_and_body_limits_are_warnings(tmp_path: Path) -> None:
    _out, result = port_files(
        tmp_path,
        {
            "app/__init__.py": """
        from flask import Flask, request
        from werkzeug.middleware.proxy_fix import ProxyFix


        def create_app():
            app = Flask(__name__)
            app.wsgi_app = ProxyFix(app.wsgi_app)

            @app.before_request
            def limit():
                request.max_content_length = 10

            return app
    """
        },
    )
    by_code = {f.code: f for f in result.flags}
    assert by_code["wsgi-only"].severity == "warning" and by_code["wsgi-only"].line == 2
    assert by_code["wsgi-middleware"].severity == "error" and by_code["wsgi-middleware"].line == 7
    assert by_code["body-limit"].severity == "warning" and by_code["body-limit"].line == 11


def test_not_a_flask_project(tmp_path: Path, capsys) -> None:
    write_project(tmp_path / "src", {"lib/__init__.py": "x = 1\n"})
    assert main([str(tmp_path / "src" / "lib"), str(tmp_path / "dest"), "--no-run"]) == 2
    assert "no Flask app found" in capsys.readouterr().out
    assert main([str(tmp_path / "nowhere"), str(tmp_path / "dest2")]) == 2
