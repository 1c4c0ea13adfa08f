"""Forms of values, for comparing what is noisy: a value that differed between the two
references is compared by form, not by value.

Noise neither invents nor hides differences
-------------------------------------------
A value that differs between the two references is noise only *within what they showed*:
the candidate's value must have the form of the primary's or of the secondary's value.

- JSON: the type must be the same (``1`` and ``"1"``, ``1`` and ``1.0``, ``null`` and ``""``
  differ), lists the same length, objects the same keys; strings by their text form.
- Text form (:func:`text_form`, :func:`forms_compatible`): a text is cut into runs of
  ``[A-Za-z0-9_-]`` joined by ``.``; everything else must be equal character for character.

  * A run of 16 or more characters is one *token*, whatever its letters, digits, ``-`` and
    ``_`` (a random base64url value has them anywhere): it matches a token of the same class
    and length only. Classes: hex (``[0-9a-fA-F]``, with its ``-`` groups, as in a UUID
    ``8-4-4-4-12``) and any other (base64url). In a ``.``-joined chain holding such a token
    (itsdangerous and JWT values: ``payload.timestamp.signature``) every part is a token
    compared by length only.
  * Shorter runs are cut at ``-`` and ``_`` (kept as is) into digits (``9``), letters (``a``)
    and both (``x``), as :func:`text_shape` does: digits match digits of any length (a
    number grows), letters match letters; a mixed run matches a mixed or letters-only run
    of the same length when either has 8 or more characters (an id's length class), any
    mixed run when both are shorter; a number never matches a word. Two runs of 6 or more
    hex digits of the same length match whatever their mix (a random hex id may be all
    digits).

  Not covered: a random base64url value shorter than 16 characters may show ``-`` or ``_``
  in one answer and not in another (learn it with longer tokens, or allow it).
"""

from __future__ import annotations

import difflib
import json
import re
from typing import Any


def _run_shape(m: re.Match) -> str:
    run = m.group(0)
    if run.isdigit():
        return "9"
    if run.isalpha():
        return "a"
    return "x"


def text_shape(text: str) -> str:
    """Runs of digits become ``9``, of letters ``a``, of both ``x``.

    ``Tue, 13 Jan 2026 10:00:00 GMT`` -> ``a, 9 a 9 9:9:9 a``; ``0.731`` -> ``9.9``; a
    hex id -> ``x``; ``first`` -> ``a`` (so an echoed id is not a generated one).
    """
    return re.sub(r"[A-Za-z0-9]+", _run_shape, text)


