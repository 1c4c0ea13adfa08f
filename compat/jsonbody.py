"""JSON bodies: a structural diff by path, masking noisy values while keeping every other
byte (so spacing, key order and escaping still compare), and a readable first difference."""

from __future__ import annotations

import json
import re
from typing import Any

from .clients import Reply


def is_json_reply(reply: Reply) -> bool:
    ctype = (reply.header("content-type") or "").lower()
    return "json" in ctype


def parse_json(body: bytes) -> tuple[bool, Any]:
    try:
        return True, json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return False, None


def _child(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key)}]"


def json_diff(a: Any, b: Any, path: str = "$") -> list[tuple[str, Any, Any, str]]:
    """Structural differences: (path, a value, b value, what)."""
    if type(a) is not type(b) and not (
        isinstance(a, (int, float)) and isinstance(b, (int, float)) and type(a) is type(b)
    ):
        return [(path, a, b, f"type {type(a).__name__} != {type(b).__name__}")]
    if isinstance(a, dict):
        out = []
        for k in a:
            if k not in b:
                out.append((_child(path, k), a[k], None, "missing in candidate"))
            else:
                out.extend(json_diff(a[k], b[k], _child(path, k)))
        for k in b:
            if k not in a:
                out.append((_child(path, k), None, b[k], "extra in candidate"))
        return out
    if isinstance(a, list):
        if len(a) != len(b):
            return [(path, a, b, f"list length {len(a)} != {len(b)}")]
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            out.extend(json_diff(x, y, _child(path, i)))
        return out
    if a != b:
        return [(path, a, b, "value")]
    return []


class _Masker:
    """Rewrites JSON text with the values at given paths replaced by ``<noise>``.

    Keeps every other byte (spacing, key order, escapes), so two bodies that differ only at
    noisy paths give equal masked texts, and any formatting difference survives.
    """

    _ws = re.compile(r"[ \t\n\r]*")
    _str = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
    _scalar = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null|NaN|-?Infinity")

    def __init__(self, text: str, paths: set[str]) -> None:
        self.text = text
        self.paths = paths
        self.pos = 0
        self.out: list[str] = []

    def ws(self) -> None:
        m = self._ws.match(self.text, self.pos)
        self.out.append(m.group(0))
        self.pos = m.end()

    def value(self, path: str) -> None:
        start = self.pos
        masked = path in self.paths
        mark = len(self.out)
        ch = self.text[self.pos : self.pos + 1]
        if ch == "{":
            self.pos += 1
            self.out.append("{")
            self.ws()
            if self.text[self.pos : self.pos + 1] == "}":
                self.pos += 1
                self.out.append("}")
            else:
                while True:
                    m = self._str.match(self.text, self.pos)
                    if not m:
                        raise ValueError("key expected")
                    key = json.loads(m.group(0))
                    self.out.append(m.group(0))
                    self.pos = m.end()
                    self.ws()
                    if self.text[self.pos] != ":":
                        raise ValueError(": expected")
                    self.out.append(":")
                    self.pos += 1
                    self.ws()
                    self.value(_child(path, key))
                    self.ws()
                    c = self.text[self.pos]
                    self.pos += 1
                    self.out.append(c)
                    if c == "}":
                        break
                    if c != ",":
                        raise ValueError(", expected")
                    self.ws()
        elif ch == "[":
            self.pos += 1
            self.out.append("[")
            self.ws()
            if self.text[self.pos : self.pos + 1] == "]":
                self.pos += 1
                self.out.append("]")
            else:
                i = 0
                while True:
                    self.value(_child(path, i))
                    i += 1
                    self.ws()
                    c = self.text[self.pos]
                    self.pos += 1
                    self.out.append(c)
                    if c == "]":
                        break
                    if c != ",":
                        raise ValueError(", expected")
                    self.ws()
        elif ch == '"':
            m = self._str.match(self.text, self.pos)
            if not m:
                raise ValueError("bad string")
            self.out.append(m.group(0))
            self.pos = m.end()
        else:
            m = self._scalar.match(self.text, self.pos)
            if not m:
                raise ValueError("bad value")
            self.out.append(m.group(0))
            self.pos = m.end()
        if masked:
            del self.out[mark:]
            self.out.append("<noise>")
        _ = start

    def run(self) -> str:
        self.ws()
        self.value("$")
        self.ws()
        self.out.append(self.text[self.pos :])
        return "".join(self.out)


def mask_json(body: bytes, paths: set[str]) -> bytes:
    if not paths:
        return body
    try:
        return _Masker(body.decode("utf-8"), paths).run().encode("utf-8")
    except (ValueError, IndexError, UnicodeDecodeError):
        return body


def first_difference(a: bytes, b: bytes) -> str:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    if i == n and len(a) == len(b):
        return ""
    lo = max(0, i - 30)
    return f"lengths {len(a)} / {len(b)}, first difference at byte {i}: {a[lo : i + 30]!r} / {b[lo : i + 30]!r}"


def _format_detail(a: bytes, b: bytes) -> str:
    what = []
    try:
        ja, jb = json.loads(a.replace(b"<noise>", b"0")), json.loads(b.replace(b"<noise>", b"0"))
        if ja == jb:
            if a.replace(b" ", b"").replace(b"\n", b"") == b.replace(b" ", b"").replace(b"\n", b""):
                what.append("whitespace differs")
            ka, kb = _key_order(a), _key_order(b)
            if ka != kb and sorted(ka) == sorted(kb):
                what.append("key order differs")
            if (b"\\u" in a) != (b"\\u" in b):
                what.append("non-ASCII escaping differs")
    except ValueError:
        pass
    return "; ".join(what + [first_difference(a, b)])


def _key_order(text: bytes) -> list[str]:
    return re.findall(r'"((?:[^"\\]|\\.)*)"\s*:', text.decode("utf-8", "replace"))
