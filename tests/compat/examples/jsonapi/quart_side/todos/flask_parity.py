"""Where Flask 3.1 / Werkzeug 3.1 answer otherwise than Quart 0.22, pinned to Flask's answer.

Each item was reported by the compat suite (``python -m compat --config compat.toml``) with
its catalogue entry (compat/known.py); ``install(app)`` applies them all, the views read
JSON with ``get_json()``.
"""

from __future__ import annotations

import mimetypes
import os
import unicodedata
from urllib.parse import quote

from quart import current_app, request
from quart import send_from_directory as quart_send_from_directory
from quart.wrappers.response import FileBody
from werkzeug.datastructures import Range
from werkzeug.exceptions import BadRequest, RequestedRangeNotSatisfiable, UnsupportedMediaType
from werkzeug.http import remove_entity_headers


async def get_json():
    """``await request.get_json()`` answering as Flask's ``request.get_json()`` does."""
    if not request.is_json:  # Flask (Werkzeug >= 2.3) answers 415; Quart's get_json returns None
        raise UnsupportedMediaType(
            "Did not attempt to load JSON data because the request Content-Type was not 'application/json'."
        )
    try:
        # Flask parses the bytes (json.loads detects UTF-16/32 and a BOM); Quart decodes them as
        # UTF-8 first: 500 on other bytes (UnicodeDecodeError), 400 on a BOM
        return current_app.json.loads(await request.get_data())
    except ValueError:
        raise BadRequest() from None  # Flask's answer to a body that does not parse (unless debug)


class _WerkzeugRangeFileBody(FileBody):
    async def make_conditional(self, begin: int, end: int | None) -> int:
        # Werkzeug's Range.range_for_length picks the bytes (bytes=-N too, where Quart fails with 500)
        span = Range("bytes", [(begin, end)]).range_for_length(self.size)
        if span is None:
            raise RequestedRangeNotSatisfiable(self.size)
        return await super().make_conditional(*span)


async def send_from_directory(directory: str, filename: str):
    """A file as Flask's send_from_directory sends it (Werkzeug's send_file, conditional)."""
    response = await quart_send_from_directory(directory, filename, conditional=False)
    size = response.content_length
    response.response = _WerkzeugRangeFileBody(response.response.file_path)
    name = os.path.basename(response.response.file_path)
    try:
        name.encode("ascii")
        names = {"filename": name}
    except UnicodeEncodeError:  # Werkzeug: an ASCII fallback plus the RFC 5987 filename*
        simple = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
        names = {"filename": simple, "filename*": f"UTF-8''{quote(name, safe='!#$&+-.^_`|~')}"}
    response.headers.set("Content-Disposition", "inline", **names)  # Werkzeug names every file inline
    encoding = mimetypes.guess_type(name)[1]
    if encoding is not None:  # Werkzeug sends the guessed encoding of e.g. a .gz file
        response.headers["Content-Encoding"] = encoding
    response.cache_control.public = False  # Werkzeug with max_age=None: Cache-Control: no-cache only
    response.cache_control.no_cache = True
    for header in ("Range", "If-Range", "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since"):
        values = request.headers.getlist(header)
        if len(values) > 1:  # a WSGI server joins a repeated header with ",", Flask reads that; Quart the first
            request.headers[header] = ",".join(values)
    try:
        await response.make_conditional(request, accept_ranges=True, complete_length=size)
    except RequestedRangeNotSatisfiable:
        raise RequestedRangeNotSatisfiable(size) from None  # Werkzeug's 416 always has Content-Range
    if request.method in ("GET", "HEAD"):
        response.headers["Accept-Ranges"] = "bytes"  # Werkzeug 3.1 sends it on every conditional answer
    return response


async def bodiless_headers(response):
    # Werkzeug's get_wsgi_headers: no Content-Length on 1xx/204, no entity headers on a 304
    if response.status_code == 204 or 100 <= response.status_code < 200:
        response.headers.remove("Content-Length")
    elif response.status_code == 304:
        remove_entity_headers(response.headers)
    return response


def install(app) -> None:
    async def static(filename: str):
        return await send_from_directory(app.static_folder, filename)

    app.view_functions["static"] = static  # Flask's send_static_file headers (see send_from_directory)
    app.after_request(bodiless_headers)  # a 204/304 without the headers Werkzeug drops
