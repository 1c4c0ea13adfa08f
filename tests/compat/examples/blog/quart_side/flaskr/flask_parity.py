"""Where Flask 3.1 / Werkzeug 3.1 answer otherwise than Quart 0.22, pinned to Flask's answer.

Each item was reported by the compat suite (``python -m compat --config compat.toml``) with
its catalogue entry (compat/known.py); ``install(app)`` applies them all.
"""

from __future__ import annotations

import mimetypes
import os
import unicodedata
from urllib.parse import quote

from quart import request, session
from quart import send_from_directory as quart_send_from_directory
from quart.sessions import SecureCookieSession, SecureCookieSessionInterface
from quart.wrappers.response import FileBody
from werkzeug.datastructures import Range
from werkzeug.exceptions import RequestedRangeNotSatisfiable
from werkzeug.http import remove_entity_headers


class ReadTrackingSession(SecureCookieSession):
    """A session that records reads (known: vary-cookie)."""


def _reading(name: str):
    def method(self, *args, **kwargs):
        self.accessed = True  # Flask 3.1 marks any use of the session, then sends Vary: Cookie
        return getattr(SecureCookieSession, name)(self, *args, **kwargs)

    method.__name__ = name
    return method


for _name in ("__getitem__", "__contains__", "__iter__", "__len__", "get", "keys", "values", "items",
              "pop", "popitem", "setdefault", "clear", "update", "__setitem__", "__delitem__", "copy"):
    setattr(ReadTrackingSession, _name, _reading(_name))
del _name


class ReadTrackingSessionInterface(SecureCookieSessionInterface):
    session_class = ReadTrackingSession


async def session_read_by_templates() -> dict:
    session.accessed = True  # Flask's template context reads ctx.session, which marks it accessed
    return {}


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
    app.session_interface = ReadTrackingSessionInterface()  # Vary: Cookie once the session is used
    app.context_processor(session_read_by_templates)  # ... and on every rendered template, as Flask

    async def static(filename: str):
        return await send_from_directory(app.static_folder, filename)

    app.view_functions["static"] = static  # Flask's send_static_file headers (see send_from_directory)
    app.after_request(bodiless_headers)  # a 204/304 without the headers Werkzeug drops
