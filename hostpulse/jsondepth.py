"""How deep a JSON body may nest: one rule for both apps, whatever their servers' stacks.

``json.loads`` recurses once per nested array or object and raises ``RecursionError`` past
Python's recursion limit, less the frames already on the stack: about 950 levels under
gunicorn, a few less under Hypercorn. A body nested 100,000 deep was a 500 and a traceback,
and one nested ~950 deep could decode in one app and fail in the other. Here a body
nesting more than :data:`MAX_DEPTH` levels is refused, as :class:`TooDeep` (a
``ValueError``, so every caller that refuses bad JSON refuses it alike), before or after
``json.loads``:

- a body with at most ``MAX_DEPTH`` brackets cannot nest deeper: nothing more to do;
- ``RecursionError`` means deeper than the stack allows, so deeper than ``MAX_DEPTH``;
- otherwise the document decoded, so it is valid JSON, and its depth is read from its
  brackets outside strings, at C speed (translate, split, replace) with one Python-level
  pass over what nests beyond a few levels.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

#: the deepest nesting of arrays and objects a body may have (``[[1]]`` is 2)
MAX_DEPTH = 512

_KEEP_QUOTES_AND_BRACKETS = bytes(b for b in range(256) if b not in b'"[]{}')
_OPEN_CLOSE = bytes.maketrans(b"{}", b"[]")
_RUN = re.compile(rb"\[+|\]+")
_PASSES = 4


class TooDeep(ValueError):
    """The document nests deeper than :data:`MAX_DEPTH`."""

    def __init__(self, limit: int = MAX_DEPTH) -> None:
        super().__init__(f"nested more than {limit} deep")


def depth(raw: bytes | str) -> int:
    """The nesting depth of a *valid* JSON document (0 for a scalar)."""
    if not isinstance(raw, str) and json.detect_encoding(raw) not in ("utf-8", "utf-8-sig"):
        raw = bytes(raw).decode(json.detect_encoding(raw), "surrogatepass")  # as json.loads reads it
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)
    if b"\\" in data:  # escapes left to right, as JSON reads them: \\ first, then \"
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    shape = data.translate(_OPEN_CLOSE, _KEEP_QUOTES_AND_BRACKETS)
    if b'"' in shape:
        bare = shape.replace(b'""', b"")  # strings without brackets pair up as ""
        if b'"' in bare:  # some string holds a bracket: keep what lies between strings
            bare = b"".join(shape.split(b'"')[0::2])
        shape = bare
    # Each pass removes every innermost pair, one level (the seed payload is gone in two).
    passes = 0
    while shape and passes < _PASSES:
        shape = shape.replace(b"[]", b"")
        passes += 1
    if not shape:
        return passes
    # What is left: runs of [ and of ]; the deepest point ends a run of [.
    steps = (len(run) if run[0] == 0x5B else -len(run) for run in _RUN.findall(shape))
    return passes + max(0, max(accumulate(steps)))


def check(raw: bytes | str, limit: int = MAX_DEPTH) -> None:
    """Raise :class:`TooDeep` if the valid JSON document ``raw`` nests deeper than ``limit``."""
    if isinstance(raw, str):
        brackets = raw.count("[") + raw.count("{")
    else:
        brackets = raw.count(b"[") + raw.count(b"{")
    if brackets > limit and depth(raw) > limit:
        raise TooDeep(limit)


def loads(raw: bytes | str, **kwargs: Any) -> Any:
    """``json.loads``, refusing a document nested deeper than :data:`MAX_DEPTH` with
    :class:`TooDeep`; any other invalid document raises ``json.loads``'s own ``ValueError``."""
    try:
        value = json.loads(raw, **kwargs)
    except RecursionError:
        raise TooDeep() from None
    check(raw)
    return value


__all__ = ["MAX_DEPTH", "TooDeep", "check", "depth", "loads"]
