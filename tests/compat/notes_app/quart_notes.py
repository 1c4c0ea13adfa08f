"""The Quart port of flask_notes.py, written the way a port is usually first written.

It keeps one real difference that the compat suite must report: ``await request.get_json()``
returns None for a body that is not declared JSON, where Flask's ``get_json()`` answers 415;
this port then answers 400 (scenario ``create-wrong-content-type``).

One more difference the suite found has been pinned: Quart sends ``Content-Length: 0`` with a
204 (Hypercorn passes it on), Flask sends none (scenario ``create-read-delete/delete``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from quart import Quart, jsonify, make_response, request
from werkzeug.exceptions import HTTPException


def create_app(instance_path: str | None = None) -> Quart:
    folder = instance_path or os.environ.get("HOSTPULSE_INSTANCE") or str(Path("instance").absolute())
    app = Quart(__name__, instance_path=folder)
    store = Path(folder) / "notes.json"

    def load() -> dict:
        if store.exists():
            return json.loads(store.read_text())
        return {"next": 1, "notes": {}}

    def save(data: dict) -> None:
        store.write_text(json.dumps(data))

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException):
        response = jsonify(error=exc.name.lower().replace(" ", "_"), message=exc.description)
        response.status_code = exc.code or 500
        return response

    @app.get("/")
    async def index():
        return "notes service"

    @app.get("/notes")
    async def list_notes():
        data = load()
        notes = [data["notes"][k] for k in sorted(data["notes"], key=int)]
        tag = request.args.get("tag")
        if tag:
            notes = [n for n in notes if tag in n["tags"]]
        return jsonify(count=len(notes), notes=notes)

    @app.post("/notes")
    async def create_note():
        body = await request.get_json()
        if not isinstance(body, dict) or not isinstance(body.get("text"), str):
            return jsonify(error="missing_field", message="text is required"), 400
        data = load()
        note = {"id": data["next"], "text": body["text"], "tags": list(body.get("tags", []))}
        data["notes"][str(note["id"])] = note
        data["next"] += 1
        save(data)
        return jsonify(note), 201, {"Location": f"/notes/{note['id']}"}

    @app.get("/notes/<int:note_id>")
    async def get_note(note_id: int):
        note = load()["notes"].get(str(note_id))
        if note is None:
            return jsonify(error="not_found", message="no such note"), 404
        return jsonify(note)

    @app.get("/notes/<int:note_id>/text")
    async def note_text(note_id: int):
        note = load()["notes"].get(str(note_id))
        if note is None:
            return jsonify(error="not_found", message="no such note"), 404
        return note["text"], 200, {"Content-Type": "text/plain; charset=utf-8"}

    @app.delete("/notes/<int:note_id>")
    async def delete_note(note_id: int):
        data = load()
        if data["notes"].pop(str(note_id), None) is None:
            return jsonify(error="not_found", message="no such note"), 404
        save(data)
        response = await make_response("", 204)
        del response.headers["Content-Length"]  # pinned: Flask sends none with a 204
        return response

    return app
