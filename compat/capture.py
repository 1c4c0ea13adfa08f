"""Capturing a value from an HTML (or any text) body, to re-send it in a later step.

Two kinds of spec:

``html:SELECTOR`` / ``html:SELECTOR@attr``
    The first element matching a small CSS subset, parsed with the standard library's
    ``html.parser``: a tag name (or ``*``), ``#id``, ``.class``, ``[attr]``, ``[attr=value]``,
    ``[attr="value"]`` / ``[attr='value']``, combined into compound selectors
    (``input[name=csrf_token]``, ``div.job#current``) and joined by spaces (descendant
    combinator: ``form#login input[name=csrf_token]``). With ``@attr`` the value of that
    attribute of the first matching element that has it (``meta[name=csrf-token]@content``);
    without, the element's text content, stripped of surrounding white space. Entities are
    decoded. Nothing else of CSS (``>``, ``+``, ``~``, pseudo-classes, ``^=``...) is accepted.

``regex:PATTERN``
    ``re.search`` on the body decoded as UTF-8: group 1 when the pattern has groups, else the
    whole match (inline flags such as ``(?s)`` work).

No match gives None; a bad spec raises ``ValueError``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

__all__ = ["capture_html", "check_spec", "parse_selector", "Compound"]

VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "param",
    "source",
    "track",
    "wbr",
    "keygen",
    "command",
}


@dataclass
class Compound:
    tag: str | None = None  # None: any
    id: str | None = None
    classes: list[str] = field(default_factory=list)
    attrs: list[tuple[str, str | None]] = field(default_factory=list)  # (name, value or None: present)

    def matches(self, tag: str, attrs: dict[str, str]) -> bool:
        if self.tag is not None and self.tag != tag:
            return False
        if self.id is not None and attrs.get("id") != self.id:
            return False
        if self.classes:
            have = set((attrs.get("class") or "").split())
            if not all(c in have for c in self.classes):
                return False
        for name, value in self.attrs:
            if name not in attrs:
                return False
            if value is not None and attrs[name] != value:
                return False
        return True


_IDENT = r"-?[A-Za-z_][A-Za-z0-9_-]*"
_PART = re.compile(
    r"(?P<tag>[A-Za-z][A-Za-z0-9-]*|\*)"
    rf"|#(?P<id>{_IDENT})"
    rf"|\.(?P<cls>{_IDENT})"
    r"|\[\s*(?P<attr>[A-Za-z_:][A-Za-z0-9_:.-]*)\s*"
    r"(?:=\s*(?:\"(?P<dq>[^\"]*)\"|'(?P<sq>[^']*)'|(?P<bare>[A-Za-z0-9_.:/+-]+))\s*)?\]"
)


def _split_descendants(selector: str) -> list[str]:
    """Split on white space outside brackets and quotes."""
    out, cur, depth, quote = [], [], 0, ""
    for ch in selector:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = ""
            continue
        if ch in "\"'" and depth:
            quote = ch
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unbalanced ']' in selector {selector!r}")
        if ch.isspace() and not depth:
            if cur:
                out.append("".join(cur))
                cur = []
            continue
        cur.append(ch)
    if quote or depth:
        raise ValueError(f"unbalanced brackets or quotes in selector {selector!r}")
    if cur:
        out.append("".join(cur))
    return out


def _compound(text: str, selector: str) -> Compound:
    comp = Compound()
    pos = 0
    first = True
    while pos < len(text):
        m = _PART.match(text, pos)
        if not m or (m.group("tag") and not first):
            raise ValueError(
                f"unsupported selector {selector!r} at {text[pos:]!r}: only tag, #id, .class, "
                f"[attr], [attr=value] and the descendant combinator (a space) are supported"
            )
        if m.group("tag"):
            comp.tag = None if m.group("tag") == "*" else m.group("tag").lower()
        elif m.group("id") is not None:
            if comp.id is not None and comp.id != m.group("id"):
                comp.attrs.append(("id", m.group("id")))  # two ids: matches nothing, as in CSS
            comp.id = m.group("id")
        elif m.group("cls") is not None:
            comp.classes.append(m.group("cls"))
        else:
            value = next((m.group(g) for g in ("dq", "sq", "bare") if m.group(g) is not None), None)
            comp.attrs.append((m.group("attr").lower(), value))
        first = False
        pos = m.end()
    return comp


def _split_attr(selector: str) -> tuple[str, str | None]:
    """``sel@attr`` -> (sel, attr): the last ``@`` outside brackets and quotes."""
    depth, quote, at = 0, "", -1
    for i, ch in enumerate(selector):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'" and depth:
            quote = ch
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "@" and not depth:
            at = i
    if at < 0:
        return selector, None
    attr = selector[at + 1 :].strip()
    if not re.fullmatch(r"[A-Za-z_:][A-Za-z0-9_:.-]*", attr):
        raise ValueError(f"bad attribute name after '@' in {selector!r}")
    return selector[:at], attr.lower()


def parse_selector(selector: str) -> tuple[list[Compound], str | None]:
    """(compound selectors, outermost first; the attribute to read or None)."""
    sel, attr = _split_attr(selector.strip())
    parts = _split_descendants(sel)
    if not parts:
        raise ValueError(f"empty selector in {selector!r}")
    return [_compound(p, selector) for p in parts], attr


class _Finder(HTMLParser):
    def __init__(self, chain: list[Compound], attr: str | None) -> None:
        super().__init__(convert_charrefs=True)
        self.chain = chain
        self.attr = attr
        self.stack: list[tuple[str, dict[str, str]]] = []
        self.result: str | None = None
        self.done = False
        self.text_depth: int | None = None  # stack depth of the element whose text we collect
        self.text: list[str] = []

    def _matches(self, tag: str, attrs: dict[str, str]) -> bool:
        if not self.chain[-1].matches(tag, attrs):
            return False
        i = len(self.chain) - 2
        for anc_tag, anc_attrs in reversed(self.stack):
            if i < 0:
                break
            if self.chain[i].matches(anc_tag, anc_attrs):
                i -= 1
        return i < 0

    def handle_starttag(self, tag: str, attrs_list: list) -> None:
        self._start(tag, attrs_list, closed=False)

    def handle_startendtag(self, tag: str, attrs_list: list) -> None:
        self._start(tag, attrs_list, closed=True)

    def _start(self, tag: str, attrs_list: list, closed: bool) -> None:
        if self.done:
            return
        attrs = {k.lower(): ("" if v is None else v) for k, v in attrs_list}
        if self.text_depth is None and self._matches(tag, attrs):
            if self.attr is not None:
                if self.attr in attrs:
                    self.result = attrs[self.attr]
                    self.done = True
                    return
            else:
                self.text_depth = len(self.stack)
                self.text = []
                if closed or tag in VOID:
                    self._finish_text()
                    return
        if not closed and tag not in VOID:
            self.stack.append((tag, attrs))

    def handle_endtag(self, tag: str) -> None:
        if self.done:
            return
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break
        else:
            return
        if self.text_depth is not None and len(self.stack) <= self.text_depth:
            self._finish_text()

    def handle_data(self, data: str) -> None:
        if self.text_depth is not None and not self.done:
            self.text.append(data)

    def _finish_text(self) -> None:
        self.result = "".join(self.text).strip()
        self.done = True
        self.text_depth = None

    def close(self) -> None:
        super().close()
        if self.text_depth is not None and not self.done:  # never closed: text to the end
            self._finish_text()


def check_spec(spec: str) -> None:
    """Raise ``ValueError`` for a spec :func:`capture_html` cannot use."""
    kind, sep, what = spec.partition(":")
    if not sep or kind not in ("html", "regex"):
        raise ValueError(f"bad capture spec {spec!r}: expected html:SELECTOR[@attr] or regex:PATTERN")
    if not what.strip():
        raise ValueError(f"bad capture spec {spec!r}: nothing after {kind}:")
    if kind == "html":
        parse_selector(what)
    else:
        try:
            re.compile(what)
        except re.error as exc:
            raise ValueError(f"bad capture spec {spec!r}: {exc}") from exc


def capture_html(body: bytes, spec: str) -> str | None:
    """The value ``spec`` selects in ``body`` (see the module docstring), else None."""
    check_spec(spec)
    kind, _, what = spec.partition(":")
    text = body.decode("utf-8", "replace")
    if kind == "regex":
        m = re.search(what, text)
        if m is None:
            return None
        return m.group(1) if m.re.groups else m.group(0)
    chain, attr = parse_selector(what)
    finder = _Finder(chain, attr)
    finder.feed(text)
    finder.close()
    return finder.result
