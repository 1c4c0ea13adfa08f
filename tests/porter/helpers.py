"""Small projects written to a temporary folder, ported, and read back."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
import tokenize
from collections import Counter
from pathlib import Path

from porter.port import PortResult, port

ROOT = Path(__file__).resolve().parents[2]


def write_project(folder: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return folder


def port_files(tmp_path: Path, files: dict[str, str], src: str = "app") -> tuple[dict[str, str], PortResult]:
    """Write ``files`` (paths relative to ``tmp/src``), port ``tmp/src/<src>`` into ``tmp/dest``;
    the ported Python sources by relative path, and the result."""
    base = write_project(tmp_path / "src", files)
    dest = tmp_path / "dest"
    result = port(base / src, dest)
    return {str(p.relative_to(dest)): p.read_text(encoding="utf-8") for p in dest.rglob("*.py")}, result


def comments(source: str) -> Counter[str]:
    return Counter(
        tok.string for tok in tokenize.generate_tokens(io.StringIO(source).readline) if tok.type == tokenize.COMMENT
    )


def lost_comments(before: str, after: str) -> Counter[str]:
    """The source's comments the rewrite does not have (empty: every comment kept)."""
    return comments(before) - comments(after)


def compileall(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "compileall", "-q", str(folder)], capture_output=True, text=True)


def porter(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The command, as a person runs it from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "porter", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )
