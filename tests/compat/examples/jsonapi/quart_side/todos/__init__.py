"""Todos ported to Quart: the JSON API of flask_side/, answering the same way.

Ported as Quart's migration guide says: ``from quart import ...``, ``async def`` views,
``await request.get_json()``, ``await request.form``, ``await render_template(...)``.
The todo list lives in memory, one list per app object, with two todos to start with.
"""

from __future__ import annotations

import math
import os

from quart import Quart, abort, jsonify, render_template, request, url_for

from . import flask_parity


def number(value):
    """An int or a float from JSON or from a form field; ValueError if it is not one."""
    if isinstance(value, bool):
        raise ValueError("not a number")
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            value = float(value)
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError("not a number")
    return value


def create_app(instance_path=None):
    if instance_path is not None:
        instance_path = os.path.abspath(instance_path)
    app = Quart(__name__, instance_path=instance_path)
    app.config.update(
        MAX_CONTENT_LENGTH=None,  # Flask's default: no body limit (Quart's is 16 MiB, then 413)
        SEND_FILE_MAX_AGE_DEFAULT=None,  # Flask's default: files go out with no max age (Quart's: 12 h)
    )
    flask_parity.install(app)  # static file headers, no Content-Length on a 204, as Flask sends them
    todos = {
        1: {"id": 1, "title": "Write the Flask app", "done": True},
        2: {"id": 2, "title": "Port it to Quart", "done": False},
    }
    app.extensions["todos"] = todos

    @app.errorhandler(400)
    @app.errorhandler(404)
    async def json_error(e):
        return jsonify(error=e.name, message=e.description), e.code

    @app.get("/")
    async def index():
        return await render_template("index.html", count=len(todos))

    @app.post("/add")
    async def add():
        """Add ``a`` and ``b``, sent as JSON or as form fields."""
        if request.is_json:
            data = await flask_parity.get_json()  # Flask's JSON parsing (UTF-16, BOM, bad bytes: 400)
            if not isinstance(data, dict):
                abort(400, "Send a JSON object.")
        else:
            data = await request.form
        try:
            a, b = number(data["a"]), number(data["b"])
        except KeyError as exc:
            abort(400, f"Missing field {exc.args[0]!r}.")
        except (TypeError, ValueError):
            abort(400, "a and b must be numbers.")
        return jsonify(result=a + b)

    def read_todo(data, partial):
        if not isinstance(data, dict):
            abort(400, "Send a JSON object.")
        todo = {}
        if "title" in data or not partial:
            title = data.get("title")
            if not isinstance(title, str) or not title.strip():
                abort(400, "title must be a non-empty string.")
            todo["title"] = title.strip()
        if "done" in data:
            if not isinstance(data["done"], bool):
                abort(400, "done must be true or false.")
            todo["done"] = data["done"]
        return todo

    def get_todo(todo_id):
        todo = todos.get(todo_id)
        if todo is None:
            abort(404, f"Todo {todo_id} doesn't exist.")
        return todo

    @app.get("/api/todos")
    async def list_todos():
        items = [todos[k] for k in sorted(todos)]
        done = request.args.get("done")
        if done is not None:
            if done not in ("true", "false"):
                abort(400, "done must be true or false.")
            items = [t for t in items if t["done"] == (done == "true")]
        return jsonify(count=len(items), todos=items)

    @app.post("/api/todos")
    async def create_todo():
        fields = read_todo(await flask_parity.get_json(), partial=False)  # Flask's 415 on a non-JSON body
        todo_id = max(todos, default=0) + 1
        todo = todos[todo_id] = {"id": todo_id, "title": fields["title"], "done": fields.get("done", False)}
        return jsonify(todo), 201, {"Location": url_for("get_todo_view", todo_id=todo_id)}

    @app.get("/api/todos/<int:todo_id>")
    async def get_todo_view(todo_id):
        return jsonify(get_todo(todo_id))

    @app.put("/api/todos/<int:todo_id>")
    async def update_todo(todo_id):
        todo = get_todo(todo_id)
        todo.update(read_todo(await flask_parity.get_json(), partial=True))  # Flask's 415 on a non-JSON body
        return jsonify(todo)

    @app.delete("/api/todos/<int:todo_id>")
    async def delete_todo(todo_id):
        get_todo(todo_id)
        del todos[todo_id]
        return "", 204

    return app
