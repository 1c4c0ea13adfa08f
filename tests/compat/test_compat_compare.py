"""What counts as a difference, what is noise, and how JSON is compared."""

from __future__ import annotations

from compat.clients import Reply
from compat.compare import (
    LIVE_TRANSPORT_HEADERS,
    TRANSPORT_HEADERS,
    Noise,
    compare,
    learn_noise,
    mask_json,
    text_shape,
)

JSON = [("Content-Type", "application/json")]


def kinds(outcome):
    return sorted(d.key() for d in outcome.differences)


def test_header_names_compare_case_insensitively_and_transport_headers_are_ignored():
    a = Reply(200, [("Content-Type", "text/plain"), ("Date", "Mon"), ("Server", "gunicorn")], b"x")
    b = Reply(200, [("content-type", "text/plain"), ("date", "Tue"), ("server", "hypercorn")], b"x")
    assert kinds(compare(a, b, Noise(), ignore=TRANSPORT_HEADERS)) == []


def test_each_kind_of_difference_is_reported():
    a = Reply(200, [("Content-Type", "text/plain"), ("X-Only-A", "1"), ("Location", "/login")], b"abc")
    b = Reply(201, [("Content-Type", "text/plain"), ("X-Only-B", "1"), ("Location", "http://x/login")], b"abd")
    assert kinds(compare(a, b, Noise(), ignore=TRANSPORT_HEADERS)) == [
        "body:body",
        "header-extra:x-only-b",
        "header-missing:x-only-a",
        "header-value:location",
        "status:status",
    ]


def test_repeated_header_values_are_compared_in_order():
    a = Reply(200, [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")], b"")
    b = Reply(200, [("set-cookie", "b=2"), ("set-cookie", "a=1")], b"")
    assert kinds(compare(a, b, Noise(), ignore=TRANSPORT_HEADERS)) == ["header-value:set-cookie"]


def test_json_spacing_key_order_and_escaping_are_differences():
    ref = Reply(200, JSON, b'{"a":1,"b":"\\u00e9"}\n')
    spaced = Reply(200, JSON, b'{"a": 1, "b": "\\u00e9"}\n')
    reordered = Reply(200, JSON, b'{"b":"\\u00e9","a":1}\n')
    raw = Reply(200, JSON, '{"a":1,"b":"\u00e9"}\n'.encode())
    for other, word in ((spaced, "whitespace"), (reordered, "key order"), (raw, "escaping")):
        out = compare(ref, other, Noise(), ignore=TRANSPORT_HEADERS)
        assert kinds(out) == ["json-format:body"]
        assert word in out.differences[0].detail


def test_json_values_are_diffed_by_path():
    ref = Reply(200, JSON, b'{"a":{"b":[1,2]},"c":"x"}')
    cand = Reply(200, JSON, b'{"a":{"b":[1,3]},"d":"x"}')
    assert kinds(compare(ref, cand, Noise(), ignore=TRANSPORT_HEADERS)) == ["json:$.a.b[1]", "json:$.c", "json:$.d"]


def test_noise_is_learnt_from_two_reference_answers_and_compared_by_shape():
    p = Reply(200, JSON + [("X-Request-ID", "3f2a9b1c4d5e6f708192a3b4c5d6e7f8")], b'{"id":"9f8e7d6c5b4a","n":1}')
    s = Reply(200, JSON + [("X-Request-ID", "0a1b2c3d4e5f60718293a4b5c6d7e8f9")], b'{"id":"1a2b3c4d5e6f","n":1}')
    noise = learn_noise(p, s, TRANSPORT_HEADERS)
    assert noise.items() == ["header:x-request-id", "json:$.id"]
    same_shape = Reply(
        200, JSON + [("X-Request-ID", "aa11bb22cc33dd44ee55ff6600112233")], b'{"id":"77aa88bb99cc","n":1}'
    )
    out = compare(p, same_shape, noise, ignore=TRANSPORT_HEADERS)
    assert out.differences == [] and sorted(set(out.noise_hits)) == ["header:x-request-id", "json:$.id"]
    # an echoed word is not a generated id; a number is not a string; other fields stay exact
    other = Reply(200, JSON + [("X-Request-ID", "first")], b'{"id":12,"n":2}')
    assert kinds(compare(p, other, noise, ignore=TRANSPORT_HEADERS)) == [
        "header-value:x-request-id",
        "json:$.id",
        "json:$.n",
    ]


def test_formatting_still_counts_where_values_are_noise():
    p = Reply(200, JSON, b'{"id":"ab12","n":1}')
    noise = Noise(json_paths={"$.id"})
    spaced = Reply(200, JSON, b'{"id": "cd34", "n": 1}')
    assert kinds(compare(p, spaced, noise, ignore=TRANSPORT_HEADERS)) == ["json-format:body"]


def test_mask_json_keeps_every_byte_but_the_noisy_values():
    body = b'{"a": [1, {"t": 1.5e3}], "b" :"x\\"y"}'
    assert mask_json(body, {"$.a[1].t", "$.b"}) == b'{"a": [1, {"t": <noise>}], "b" :<noise>}'
    assert mask_json(body, set()) == body


def test_text_shapes():
    assert text_shape("Tue, 13 Jan 2026 10:00:00 GMT") == "a, 9 a 9 9:9:9 a"
    assert text_shape("0.731") == text_shape("12.5") == "9.9"
    assert text_shape("3f2a9b1c") == "x" != text_shape("first")


def test_live_framing_content_length_against_chunked_is_not_a_difference():
    a = Reply(200, [("Content-Length", "3"), ("Connection", "close")], b"abc")
    b = Reply(200, [("transfer-encoding", "chunked")], b"abc")
    out = compare(a, b, Noise(), ignore=LIVE_TRANSPORT_HEADERS, live=True)
    assert out.differences == []
    assert kinds(compare(a, b, Noise(), ignore=TRANSPORT_HEADERS)) == [
        "header-extra:transfer-encoding",
        "header-missing:connection",
        "header-missing:content-length",
    ]


def test_a_head_body_is_an_app_level_note_not_a_difference():
    ref = Reply(200, [("Content-Length", "5")], b"", app_head_body=0)
    cand = Reply(200, [("content-length", "5")], b"", app_head_body=5)
    out = compare(ref, cand, Noise(), ignore=TRANSPORT_HEADERS, method="HEAD")
    assert out.differences == [] and len(out.notes) == 1


def test_content_length_that_follows_an_accumulated_field_is_not_a_difference():
    """A polled job's output is compared accumulated over the polls: one poll may get two
    lines, another three, so the last answer's length may differ while nothing else does."""
    noise = Noise(covered={"$.output"})

    def poll(output: str, status: str = "running") -> Reply:
        body = f'{{"mode":"poll","output":"{output}","status":"{status}"}}\n'.encode()
        return Reply(200, [*JSON, ("Content-Length", str(len(body)))], body)

    assert kinds(compare(poll("a\\nb\\nc"), poll("c"), noise, ignore=TRANSPORT_HEADERS)) == []
    # Any other difference in the body still counts, and then so does the length.
    assert kinds(compare(poll("a\\nb\\nc"), poll("c", "finished"), noise, ignore=TRANSPORT_HEADERS)) == [
        "header-value:content-length",
        "json:$.status",
    ]