def json_shape(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return type(value).__name__
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str:" + text_shape(value)
    if isinstance(value, list):
        return ["list", [json_shape(v) for v in value]]
    if isinstance(value, dict):
        return {k: json_shape(v) for k, v in sorted(value.items())}
    return repr(type(value))


# ---------------------------------------------------------------------------- forms (noise)

_CHAIN = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")
_PIECE = re.compile(r"[A-Za-z0-9]+|[-_]+")
_HEX_GROUPS = re.compile(r"[0-9a-fA-F]+(?:-[0-9a-fA-F]+)*")
_HEX = re.compile(r"[0-9a-fA-F]+")
TOKEN_MIN = 16  # a run of [A-Za-z0-9_-] this long is one token


def _long_token(unit: str) -> tuple:
    if _HEX_GROUPS.fullmatch(unit):
        return ("hex", tuple(len(g) for g in unit.split("-")))
    return ("tok", len(unit))


def _short_pieces(unit: str, out: list) -> None:
    for m in _PIECE.finditer(unit):
        piece = m.group(0)
        if piece[0] in "-_":
            out.append(("lit", piece))
        elif piece.isdigit():
            out.append(("num", len(piece), True))
        else:
            hexonly = bool(_HEX.fullmatch(piece))
            out.append(("word" if piece.isalpha() else "mix", len(piece), hexonly))


def text_form(text: str) -> list[tuple]:
    """The form of a text, as a list of tokens (see the module docstring).

    ``("lit", s)`` literal text; ``("hex", groups)`` / ``("tok", length)`` a long token;
    ``("seg", length)`` a part of a ``.``-joined token chain; ``("num" | "word" | "mix",
    length, hex-only)`` a short run.
    """
    out: list[tuple] = []
    pos = 0
    for m in _CHAIN.finditer(text):
        if m.start() > pos:
            out.append(("lit", text[pos : m.start()]))
        units = m.group(0).split(".")
        chain = any(len(u) >= TOKEN_MIN for u in units)
        for i, unit in enumerate(units):
            if i:
                out.append(("lit", "."))
            if chain:
                out.append(_long_token(unit) if len(unit) >= TOKEN_MIN else ("seg", len(unit)))
            else:
                _short_pieces(unit, out)
        pos = m.end()
    if pos < len(text):
        out.append(("lit", text[pos:]))
    # adjacent literals as one
    merged: list[tuple] = []
    for tok in out:
        if tok[0] == "lit" and merged and merged[-1][0] == "lit":
            merged[-1] = ("lit", merged[-1][1] + tok[1])
        else:
            merged.append(tok)
    return merged


def _tokens_compatible(a: tuple, b: tuple) -> bool:
    if a[0] not in ("num", "word", "mix") or b[0] not in ("num", "word", "mix"):
        return a == b
    ka, la, ha = a
    kb, lb, hb = b
    if ha and hb and la == lb and la >= 6:
        return True  # a random hex id may be all digits or all letters
    if ka == kb and ka in ("num", "word"):
        return True
    if ka == "num" or kb == "num":
        return False  # a number is not a word
    if ka == kb == "mix" and max(la, lb) < 8:
        return True
    return la == lb


def forms_compatible(a: str, b: str) -> bool:
    """Whether ``b`` could be another value of whatever made ``a`` (see the module docstring)."""
    if a == b:
        return True
    fa, fb = text_form(a), text_form(b)
    return len(fa) == len(fb) and all(_tokens_compatible(x, y) for x, y in zip(fa, fb))


_TEXT_TOKEN = re.compile(r"[A-Za-z0-9_-]+|\s+|.", re.S)
# texts longer than this (in tokens) are compared by whole-text form: alignment is quadratic
MAX_ALIGNED_TOKENS = 20_000


def _holes(primary: list[str], secondary: list[str]) -> list[tuple[int, int]]:
    """The token ranges of ``primary`` where the two references differ (the noise)."""
    matcher = difflib.SequenceMatcher(None, primary, secondary, autojunk=False)
    return [(i1, i2) for tag, i1, i2, _j1, _j2 in matcher.get_opcodes() if tag != "equal"]


def text_within_noise(primary: str, secondary: str, candidate: str) -> bool:
    """Whether ``candidate`` differs from ``primary`` only where the two references differed
    from each other, and there only by form: a CSRF token or a timestamp in an HTML page is
    noise, a changed word elsewhere on that page is not."""
    p, s, c = (_TEXT_TOKEN.findall(t) for t in (primary, secondary, candidate))
    if max(len(p), len(s), len(c)) > MAX_ALIGNED_TOKENS:
        return forms_compatible(primary, candidate) or forms_compatible(secondary, candidate)
    holes = _holes(p, s)
    matcher = difflib.SequenceMatcher(None, p, c, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        if not any(h1 <= i1 and i2 <= h2 for h1, h2 in holes):
            return False
        if not forms_compatible("".join(p[i1:i2]), "".join(c[j1:j2])):
            return False
    return True


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


def json_compatible(a: Any, b: Any) -> bool:
    """Same JSON type (int, float, bool, null, string, list, object), strings of compatible
    forms, lists of the same length and objects with the same keys, recursively."""
    if a is MISSING or b is MISSING:
        return a is b
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return type(a) is type(b)
    if isinstance(a, int) and isinstance(b, int):
        return True
    if isinstance(a, float) and isinstance(b, float):
        return True
    if isinstance(a, str) and isinstance(b, str):
        return forms_compatible(a, b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_compatible(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return set(a) == set(b) and all(json_compatible(a[k], b[k]) for k in a)
    return False


_PATH_PART = re.compile(r'\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]')


def json_get(value: Any, path: str) -> Any:
    """The value at a path made by :func:`json_diff` (``$.a[0]["b c"]``), else :data:`MISSING`."""
    if not path.startswith("$"):
        return MISSING
    pos = 1
    while pos < len(path):
        m = _PATH_PART.match(path, pos)
        if not m:
            return MISSING
        if m.group(1) is not None or m.group(3) is not None:
            key = m.group(1) if m.group(1) is not None else json.loads(m.group(3))
            if not isinstance(value, dict) or key not in value:
                return MISSING
            value = value[key]
        else:
            i = int(m.group(2))
            if not isinstance(value, list) or i >= len(value):
                return MISSING
            value = value[i]
        pos = m.end()
    return value
