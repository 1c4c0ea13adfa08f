"""Seed 001's ``POST /data/`` answered without holding the event loop, byte for byte as
``hostpulse.payloads.unpack`` (``json.loads``) answers it.

Two ways around ``json.loads`` on the loop: simdjson where it can prove ``json.loads``
would agree (the seed's 3.19 MB payload: 2 ms instead of ~50 ms with the GIL held), and,
for what it declines, ``json.loads`` itself in a helper process once the body is large.
Apart from ``app/requests.py``, which reads bodies (limits and backpressure) for every route.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import weakref
from collections.abc import Generator
from itertools import islice
from pathlib import Path
from typing import Any

from hostpulse import payloads
from hostpulse.errors import ApiError
from hostpulse.payloads import data_answer, unpack

from .requests import read_body

# --- The fast path: simdjson where it provably agrees with json.loads ---------------------
#
# ``json.loads`` of the 3.19 MB seed payload holds the GIL ~50 ms, measured here (a thread
# does not shield the loop: ``json.loads`` holds the GIL throughout). simdjson validates the document without
# building its 100,000 objects. Its answer is used only where it provably matches
# ``json.loads``: it refuses NaN, Infinity, integers beyond 64 bits, floats that overflow,
# lone surrogates, invalid or surrogate-encoded UTF-8 and UTF-16/32 bodies, all of which
# ``json.loads`` may accept; every refusal goes to ``json.loads``. Duplicate keys are
# counted as ``json.loads`` keeps them (the last wins), and a document nested deeper than
# ``FAST_MAX_DEPTH`` (where ``json.loads`` may hit the recursion limit) goes to
# ``json.loads`` too.

FAST_MAX_DEPTH = 256
KEYS_PER_STEP = 20_000
_QUOTES_AND_BRACKETS = bytes(b for b in range(256) if b not in b'"[]{}')
_BRACKETS = bytes.maketrans(b"{}", b"[]")
_local = threading.local()

try:
    import simdjson
except ImportError:  # the fast path is optional: json.loads answers alike, slower
    simdjson = None  # type: ignore[assignment]  # callers check `simdjson is None`


def _depth_at_most(raw: bytes, limit: int) -> bool:
    """Whether the validated document ``raw`` nests at most ``limit`` deep.

    Escapes go first (``\\\\`` then ``\\"``, left to right as JSON reads them); then only
    quotes and brackets are kept. Where no string holds a bracket, every string is left as
    ``""`` and the quotes pair up; otherwise the answer is unknown, so no. The brackets
    alone then give the depth, one level a pass."""
    if b"\\" in raw:
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    shape = raw.translate(None, _QUOTES_AND_BRACKETS)
    if 2 * shape.count(b'""') != shape.count(b'"'):
        return False
    shape = shape.translate(_BRACKETS, b'"')
    for _ in range(limit):
        if not shape:
            return True
        shape = shape.replace(b"[]", b"")
    return not shape


def _fast_steps(raw: bytes) -> Generator[None, None, dict[str, Any] | None]:
    """``unpack_fast`` in steps of a few milliseconds; it yields where the loop may run."""
    if simdjson is None or not raw.strip():
        return None
    parser = getattr(_local, "parser", None) or simdjson.Parser()
    _local.parser = None  # a parser holds one document at a time: not reused while this one lives
    try:
        document = parser.parse(raw)
    except Exception:  # refused, or beyond simdjson: json.loads decides
        _local.parser = parser
        return None
    try:
        if not isinstance(document, (simdjson.Object, simdjson.Array)):
            return None
        yield
        if not _depth_at_most(raw, FAST_MAX_DEPTH):
            return None
        if isinstance(document, simdjson.Object):
            keys: set[str] = set()
            remaining = document.keys()
            for _ in range(0, len(document), KEYS_PER_STEP):
                keys.update(islice(remaining, KEYS_PER_STEP))
                yield
            items = len(keys)
        else:
            items = len(document)
        return data_answer(len(raw), items)
    finally:
        del document
        _local.parser = parser


async def unpack_fast(raw: bytes) -> dict[str, Any] | None:
    """``payloads.unpack(raw)`` when simdjson can prove ``json.loads`` would agree, else
    ``None``; the loop runs other work between the steps."""
    steps = _fast_steps(raw)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            result: dict[str, Any] | None = done.value  # _fast_steps' return value
            return result
        await asyncio.sleep(0)


async def unpack_body(limit: int) -> dict[str, Any]:
    """Seed 001's ``POST /data/`` answer for the body, as ``payloads.unpack`` answers it, byte
    for byte, without holding the event loop for ``json.loads`` of a large valid body.

    What simdjson declines (invalid JSON, and the valid documents it refuses: NaN, integers
    over 64 bits, nesting over ``FAST_MAX_DEPTH``) goes to ``payloads.unpack``: on the loop
    up to ``INLINE_DECODE`` bytes, else in a helper process (``unpack_aside``).
    """
    raw = await read_body(limit)
    answer = await unpack_fast(raw)
    if answer is not None:
        return answer
    return unpack(raw) if len(raw) <= INLINE_DECODE else await unpack_aside(raw)


# --- The decode simdjson declines, kept off the loop ---------------------------------------
#
# A 28 MB body with a NaN went to ``json.loads`` on the loop: 5.8 s with every other request
# of the worker waiting (issue 11, item 5); a thread would not help (``json.loads`` holds the
# GIL throughout). Up to ``INLINE_DECODE`` bytes (a few ms of ``json.loads`` at worst) it
# still runs on the loop; a larger body goes to a helper process of the worker, started at
# the first such body with ``Popen`` (vfork, as jobs are; multiprocessing is not available in
# Hypercorn's daemonic workers) and kept: the same ``payloads.unpack`` answers there, and its
# answer or its error comes back as JSON. One body at a time per worker: others wait their
# turn, the loop never does. After a body over ``RECYCLE_AFTER`` the helper ends (the memory
# a large decode grew goes back to the system); the next one starts a new one.

INLINE_DECODE = 64 * 1024
RECYCLE_AFTER = 4 * 1024 * 1024
_HELPER = """
import json, sys
from hostpulse.errors import ApiError
from hostpulse.payloads import unpack
inp, out = sys.stdin.buffer, sys.stdout.buffer
while len(head := inp.read(8)) == 8:
    raw = inp.read(int.from_bytes(head, "big"))
    try:
        result = {"answer": unpack(raw)}
    except ApiError as exc:
        result = {"status": exc.code, "body": exc.body()}
    except Exception as exc:
        result = {"failed": repr(exc)}
    data = json.dumps(result).encode()
    out.write(len(data).to_bytes(8, "big") + data)
    out.flush()
"""
_PACKAGE_ROOT = str(Path(payloads.__file__).resolve().parent.parent)


class _Decoder:
    """This event loop's helper process, decoding one body at a time."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.turn = asyncio.Lock()

    def _start(self) -> subprocess.Popen[bytes]:
        path = os.pathsep.join(filter(None, [_PACKAGE_ROOT, os.environ.get("PYTHONPATH")]))
        return subprocess.Popen(
            [sys.executable, "-c", _HELPER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": path},
            cwd="/",
        )

    @staticmethod
    def _exchange(proc: subprocess.Popen[bytes], raw: bytes) -> bytes:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(len(raw).to_bytes(8, "big"))
        proc.stdin.write(raw)
        proc.stdin.flush()
        size = int.from_bytes(proc.stdout.read(8), "big")
        data = proc.stdout.read(size)
        if not data:
            raise RuntimeError(f"the JSON decoding helper ended ({proc.poll()})")
        return data

    @staticmethod
    def _stop(proc: subprocess.Popen[bytes]) -> None:
        proc.kill()
        proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()

    async def unpack(self, raw: bytes) -> dict[str, Any]:
        async with self.turn:
            if self.proc is None or self.proc.poll() is not None:
                self.proc = self._start()
            proc = self.proc
            try:
                data = await asyncio.to_thread(self._exchange, proc, raw)
            except BaseException:  # a client gone, a helper dead: this helper's state is unknown
                self.proc = None
                await asyncio.to_thread(self._stop, proc)
                raise
            if len(raw) > RECYCLE_AFTER:
                self.proc = None
                await asyncio.to_thread(self._stop, proc)
        result = json.loads(data)
        if "answer" in result:
            answer: dict[str, Any] = result["answer"]  # payloads.unpack's answer, through JSON
            return answer
        if "failed" in result:
            raise RuntimeError(f"decoding the body failed in the helper: {result['failed']}")
        raise ApiError.from_body(result["status"], result["body"])


_decoders: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Decoder] = weakref.WeakKeyDictionary()


async def unpack_aside(raw: bytes) -> dict[str, Any]:
    """``payloads.unpack(raw)`` computed by the worker's helper process; its ``ApiError``
    raised here."""
    return await _decoders.setdefault(asyncio.get_running_loop(), _Decoder()).unpack(raw)
