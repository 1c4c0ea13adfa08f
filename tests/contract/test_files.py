"""Uploads to ``POST /demo`` and stored files on ``GET /files/<name>``."""

from __future__ import annotations

import hashlib
import mimetypes
import os
from pathlib import Path

import pytest

from .helpers import STORED_NAME_CHARS, content_prefix, file_tree

DANGEROUS_NAMES = [
    pytest.param(b"../../etc/passwd", "passwd", id="traversal"),
    pytest.param(b"/etc/passwd", "passwd", id="absolute"),
    pytest.param(b"..\\..\\windows\\system.ini", "system.ini", id="backslashes"),
    pytest.param(b"evil\x00.txt", "evil", id="nul"),
    pytest.param("r\u00e9sum\u00e9 \u6587\u4ef6.txt".encode(), ".txt", id="unicode"),
    pytest.param(b"../../../../tmp/../../x.sh", "x.sh", id="deep-traversal"),
    pytest.param(b".hidden", "hidden", id="dotfile"),
    pytest.param(b"..", None, id="dots-only"),
    pytest.param(b"../..", None, id="empty-after-sanitising"),
    pytest.param("\u6587\u4ef6".encode(), None, id="unicode-only"),
]


def stored_name(reply) -> str:
    location = reply.header("Content-Location")
    assert location and location.startswith("/files/"), location
    name = location[len("/files/") :]
    assert "/" not in name and "\\" not in name and "\x00" not in name
    return name


def check_stored_name(name: str, content: bytes, keeps: str | None) -> None:
    prefix, sep, rest = name.partition("-")
    assert sep == "-", name
    assert prefix == content_prefix(content), "the prefix is the content's hash"
    assert rest, "an empty sanitised name still gets a name"
    assert set(rest) <= STORED_NAME_CHARS, rest
    # one flat path component: never "." or "..", never hidden
    assert rest not in (".", "..") and not rest.startswith("."), rest
    if keeps is not None:
        assert keeps in rest, (keeps, rest)


@pytest.mark.parametrize("filename, keeps", DANGEROUS_NAMES)
def test_dangerous_upload_names_stay_inside_the_upload_folder(svc, tmp_path, filename, keeps):
    content = b"upload body for " + filename
    etc_passwd = os.stat("/etc/passwd").st_mtime_ns
    before = file_tree(tmp_path)
    reply = svc.upload(filename, content)
    assert reply.status == 200, reply.body[:300]
    assert reply.body == content, "send_file sends the stored file back"
    name = stored_name(reply)
    check_stored_name(name, content, keeps)
    uploads = svc.uploads.resolve()
    stored = (uploads / name).resolve()
    assert stored.parent == uploads and stored.read_bytes() == content
    # nothing else appeared anywhere under the test's folder, and no temporary file is left
    db = svc.settings.db_path
    new = {p for p in file_tree(tmp_path) - before if not p.name.startswith(db.name)}
    assert new == {svc.uploads / name}, new
    assert os.stat("/etc/passwd").st_mtime_ns == etc_passwd
    # fetched back via Content-Location
    again = svc.get(reply.header("Content-Location"), role="viewer")
    assert again.status == 200
    assert again.body == content
    assert again.header("Content-Location") == reply.header("Content-Location")


def test_same_content_and_name_reuses_the_stored_file(svc):
    first = svc.upload("report.txt", b"same bytes")
    second = svc.upload("report.txt", b"same bytes")
    assert first.status == second.status == 200
    assert stored_name(first) == stored_name(second)
    assert [p.name for p in svc.uploads.iterdir()] == [stored_name(first)]


def test_other_content_or_name_is_another_file(svc):
    names = {
        stored_name(svc.upload("report.txt", b"version 1")),
        stored_name(svc.upload("report.txt", b"version 2")),
        stored_name(svc.upload("other.txt", b"version 1")),
    }
    assert len(names) == 3
    assert {p.name for p in svc.uploads.iterdir()} == names


def test_known_mimetype_is_guessed(svc):
    reply = svc.upload("picture.png", b"\x89PNG not really")
    assert reply.status == 200
    assert reply.header("Content-Type").split(";")[0] == mimetypes.guess_type("picture.png")[0]


@pytest.mark.parametrize("filename", ["blob.zzqqx", "no_extension"])
def test_unknown_mimetype_is_octet_stream(svc, filename):
    reply = svc.upload(filename, b"\x00\x01\x02")
    assert reply.status == 200
    assert reply.header("Content-Type") == "application/octet-stream"
    fetched = svc.get(reply.header("Content-Location"), role="viewer")
    assert fetched.header("Content-Type") == "application/octet-stream"


def test_upload_with_form_fields_still_sends_the_file(svc):
    reply = svc.upload("a.txt", b"file wins", fields=[("id", "3"), ("name", "n"), ("list", "x"), ("list", "y")])
    assert reply.status == 200
    assert reply.body == b"file wins"


