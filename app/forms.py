"""Form bodies for ``POST /demo``: fields in memory, the upload streamed to disk as it arrives.

Werkzeug's ``MultiPartParser`` (which Flask uses) is followed event for event, so
both apps accept, refuse and limit the same bodies; only the file part goes to an
``UploadSink`` instead of a spooled temporary file, in writes done off the loop.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

from quart import request
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser, MultiPartParser
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from hostpulse.settings import Settings
from hostpulse.uploads import UploadSink

from .requests import check_declared_length, read_body

WRITE_SIZE = 1024 * 1024
_charset = MultiPartParser().get_part_charset


@dataclass
class Upload:
    sink: UploadSink
    filename: str


async def read_form(settings: Settings, field: str = "file") -> tuple[MultiDict[str, str], Upload | None]:
    """The form fields, and the first file part named ``field`` if it has a file name."""
    limits = settings.limits
    if request.mimetype == "application/x-www-form-urlencoded":
        raw = await read_body(limits.max_content_length)
        parser = FormDataParser(max_form_memory_size=limits.max_form_memory_size, max_form_parts=limits.max_form_parts)
        _, form, _ = parser.parse(io.BytesIO(raw), request.mimetype, len(raw), request.mimetype_params)
        return form, None
    if request.mimetype != "multipart/form-data":
        return MultiDict(), None
    boundary = request.mimetype_params.get("boundary", "").encode("ascii", "replace")
    if not boundary:
        return MultiDict(), None
    check_declared_length(limits.max_upload_length)
    reader = _MultipartReader(settings, boundary, field)
    try:
        return await reader.run()
    except ValueError:
        # Werkzeug's parser is silent about malformed bodies: an empty form.
        await reader.discard()
        return MultiDict(), None
    except BaseException:
        await reader.discard()
        raise


class _MultipartReader:
    def __init__(self, settings: Settings, boundary: bytes, field: str) -> None:
        limits = settings.limits
        self.settings = settings
        self.field = field
        self.limit = limits.max_upload_length
        self.max_field = limits.max_form_memory_size
        self.decoder = MultipartDecoder(boundary, max_form_memory_size=self.max_field, max_parts=limits.max_form_parts)
        self.fields: list[tuple[str, str]] = []
        self.upload: Upload | None = None
        self.seen_file = False
        self.pending = bytearray()

    async def run(self) -> tuple[MultiDict[str, str], Upload | None]:
        received = 0
        part: Field | File | None = None
        target: str = "skip"  # field | upload | skip
        value = bytearray()
        async for chunk in _chunks(request.body):
            if chunk is not None:
                received += len(chunk)
                if received > self.limit:
                    raise RequestEntityTooLarge()
            self.decoder.receive_data(chunk)
            event = self.decoder.next_event()
            while not isinstance(event, (Epilogue, NeedData)):
                if isinstance(event, Field):
                    part, target, value = event, "field", bytearray()
                elif isinstance(event, File):
                    part, target = event, "skip"
                    if event.name == self.field and not self.seen_file:
                        self.seen_file = True
                        if event.filename:
                            sink = await asyncio.to_thread(UploadSink, self.settings.uploads, self.limit)
                            self.upload = Upload(sink, event.filename)
                            target = "upload"
                elif isinstance(event, Data):
                    if target == "field":
                        value += event.data
                        if len(value) > self.max_field:
                            raise RequestEntityTooLarge()
                        if not event.more_data:
                            assert part is not None
                            self.fields.append((part.name, value.decode(_charset(part.headers), "replace")))
                    elif target == "upload":
                        self.pending += event.data
                        if len(self.pending) >= WRITE_SIZE or not event.more_data:
                            await self._flush()
                event = self.decoder.next_event()
        return MultiDict(self.fields), self.upload

    async def _flush(self) -> None:
        if self.upload and self.pending:
            data, self.pending = bytes(self.pending), bytearray()
            await asyncio.to_thread(self.upload.sink.write, data)

    async def discard(self) -> None:
        if self.upload is not None:
            await asyncio.to_thread(self.upload.sink.abort)
            self.upload = None


# Werkzeug's parser reads the body in blocks of 64 KiB and feeds its decoder each whole
# block; the port feeds the same blocks, whatever pieces the network delivers. Larger pieces
# would be refused (the decoder answers 413 to a chunk over max_form_memory_size), and
# smaller ones change what the decoder yields: a piece ending between the two dashes that
# close the body gave a field value ending in "\r" under a slow client (compat found
# "chunked\r" against gunicorn's "chunked"; tests/faults/test_form_pieces.py).
FEED_SIZE = 64 * 1024


async def _chunks(body: AsyncIterable[bytes]) -> AsyncIterator[bytes | None]:
    """The body in blocks of ``FEED_SIZE`` (the last one shorter), then ``None``: the end."""
    pending = bytearray()
    async for chunk in body:
        pending += chunk
        while len(pending) >= FEED_SIZE:
            yield bytes(pending[:FEED_SIZE])
            del pending[:FEED_SIZE]
    if pending:
        yield bytes(pending)
    yield None
