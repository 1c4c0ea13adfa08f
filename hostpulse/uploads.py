"""Upload naming and storage: a content-hash prefix and the sanitised name, inside one folder.

A file is written to a hidden temporary name as it arrives, hashed on the way, and only
renamed into place once complete; an aborted upload leaves nothing behind. An upload cut by
``kill -9`` leaves its ``.part-<pid>-*`` file: each service start sweeps those no living
upload holds (the writer keeps an exclusive ``flock`` on its part file while it writes).
Only a regular file is ever served: a symlink or anything else in the folder is not found.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import mimetypes
import os
import re
import stat
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


PART_PREFIX = ".part-"


def resolve(folder: Path, name: str) -> Path | None:
    """The stored file for a URL name, or None; never a path outside the folder, and only a
    regular file (a symlink there is not followed: one served ``config.toml`` to a viewer)."""
    if not STORED_NAME.fullmatch(name) or name.startswith("."):
        return None
    path = folder / name
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return path if stat.S_ISREG(info.st_mode) else None


def _writer_alive(name: str) -> bool:
    """Whether the process a part file's name gives (``.part-<pid>-...``) runs, other than
    this one (an upload being set up: created, not yet locked)."""
    try:
        pid = int(name[len(PART_PREFIX) :].split("-", 1)[0])
    except ValueError:
        return False
    if pid == os.getpid():
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:  # a zombie has exited (its locks are gone)
            return fh.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except FileNotFoundError:
        return False
    except OSError:  # no /proc here
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True


def sweep_parts(folder: Path) -> list[str]:
    """Remove the part files of uploads whose writer is gone (cut by ``kill -9``): those
    nobody holds locked; the names removed. A part file an upload still writes stays."""
    removed: list[str] = []
    try:
        names = [n for n in os.listdir(folder) if n.startswith(PART_PREFIX)]
    except FileNotFoundError:
        return removed
    for name in names:
        path = os.path.join(folder, name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # a symlink: not an upload's, removed all the same
                os.unlink(path)
                removed.append(name)
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # an upload in progress holds it
        else:
            if not _writer_alive(name):
                os.unlink(path)
                removed.append(name)
        finally:
            os.close(fd)
    return sorted(removed)


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
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f"{PART_PREFIX}{os.getpid()}-")
        fcntl.flock(fd, fcntl.LOCK_EX)  # held while it writes: a sweep leaves it alone
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
