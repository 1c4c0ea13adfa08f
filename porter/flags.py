"""What the porter cannot port safely, with file and line.

A flag is an ``error`` when the ported code is known not to work as the Flask code did (a
Flask extension, ``request.stream``, a thread-local, an awaitable needed where the code must
stay synchronous, a generator as a response): the command then stops with exit status 2
after writing DEST, so the rest can be finished by hand. A ``warning`` names code that was
ported but needs a look (a WSGI-only import, a body limit set per request).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

SEVERITIES = ("error", "warning")


@dataclass(frozen=True)
class Flag:
    severity: str  # "error" | "warning"
    file: str  # relative to SRC's base (as in DEST)
    line: int
    code: str  # a short stable slug: flask-extension, request-stream, thread-local, ...
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.severity} [{self.code}] {self.message}"

    def as_dict(self) -> dict:
        return asdict(self)


def errors(flags: list[Flag]) -> list[Flag]:
    return [f for f in flags if f.severity == "error"]
