"""File responses: Quart's ``send_file``, pinned to what Flask's ``send_file`` sends.

Quart's ``send_file`` is the older API: ``Cache-Control: public`` with a max age and
``Expires``, no ``Content-Disposition``, its ETag from the path and mtime, ``Accept-Ranges``
only on partial answers, entity headers kept on a 304, no ``Content-Range`` on a 416. Each
of those is set here to Flask's answer (README, "Flask vs Quart: what the port pins").
"""

from __future__ import annotations

from pathlib import Path

from quart import Response, request, send_file
from quart.wrappers.response import FileBody
from werkzeug.exceptions import RequestedRangeNotSatisfiable
from werkzeug.http import remove_entity_headers

from hostpulse.uploads import etag_of, mimetype_of

# Quart reads a file response 8 KiB at a time, each read a thread hop: 200 MB took 5.8 s
# (measured here). 256 KiB a read is ~20x faster and holds 256 KiB per download.
READ_BUFFER = 256 * 1024


class StoredFileBody(FileBody):
    """Quart's file body, also for a suffix range (``bytes=-N``), which Quart passes on as a
    negative start and then fails on (500); Werkzeug sends the last N bytes, and answers 416
    when N is more than the file's size (RFC 9110 would send the whole file: pinned to Flask).

    Quart asks the file for its position before every read, a second thread hop a chunk
    (4,096 extra hops for 1 GiB); the position is kept here instead."""

    buffer_size = READ_BUFFER
    _at = 0

    async def __aenter__(self) -> StoredFileBody:
        await super().__aenter__()
        self._at = self.begin
        return self

    async def __anext__(self) -> bytes:
        if self._at >= self.end:
            raise StopAsyncIteration()
        assert self.file is not None, "opened by __aenter__"
        chunk: bytes = await self.file.read(min(self.buffer_size, self.end - self._at))
        if not chunk:
            raise StopAsyncIteration()
        self._at += len(chunk)
        return chunk

    async def make_conditional(self, begin: int, end: int | None) -> int:
        if begin < 0:
            if self.size + begin < 0:  # a suffix longer than the file: 416, as Werkzeug answers
                raise RequestedRangeNotSatisfiable()
            begin, end = self.size + begin, None
        return await super().make_conditional(begin, end)


async def send_stored(path: Path) -> Response:
    """A stored upload as Flask's ``send_file(path, mimetype, etag, conditional=True)`` sends it."""
    name = path.name
    response = await send_file(path, mimetype=mimetype_of(name), add_etags=False)
    response.response = StoredFileBody(path)
    size = response.content_length
    response.headers["Content-Disposition"] = f"inline; filename={name}"
    response.cache_control.public = False
    response.cache_control.max_age = None
    response.cache_control.no_cache = True
    response.headers.pop("Expires", None)
    response.set_etag(etag_of(name))
    response.headers["Content-Location"] = f"/files/{name}"
    try:
        await response.make_conditional(request, accept_ranges=True, complete_length=size)
    except RequestedRangeNotSatisfiable:
        raise RequestedRangeNotSatisfiable(length=size) from None
    if request.method in ("GET", "HEAD"):
        response.headers["Accept-Ranges"] = "bytes"
    if response.status_code == 304:
        remove_entity_headers(response.headers)
    return response