@pytest.mark.parametrize("chunked", [None, 65536], ids=["content-length", "chunked"])
def test_large_upload_is_stored_whole(svc, chunked):
    # larger than MAX_FORM_MEMORY_SIZE (500 kB), well under MAX_UPLOAD_LENGTH: a file, not a field
    content = os.urandom(3 * 1024 * 1024 + 17)
    reply = svc.form(fields=[("id", "1")], files=[("file", "big.bin", content)], chunked=chunked)
    assert reply.status == 200, reply.body[:200]
    assert hashlib.sha256(reply.body).digest() == hashlib.sha256(content).digest()
    assert (svc.uploads / stored_name(reply)).stat().st_size == len(content)


def test_upload_needs_admin(svc):
    for role in (None, "agent", "viewer"):
        reply = svc.upload("a.txt", b"nope", role=role)
        assert reply.status in (401, 403), role
    assert list(svc.uploads.iterdir()) == []


# ------------------------------------------------------------------------- /files/<name>


@pytest.fixture
def stored(svc):
    content = b"0123456789abcdefghij" * 5
    reply = svc.upload("notes.txt", content)
    assert reply.status == 200
    return reply.header("Content-Location"), content


def test_file_response_headers(svc, stored):
    location, content = stored
    reply = svc.get(location, role="viewer")
    assert reply.status == 200
    assert reply.body == content
    assert reply.header("Content-Length") == str(len(content))
    assert reply.header("ETag").strip('"') == content_prefix(content)
    assert reply.header("Last-Modified")
    disposition = reply.header("Content-Disposition")
    assert disposition and Path(location).name in disposition
    assert reply.header("Accept-Ranges") == "bytes"


def test_if_none_match_gives_304(svc, stored):
    location, _ = stored
    etag = svc.get(location, role="viewer").header("ETag")
    reply = svc.get(location, role="viewer", headers={"If-None-Match": etag})
    assert reply.status == 304
    assert reply.body == b""
    other = svc.get(location, role="viewer", headers={"If-None-Match": '"0000000000000000"'})
    assert other.status == 200


def test_if_modified_since_gives_304(svc, stored):
    location, content = stored
    modified = svc.get(location, role="viewer").header("Last-Modified")
    reply = svc.get(location, role="viewer", headers={"If-Modified-Since": modified})
    assert reply.status == 304
    assert reply.body == b""
    old = svc.get(location, role="viewer", headers={"If-Modified-Since": "Mon, 01 Jan 1990 00:00:00 GMT"})
    assert old.status == 200
    assert old.body == content


@pytest.mark.parametrize(
    "spec, first, last",
    [("bytes=0-3", 0, 3), ("bytes=10-19", 10, 19), ("bytes=90-", 90, None), ("bytes=-5", -5, None)],
    ids=["head", "middle", "open-ended", "suffix"],
)
def test_range_gives_206(svc, stored, spec, first, last):
    location, content = stored
    start = first % len(content)
    end = len(content) - 1 if last is None else last
    reply = svc.get(location, role="viewer", headers={"Range": spec})
    assert reply.status == 206
    assert reply.body == content[start : end + 1]
    assert reply.header("Content-Range") == f"bytes {start}-{end}/{len(content)}"
    assert reply.header("Content-Length") == str(end - start + 1)


def test_unsatisfiable_range_gives_416(svc, stored):
    location, content = stored
    reply = svc.get(location, role="viewer", headers={"Range": f"bytes={len(content) + 10}-{len(content) + 20}"})
    assert reply.status == 416
    assert reply.header("Content-Range") == f"bytes */{len(content)}"
    assert reply.header("Content-Type") == "application/json"
    assert set(reply.json()) == {"error", "message"}


def test_head_file(svc, stored):
    location, content = stored
    reply = svc.call("HEAD", location, "viewer")
    assert reply.status == 200
    assert reply.body == b""
    assert reply.header("Content-Length") == str(len(content))


@pytest.mark.parametrize(
    "target",
    [
        "/files/..%2Fconfig.toml",
        "/files/%2E%2E%2Fconfig.toml",
        "/files/..%2F..%2Fetc%2Fpasswd",
        "/files/%2Fetc%2Fpasswd",
        "/files/config.toml",
        "/files/hostpulse.sqlite3",
        "/files/..",
        "/files/.",
        "/files/0123456789abcdef-missing.txt",
        "/files/..%5Cconfig.toml",
        "/files/%00",
    ],
)
def test_files_traversal_and_unknown_names_are_404(svc, stored, target):
    reply = svc.get(target, role="viewer")
    assert reply.status == 404
    assert reply.header("Content-Type") == "application/json"
    assert reply.json()["error"] == "not_found"


def test_files_cannot_reach_a_temporary_part_file(svc, stored):
    part = svc.uploads / ".part-abcdef"
    part.write_bytes(b"partial")
    assert svc.get("/files/.part-abcdef", role="viewer").status == 404


def test_files_path_with_slashes_is_404(svc, stored):
    location, _ = stored
    name = Path(location).name
    for target in (f"/files/../uploads/{name}", f"/files/x/{name}", f"/files/{name}/"):
        assert svc.get(target, role="viewer").status == 404, target
