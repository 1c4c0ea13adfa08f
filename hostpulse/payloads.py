"""What the seed routes compute from a request, framework-free so both apps answer alike."""

from __future__ import annotations

import os
import re
from typing import Any

from hostpulse import jsondepth
from hostpulse.errors import ApiError, invalid_json, missing_field

# What ``bytes.strip()`` strips: a text's own ``strip()`` would also take Unicode spaces.
_ASCII_WHITESPACE = " \t\n\r\x0b\x0c"


def decode_json(raw: bytes | str) -> Any:
    """``json.loads`` as Flask's provider applies it, with a JSON 400 on failure (nested
    deeper than ``jsondepth.MAX_DEPTH`` too).

    Text (a WebSocket text frame) answers as its UTF-8 bytes would, without encoding it:
    ``json.loads`` reads bytes as UTF-8 unless they start with a BOM or hold a NUL among
    their first four (UTF-16 or -32), and only such text is encoded first."""
    if isinstance(raw, str):
        if raw.startswith("\ufeff") or "\x00" in raw[:4]:
            return decode_json(raw.encode("utf-8"))
        if not raw.strip(_ASCII_WHITESPACE):
            raise invalid_json("the body is empty")
        try:
            return jsondepth.loads(raw)
        except ValueError as exc:
            raise invalid_json(str(exc)) from None
    if not raw.strip():
        raise invalid_json("the body is empty")
    try:
        return jsondepth.loads(raw)
    except UnicodeDecodeError:
        raise invalid_json("the body is not UTF-8 text") from None
    except ValueError as exc:
        raise invalid_json(str(exc)) from None


def is_json_mimetype(mimetype: str) -> bool:
    """Flask's ``is_json``: ``application/json`` or ``application/*+json``."""
    return mimetype == "application/json" or (mimetype.startswith("application/") and mimetype.endswith("+json"))


def require_json(mimetype: str) -> None:
    if not is_json_mimetype(mimetype):
        raise ApiError(415, "unsupported_media_type", "this route takes an application/json body")


def legacy_echo(raw: bytes) -> str:
    """Seed 000's answer: ``request: `` and the body as text."""
    return "request: " + raw.decode("utf-8", "replace")


def legacy_list(raw: bytes) -> bool:
    """Whether a legacy post is a JSON list, the seed client's payload, and so is kept.
    Any body is echoed, but JSON nested too deep to keep is refused (400 ``invalid_json``)."""
    try:
        return isinstance(jsondepth.loads(raw), list)
    except jsondepth.TooDeep as exc:
        raise invalid_json(str(exc)) from None
    except ValueError:
        return False


def seed_data() -> dict[str, Any]:
    """Seed 001's ``GET /data/`` document: 1,000 entries keyed by number."""
    return {"data": {i: {"name": "tigerrose", "tag": "cool"} for i in range(1000)}}


def data_answer(size: int, items: int) -> dict[str, Any]:
    """Seed 001's ``POST /data/`` answer for a body of ``size`` bytes holding ``items``
    entries: built here alone, for both apps and the port's fast path (``app/unpack.py``)."""
    return {"status": "success", "bytes": size, "items": items}


def unpack(raw: bytes) -> dict[str, Any]:
    """Seed 001's ``POST /data/``: decode, copy the entries as the seed did, count them."""
    document = decode_json(raw)
    if isinstance(document, dict):
        entries = {key: document[key] for key in document}
    elif isinstance(document, list):
        entries = dict(enumerate(document))
    else:
        raise ApiError(400, "bad_request", "the body must be a JSON object or list")
    return data_answer(len(raw), len(entries))


def demo_fields(values: Any) -> dict[str, Any]:
    """``GET /demo``: the query's ``id``, ``name`` and every ``list`` value (a MultiDict)."""
    return {"id": values.get("id"), "name": values.get("name"), "list": values.getlist("list")}


def demo_id(values: Any) -> str:
    """``POST /demo`` without a file answers the id, read with ``request.values`` semantics."""
    value: str | None = values.get("id")
    if value is None:
        raise missing_field("id")
    return value


REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class _RequestIds:
    """``uuid.uuid4().hex`` 256 at a time: 4 KiB from ``os.urandom`` (one system call, not one
    a request), the version nibble 4 and the variant bits 10 set in each 16 bytes, the lot
    made hex once; an id is then a slice (0.3 µs, against 1.7 for ``uuid4().hex``). A forked
    child (a gunicorn worker) starts with none, so no two processes hand out the same ids."""

    COUNT = 256

    def __init__(self) -> None:
        self.forget()

    def forget(self) -> None:
        self.hex, self.at = "", self.COUNT

    def next(self) -> str:
        if self.at >= self.COUNT:
            raw = bytearray(os.urandom(16 * self.COUNT))
            for i in range(0, len(raw), 16):
                raw[i + 6] = raw[i + 6] & 0x0F | 0x40  # version 4
                raw[i + 8] = raw[i + 8] & 0x3F | 0x80  # variant RFC 4122
            self.hex, self.at = raw.hex(), 0
        at = self.at * 32
        self.at += 1
        return self.hex[at : at + 32]


_ids = _RequestIds()
os.register_at_fork(after_in_child=_ids.forget)


def new_request_id() -> str:
    """A fresh id, as ``uuid.uuid4().hex`` makes it."""
    return _ids.next()


def request_id(incoming: str | None) -> str:
    """Echo a well-formed incoming ``X-Request-ID``, else make a new one."""
    if incoming and REQUEST_ID.fullmatch(incoming):
        return incoming
    return new_request_id()


def elapsed_ms(started: float | None, now: float) -> str:
    return f"{(now - started) * 1000 if started is not None else 0.0:.3f}"
