"""Request builders and waiting helpers for the contract tests (no fixtures here)."""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

#: the known token of each role in every test instance's config
TOKENS: dict[str, str] = {
    "admin": "contract-admin-token-7d1f0c2a9b",
    "viewer": "contract-viewer-token-4e8a6b3c1d",
    "agent": "contract-agent-token-2b9c5d7e0f",
}
#: a token no instance knows
UNKNOWN_TOKEN = "contract-unknown-token-000000000"

#: the characters a stored name may have after its hash prefix: portable, no separators
STORED_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def compact_json(value: Any) -> bytes:
    """Flask 3's default provider output: compact, keys sorted, ASCII-escaped, one newline."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=True).encode() + b"\n"


def json_of_size(size: int) -> bytes:
    """A valid JSON object of exactly ``size`` bytes (size >= 8)."""
    base = b'{"a":""}'
    assert size >= len(base)
    body = b'{"a":"' + b"x" * (size - len(base)) + b'"}'
    assert len(body) == size
    json.loads(body)
    return body


def chunks(data: bytes, size: int = 97) -> list[bytes]:
    """``data`` cut into pieces, to send as a chunked request (no Content-Length)."""
    return [data[i : i + size] for i in range(0, len(data), size)]


def multipart(
    fields: Sequence[tuple[str, str | bytes]] = (),
    files: Sequence[tuple[str, str | bytes, bytes]] = (),
    file_type: str = "application/octet-stream",
) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body and its Content-Type.

    File names are written into the part header as raw bytes (UTF-8 for ``str``), the way
    browsers send them, so names with ``..``, ``/``, NUL or non-ASCII reach the server as is.
    """
    boundary = "contract-" + uuid.uuid4().hex
    out = bytearray()
    for name, value in fields:
        raw = value.encode("utf-8") if isinstance(value, str) else value
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += raw + b"\r\n"
    for name, filename, content in files:
        raw_name = filename.encode("utf-8") if isinstance(filename, str) else filename
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="'.encode()
        out += raw_name + f'"\r\nContent-Type: {file_type}\r\n\r\n'.encode()
        out += content + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def content_prefix(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()[:16]


def wait_for(probe: Callable[[], T | None], timeout: float = 20.0, interval: float = 0.02, what: str = "") -> T:
    """Call ``probe`` until it returns something truthy; fail after ``timeout`` seconds.

    This waits for a condition, it never asserts how long it took.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting after {timeout}s for {what or probe}")
        time.sleep(interval)


def pid_alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie (Linux ``/proc``)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def file_tree(root: Path) -> set[Path]:
    """Every file and folder under ``root`` (to see what a request wrote)."""
    found = set()
    for folder, dirs, names in os.walk(root):
        for name in dirs + names:
            found.add(Path(folder) / name)
    return found
