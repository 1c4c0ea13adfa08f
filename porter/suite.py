"""Running the compat suite, Flask against the port, and reading its report into one verdict.

The suite runs as its own command (``python -m compat`` / ``hostpulse.compat``) in a child
process, with DEST's run file; its JSON report says, per group of differences, the catalogue
entry that explains it (cause and fix, ``compat/known.py``) or none. The verdict is

- ``identical`` (exit 0): no difference left (the allow-list's reasons aside);
- ``different`` (exit 1): differences remain, each group named with its catalogue entry and
  fix, or, with no entry, the allow-list pin to write (or the port to fix);
- ``failed`` (exit 2): the suite could not run the apps (a setup error, an app that does not
  start).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TIMEOUT = 1800
DEFAULT_MODES = ("inprocess", "fuzz")
DEFAULT_FUZZ = 200


def compat_package() -> str:
    """The suite's package: ``hostpulse.compat`` installed, ``compat`` from a checkout."""
    return "hostpulse.compat" if (__package__ or "").startswith("hostpulse.") else "compat"


@dataclass
class Group:
    mode: str
    kind: str
    where: str
    layer: str
    requests: int
    example: str
    known: dict[str, Any] | None
    reference: Any = None
    candidate: Any = None

    @property
    def key(self) -> str:
        """The catalogue entry's id, else ``kind:where``."""
        return self.known["id"] if self.known else f"{self.kind}:{self.where}"

    @property
    def explained(self) -> bool:
        return self.known is not None

    def pin(self) -> str:
        """The allow-list entry that would accept this difference (for one with no known cause)."""
        scenario = self.example.split("/")[0]
        return (
            f'[[allow]]\nscenario = "{scenario}"\ndifference = "{self.kind}:{self.where}"\n'
            f'modes = ["{self.mode}"]\nreason = "..."   # why the port may answer otherwise'
        )


@dataclass
class Verdict:
    status: str  # identical | different | failed
    code: int
    line: str
    groups: list[Group] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    both_5xx: int = 0
    output: str = ""
    report: Path | None = None

    @property
    def unexplained(self) -> list[Group]:
        return [g for g in self.groups if not g.explained]


def run(
    runfile: Path, *, report_dir: Path, mode: str | None = None, fuzz: int | None = None, extra: list[str] | None = None
) -> Verdict:
    pkg = compat_package()
    report = report_dir / "compat-report.json"
    argv = [
        sys.executable,
        "-m",
        pkg,
        "--config",
        str(runfile),
        "--report",
        str(report),
        "--report",
        str(report_dir / "compat-report.html"),
        "--logs",
        str(report_dir / "compat-logs"),
    ]
    if mode:
        argv += ["--mode", mode]
    if fuzz is not None:
        argv += ["--fuzz", str(fuzz)]
    argv += extra or []
    env = dict(os.environ)
    if pkg == "compat":  # a checkout: the suite's package beside this one
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    report.unlink(missing_ok=True)
    try:
        proc = subprocess.run(argv, cwd=report_dir, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return Verdict("failed", 2, f"the compat suite did not finish within {TIMEOUT} s")
    output = proc.stdout + proc.stderr
    if proc.returncode == 2 or not report.exists():
        last = next((line for line in reversed(output.strip().splitlines()) if line.strip()), "")
        return Verdict("failed", 2, f"the compat suite could not run the apps: {last}", output=output)
    return read(json.loads(report.read_text(encoding="utf-8")), output=output, report=report)


def read(data: dict[str, Any], *, output: str = "", report: Path | None = None) -> Verdict:
    groups: list[Group] = []
    counts: dict[str, dict[str, int]] = {}
    both = 0
    for pair in data.get("pairs", []):
        if not pair.get("decides_verdict", True):
            continue
        counts[pair["mode"]] = pair["counts"]
        both += pair["counts"].get("both 5xx", 0)
        for g in pair.get("groups", []):
            groups.append(
                Group(
                    mode=pair["mode"],
                    kind=g["kind"],
                    where=g["where"],
                    layer=g["layer"],
                    requests=g["requests"],
                    example=g["example"],
                    known=g.get("known"),
                    reference=g.get("reference"),
                    candidate=g.get("candidate"),
                )
            )
    total = sum(c.get("requests", 0) for c in counts.values())
    modes = ", ".join(counts)
    if data.get("ok") and not groups:
        line = f"IDENTICAL: the port answers as the Flask app on all {total} requests ({modes})"
        verdict = Verdict("identical", 0, line, groups, counts, both, output, report)
    else:
        kinds = {g.key for g in groups}
        explained = len({g.key for g in groups if g.explained})
        line = (
            f"DIFFERENT: {len(kinds)} kind(s) of difference remain over {total} requests ({modes}): "
            f"{explained} with a known cause and its fix, {len(kinds) - explained} unexplained"
        )
        verdict = Verdict("different", 1, line, groups, counts, both, output, report)
    if both:
        verdict.line += f"; WARNING: {both} request(s) failed (5xx) on both sides"
    return verdict


def _short(value: Any, limit: int = 100) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[:limit] + "..."


def _hint(g: Group, flags: list) -> str | None:
    """A warning of the porter that names the likely cause of an unexplained difference."""
    text = f"{g.kind} {g.where} {_short(g.reference, 300)} {_short(g.candidate, 300)}".lower()
    codes = {
        "body-limit": ("413", "too_large", "too large", "payload"),
        "wsgi-only": ("400", "500"),
        "template-request": ("body",),
    }
    for flag in flags:
        words = codes.get(flag.code)
        if words and any(w in text for w in words):
            same = [f"{f.file}:{f.line}" for f in flags if f.code == flag.code]
            return f"the porter's warning [{flag.code}] ({', '.join(same)}) names the likely cause"
    return None


def describe(verdict: Verdict, dest: Path, flags: list | None = None) -> str:
    """The differences, each with its catalogue entry and fix, or the pin to write."""
    out = []
    merged: dict[str, list[Group]] = {}
    for g in verdict.groups:
        merged.setdefault(g.key, []).append(g)
    for key, gs in merged.items():
        g = gs[0]
        n = sum(x.requests for x in gs)
        modes = ", ".join(sorted({x.mode for x in gs}))
        if g.known:
            layer = {"server": "the servers", "framework": "Flask vs Quart", "port": "the port"}.get(g.layer, g.layer)
            out.append(f"  - [{key}] {g.known['title']} ({layer}): {n} request(s) in {modes}, e.g. {g.example}")
            out.append(f"      differs: {g.kind} {g.where}: flask {_short(g.reference)} | port {_short(g.candidate)}")
            out.append(f"      fix: {g.known['fix']}")
            if g.layer == "server":
                out.append(f"      or pin it in {dest / 'allowlist.toml'} with that reason")
        else:
            out.append(f"  - [no catalogue entry] {g.kind} {g.where}: {n} request(s) in {modes}, e.g. {g.example}")
            out.append(f"      differs: flask {_short(g.reference)} | port {_short(g.candidate)}")
            hint = _hint(g, flags or [])
            if hint:
                out.append(f"      {hint}")
            out.append(f"      fix the port, or pin it in {dest / 'allowlist.toml'} with its reason:")
            out.extend("        " + line for line in g.pin().splitlines())
    return "\n".join(out)
