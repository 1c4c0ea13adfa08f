"""A small stateful notes service in Flask: an app the compat suite did not grow up with.

Used by tests/compat to show that ``python -m compat`` checks any Flask -> Quart port given
both factories. Notes live in ``<instance>/notes.json``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException


def create_app(instance_path: str | None = None) -> Flask:
    folder = instance_path or os.environ.get("HOSTPULSE_INSTANCE") or str(Path("instance").absolute())
    app = Flask(__name__, instance_path=folder)
    store = Path(folder) / "notes.json"

    def load() -> dict:
        if store.exists():
            return json.loads(store.read_text())
        return {"next": 1, "notes": {}}

    def save(data: dict) -> None:
        store.write_text(json.dumps(data))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        response = jsonify(error=exc.name.lower().replace(" ", "_"), message=exc.description)
        response.status_code = exc.code or 500
        return response

    @app.get("/")
    def index():
        return "notes service"

    @app.get("/notes")
    def list_notes():
        data = load()
        notes = [data["notes"][k] for k in sorted(data["notes"], key=int)]
        tag = request.args.get("tag")
        if tag:
            notes = [n for n in notes if tag in n["tags"]]
        return jsonify(count=len(notes), notes=notes)

    @app.post("/notes")
    def create_note():
        body = request.get_json()
        if not isinstance(body, dict) or not isinstance(body.get("text"), str):
            return jsonify(error="missing_field", message="text is required"), 400
        data = load()
        note = {"id": data["next"], "text": body["text"], "tags": list(body.get("tags", []))}
        data["notes"][str(note["id"])] = note
        data["next"] += 1
        save(data)
        return jsonify(note), 201, {"Location": f"/notes/{note['id']}"}

    @app.get("/notes/<int:note_id>")
    def get_note(note_id: int):
        note = load()["notes"].get(str(note_id))
        if note is None:
            return jsonify(error="not_found", message="no such note"), 404
        return jsonify(note)

    @app.get("/notes/<int:note_id>/text")
    def note_text(note_id: int):
        note = load()["notes"].get(str(note_id))
        if note is None:
            return jsonify(error="not_found", message="no such note"), 404
        return note["text"], 200, {"Content-Type": "text/plain; charset=utf-8"}

    @app.delete("/notes/<int:note_id>")
    def delete_note(note_id: int):
        data = load()
        if data["notes"].pop(str(note_id), None) is None:
            return jsonify(error="not_found", message="no such note"), 404
        save(data)
        return "", 204

    return app
