"""Issue 11, item 12: leftovers and symlinks.

The ``.part-*`` file of an upload cut by ``kill -9`` stayed in ``uploads/`` for good: a
service now sweeps, at its start, the part files no living upload holds. Symlinks were
followed: ``scripts/passwd.py -> /etc/passwd`` was run and its first line shown in a
poll's SyntaxError, and a symlink in ``uploads/`` served the instance's ``config.toml`` to a
viewer. Only a regular file inside its folder is run or served, both apps alike.
"""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

import pytest

from hostpulse import uploads
from tests.faults.live_jobs import ADMIN, VIEWER, JobsService, eventually

SECRET = "SECRET-FIRST-LINE = 'not for a job to show'\n"


def parts(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob(".part-*"))


def test_a_part_file_of_an_upload_cut_by_kill_9_is_swept_at_the_next_start(services, tmp_path):
    service = JobsService(tmp_path / "quart", "quart")
    services.append(service)
    service.start()
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    total = 64 * 1024 * 1024
    conn = socket.create_connection(("127.0.0.1", service.port), timeout=60)
    try:
        conn.sendall(
            (
                f"POST /demo HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {ADMIN}\r\n"
                f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                f"Content-Length: {total}\r\n\r\n"
            ).encode()
            + head
        )
        block = os.urandom(1024 * 1024)
        for _ in range(4):  # a part of the file: the upload is being written
            conn.sendall(block)
        eventually(lambda: parts(service.uploads), "the upload's part file", timeout=30)
        service.kill()
    finally:
        conn.close()
    left = parts(service.uploads)
    assert left, "kill -9 left the part file (the case to sweep)"
    service.start()
    assert parts(service.uploads) == [], f"{left} still there after a restart"


@pytest.mark.parametrize("flavour", ["quart", "flask"])
def test_both_apps_sweep_dead_part_files_and_keep_stored_uploads(services, tmp_path, flavour):
    service = JobsService(tmp_path / flavour, flavour)
    services.append(service)
    service.uploads.mkdir()
    (service.uploads / ".part-k1ll3d").write_bytes(b"half an upload")
    stored = service.uploads / "0123456789abcdef-kept.txt"
    stored.write_bytes(b"a stored upload")
    service.start()
    assert parts(service.uploads) == []
    assert stored.read_bytes() == b"a stored upload"


def test_a_part_file_an_upload_still_writes_is_not_swept(tmp_path):
    """A worker starting while another one receives an upload leaves that upload alone."""
    sink = uploads.UploadSink(tmp_path, 1024)
    try:
        sink.write(b"arriving")
        assert uploads.sweep_parts(tmp_path) == []
        assert len(parts(tmp_path)) == 1
    finally:
        sink.abort()
    (tmp_path / ".part-dead").write_bytes(b"left by a dead writer")
    assert uploads.sweep_parts(tmp_path) == [".part-dead"]
    assert parts(tmp_path) == []


@pytest.mark.parametrize("flavour", ["quart", "flask"])
def test_a_symlinked_script_is_not_run(services, tmp_path, flavour):
    service = JobsService(tmp_path / flavour, flavour)
    services.append(service)
    secret = tmp_path / f"secret-{flavour}.txt"
    secret.write_text(SECRET)
    (service.scripts / "passwd.py").symlink_to(secret)
    service.start()
    status, answer = service.exec("passwd", "python3 passwd.py")
    assert (status, answer["error"], answer["status"]) == (403, "command_rejected", "rejected"), answer
    assert "SECRET" not in str(answer)
    assert service.request("GET", "/api/poll/passwd")[0] == 404, "nothing was started"


@pytest.mark.parametrize("flavour", ["quart", "flask"])
def test_a_symlink_in_uploads_is_not_served(services, tmp_path, flavour):
    service = JobsService(tmp_path / flavour, flavour)
    services.append(service)
    service.uploads.mkdir()
    name = "0123456789abcdef-config.toml"
    (service.uploads / name).symlink_to(service.instance / "config.toml")
    service.start()
    status, answer = service.request("GET", f"/files/{name}", token=VIEWER)
    assert status == 404, (status, answer)
    assert isinstance(answer, dict) and answer["error"] == "not_found"
