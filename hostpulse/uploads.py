"""Upload naming and storage: a content-hash prefix and the sanitised name, inside one folder.

A file is written to a hidden temporary name as it arrives, hashed on the way, and only
renamed into place once complete; an aborted upload leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import re
import tempfile
from pathlib import Path

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.utils import secure_filename

STORED_NAME = re.compile(r"[0-9a-f]{16}-[A-Za-z0-9._-]{1,200}")
DEFAULT_MIMETYPE = "application/octet-stream"


def clean_name(filename: str) -> str:
    """A name safe on any file system: ``../../etc/passwd`` -> ``etc_passwd``."""
    name = secure_filename(filename.replace("\x00", ""))[:200]
    return name or "upload"


def resolve(folder: Path, name: str) -> Path | None:
    """The stored file for a URL name, or None; never a path outside the folder."""
    if not STORED_NAME.fullmatch(name) or name.startswith("."):
        return None
    path = folder / name
    return path if path.is_file() else None


def mimetype_of(name: str) -> str:
    return mimetypes.guess_type(name)[0] or DEFAULT_MIMETYPE


def etag_of(stored_name: str) -> str:
    """The content-hash prefix of a stored name: the same bytes give the same ETag."""
    return stored_name.split("-", 1)[0]


class UploadSink:
    """Receives one file's chunks; ``commit`` names it by content, ``abort`` removes it."""

    def __init__(self, folder: Path, limit: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.limit = limit
        self.size = 0
        self._hash = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".part-")
        self._tmp = Path(tmp)
        self._file = os.fdopen(fd, "wb")

    def write(self, chunk: bytes) -> None:
        """Over the limit: 413, and the caller aborts."""
        self.size += len(chunk)
        if self.size > self.limit:
            raise RequestEntityTooLarge()
        self._hash.update(chunk)
        self._file.write(chunk)

    def commit(self, filename: str) -> str:
        self._file.close()
        name = f"{self._hash.hexdigest()[:16]}-{clean_name(filename)}"
        os.replace(self._tmp, self.folder / name)
        return name

    def abort(self) -> None:
        self._file.close()
        self._tmp.unlink(missing_ok=True)
