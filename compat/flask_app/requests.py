"""Flask's request: a chunked body over ``MAX_CONTENT_LENGTH`` is refused 413, as by the port.

Werkzeug limits a chunked body (one the server terminates, ``wsgi.input_terminated``)
with a ``LimitedStream`` that stops silently at the limit in ``get_data()`` (so a
truncated body reached the view) and raises on any read at the limit even when nothing
is left. Here the answer is 413 exactly when the body has more bytes than the limit.

A malformed chunked body (a bad chunk size, a chunk extension outside RFC 9112's grammar)
made gunicorn's reader raise its parse error inside the view: a 500 and a traceback. Any
such error of the server's input stream is a 400 ``bad_request`` here (the port refuses
the same bodies with 400: ``app/protocol.py``); gunicorn closes the connection after it.
"""

from __future__ import annotations

from typing import IO, Any

from flask import Request as FlaskRequest
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import BadRequest, HTTPException, RequestEntityTooLarge
from werkzeug.utils import cached_property
from werkzeug.wsgi import LimitedStream

from hostpulse import jsondepth


class ServerInput:
    """The server's ``wsgi.input``, its parse errors raised as 400 (a disconnect, an
    ``OSError``, is left to Werkzeug, which answers it ``ClientDisconnected``)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream

    def _call(self, method: str, *args: Any) -> Any:
        try:
            return getattr(self._stream, method)(*args)
        except (OSError, ValueError, HTTPException):
            raise
        except Exception as exc:  # gunicorn's InvalidChunkSize, InvalidChunkExtension, ...
            raise BadRequest(f"the request body is malformed: {exc}") from None

    def read(self, *args: Any) -> bytes:
        return self._call("read", *args)

    def readline(self, *args: Any) -> bytes:
        return self._call("readline", *args)

    def readlines(self, *args: Any) -> list[bytes]:
        return self._call("readlines", *args)

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()

    def __iter__(self) -> ServerInput:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line


class MaxLengthStream(LimitedStream):
    def __init__(self, stream: IO[bytes], limit: int) -> None:
        super().__init__(stream, limit, is_max=True)
        self._raw = stream

    def on_exhausted(self) -> None:
        if self._raw.read(1):
            raise RequestEntityTooLarge()

    def readall(self) -> bytes:
        data = super().readall()
        if self.is_exhausted:
            self.on_exhausted()
        return data


class Request(FlaskRequest):
    @cached_property
    def stream(self) -> IO[bytes]:  # type: ignore[override]
        if not isinstance(self.environ["wsgi.input"], ServerInput):
            self.environ["wsgi.input"] = ServerInput(self.environ["wsgi.input"])
        limit = self.max_content_length
        if self.content_length is None and limit is not None and "wsgi.input_terminated" in self.environ:
            return MaxLengthStream(self.environ["wsgi.input"], limit)
        return super().stream


class JSONProvider(DefaultJSONProvider):
    """Flask's provider, decoding with the depth rule both apps share (``hostpulse.jsondepth``):
    ``get_json(silent=True)`` ignores a body nested too deep, as any other unreadable body,
    where ``json.loads`` raised ``RecursionError`` through it (a 500)."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return jsondepth.loads(s, **kwargs)
