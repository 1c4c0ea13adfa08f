"""The port's fast ``POST /data/`` decoding answers exactly as ``payloads.unpack`` (json.loads) does."""

from __future__ import annotations

import asyncio
import json

import pytest
import simdjson  # noqa: F401  (a server dependency: the fast path must be there to be tested)
from hypothesis import given, settings
from hypothesis import strategies as st

from app.unpack import _depth_at_most
from app.unpack import unpack_fast as unpack_fast_async
from hostpulse.errors import ApiError
from hostpulse.payloads import data_answer, unpack


def unpack_fast(raw: bytes) -> object:
    return asyncio.run(unpack_fast_async(raw))


def reference(raw: bytes) -> object:
    try:
        return unpack(raw)
    except ApiError as exc:
        return ("error", exc.code, exc.error, exc.description)
    except RecursionError:
        return ("recursion",)


EDGES = [
    b"NaN",
    b"[NaN]",
    b"[Infinity]",
    b"[-Infinity]",
    b'{"a": NaN}',
    b"[1e999]",
    b"[-1e400]",
    b"[1e-400]",
    b"[123456789012345678901234567890]",
    b"[18446744073709551615]",
    b"[18446744073709551616]",
    b"[-9223372036854775809]",
    b"[" + b"9" * 5000 + b"]",
    b'["\\ud800"]',
    b'{"\\udc00": 1}',
    b'["\\ud800\\udc00"]',
    b'["\xed\xa0\x80"]',
    b'{"a": 1, "a": 2}',
    b'{"a": 1, "\\u0061": 2, "b": 3}',
    b"[1,]",
    b"{}",
    b"[]",
    b"  ",
    b"\xff",
    b"[1] x",
    b"1",
    b'"text"',
    b"null",
    b"\xef\xbb\xbf[1, 2]",
    '["é"]'.encode("utf-16"),
    '{"é": 1}'.encode("utf-32"),
    b'["\x01"]',
    b"[1,\x0c2]",
    b"[01]",
    b'{"a\\\\": [1], "b\\"[": 2}',
    b'["[[[[", "]]"]',
    b"[" * 300 + b"]" * 300,
    b"[" * 255 + b"]" * 255,
    b"[{" * 200 + b"}]" * 200,
    b"[" * 2000 + b"]" * 2000,
    b"[1]\x00",
    b'{"a":{"a":1,"a":2},"b":[1,1]}',
    b"\n[1, 2, 3]\n\t ",
]


@pytest.mark.parametrize("raw", EDGES)
def test_fast_path_agrees_or_declines(raw: bytes) -> None:
    fast = unpack_fast(raw)
    if fast is not None:
        assert fast == reference(raw)


def test_seed_payload_takes_the_fast_path() -> None:
    raw = json.dumps({i: {"name": "tigerrose"} for i in range(100000)}).encode()
    assert unpack_fast(raw) == data_answer(len(raw), 100000)
    assert data_answer(3, 2) == {"status": "success", "bytes": 3, "items": 2}  # the README's answer


def test_depth() -> None:
    assert _depth_at_most(b"[[]]", 2) and not _depth_at_most(b"[[[]]]", 2)
    assert _depth_at_most(b'[{"a": "[[[[[["}]', 2) is False  # a bracket in a string: unknown, declined
    assert _depth_at_most(b'[{"a\\"": 1}]', 2)
    for raw in (b'["[", "]"]', b'["", "[", ""]', b'{"]": "", "": "{"}', b'["a\\\\", "[", "b"]'):
        assert _depth_at_most(raw, 5) is False  # quotes no longer pair once strings are emptied


def nesting(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max(map(nesting, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(nesting, value), default=0)
    return 0


def holds_bracket(value: object) -> bool:
    if isinstance(value, str):
        return any(c in value for c in "[]{}")
    if isinstance(value, dict):
        return any(map(holds_bracket, value)) or any(map(holds_bracket, value.values()))
    return isinstance(value, list) and any(map(holds_bracket, value))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values, st.sampled_from([True, False]))
def test_generated_documents(value: object, ascii: bool) -> None:
    raw = json.dumps(value, ensure_ascii=ascii).encode("utf-8", "surrogatepass")
    fast = unpack_fast(raw)
    if fast is not None:
        assert fast == reference(raw)


@settings(max_examples=300, deadline=None)
@given(json_values, st.sampled_from([True, False]))
def test_depth_is_exact_unless_a_string_holds_a_bracket(value: object, ascii: bool) -> None:
    raw = json.dumps(value, ensure_ascii=ascii).encode("utf-8", "surrogatepass")
    depth = nesting(value)
    if holds_bracket(value):
        assert not _depth_at_most(raw, depth + 1)
    else:
        assert _depth_at_most(raw, depth) and (depth == 0 or not _depth_at_most(raw, depth - 1))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40) | st.text(alphabet='[]{}",:0123456789.eE+-\\u tnrfalsNI', max_size=30).map(str.encode))
def test_arbitrary_bytes(raw: bytes) -> None:
    fast = unpack_fast(raw)
    if fast is not None:
        assert fast == reference(raw)
