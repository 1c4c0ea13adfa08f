"""``hostpulse-port SRC DEST`` (``python -m porter``): port a Flask project to Quart, then prove it.

1. rewrites SRC into DEST with libcst (comments and formatting kept): imports, ``async def``
   views, hooks, error handlers and the helpers that reach an awaitable, ``await`` where Quart
   needs it, decorators that await the view, ``MethodView`` methods, CLI commands;
2. flags, with file and line, what it cannot port safely (exit 2 if any is an error);
3. writes DEST/compat.toml (reference SRC, candidate DEST), a starter corpus from the route
   table, and runs the compat suite, Flask against the port.

Exit status: 0 the port answers identically; 1 differences remain (each named with its
catalogue entry and fix, or the pin to write); 2 it could not port (or the suite could not
run the apps).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from . import suite
from .flags import errors

# libcst (the ``port`` extra) is imported when porting, not for ``--help``


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="hostpulse-port",
        description=__doc__.split("\n\n")[0].split(": ", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Exit status: 0 identical, 1 differences remain, 2 could not port.",
    )
    p.add_argument("src", help="a Flask package folder, a folder holding one, or a module file")
    p.add_argument("dest", help="a new folder for the Quart project (same layout)")
    p.add_argument("--force", action="store_true", help="write into DEST even if it is not empty")
    p.add_argument("--no-run", action="store_true", help="port and write the run file only; do not run the suite")
    p.add_argument(
        "--mode",
        choices=["inprocess", "live", "fuzz", "all"],
        default=None,
        help=f"the suite's modes (default: {', '.join(suite.DEFAULT_MODES)})",
    )
    p.add_argument(
        "--fuzz",
        type=int,
        default=suite.DEFAULT_FUZZ,
        metavar="N",
        help=f"fuzz requests (default {suite.DEFAULT_FUZZ})",
    )
    p.add_argument(
        "--corpus",
        default=None,
        metavar="PATH",
        help="play this corpus (file or folder) instead of writing a starter one",
    )
    p.add_argument("--allow", default=None, metavar="PATH", help="the allow-list to use")
    p.add_argument("-q", "--quiet", action="store_true", help="the flags and the verdict only")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        from . import scaffold
        from .port import PortError, port
        from .project import ProjectError
    except ImportError as exc:
        print(f"hostpulse-port: COULD NOT PORT: {exc} (install the port extra: pip install 'hostpulse[port]')")
        return 2
    say = print
    started = time.monotonic()
    try:
        result = port(args.src, args.dest, force=args.force)
    except (ProjectError, PortError) as exc:
        say(f"hostpulse-port: COULD NOT PORT: {exc}")
        return 2
    dest = result.dest
    plan = result.plan
    report: dict = {
        "src": str(Path(args.src).resolve()),
        "dest": str(dest),
        "app": result.app,
        "changed": result.changed,
        "async": plan.async_keys,
        "flags": [f.as_dict() for f in result.flags],
        "support": str(result.support or ""),
    }
    if not args.quiet:
        say(
            f"hostpulse-port: ported {len(result.project.modules)} module(s) of {result.project.src} into {dest} "
            f"({len(result.changed)} changed): {len(plan.make_async)} function(s) made async, "
            f"{len(plan.await_nodes)} await(s)" + (f"; support module {result.support.name}" if result.support else "")
        )
    for flag in result.flags:
        say(f"  {flag}")
    broken = _compile(dest, result.project.modules)
    if broken:
        say(f"hostpulse-port: COULD NOT PORT: the rewrite of {broken} does not compile (a porter bug)")
        return 2
    if errors(result.flags):
        say(
            f"hostpulse-port: COULD NOT PORT: {len(errors(result.flags))} thing(s) the porter cannot port safely "
            f"(errors above); DEST holds the rest of the port"
        )
        _write_report(dest, report, "failed", 2)
        return 2
    try:
        built = scaffold.write(
            result,
            modes=_modes(args.mode),
            fuzz=args.fuzz,
            corpus=Path(args.corpus) if args.corpus else None,
            allow=Path(args.allow) if args.allow else None,
        )
    except scaffold.ScaffoldError as exc:
        say(f"hostpulse-port: COULD NOT PORT: {exc}")
        _write_report(dest, report, "failed", 2)
        return 2
    report["runfile"] = str(built.runfile)
    if not args.quiet:
        say(
            f"hostpulse-port: run file {built.runfile}, corpus {built.corpus}"
            + (f" ({built.scenarios} scenarios from {len(built.routes)} routes)" if built.scenarios else "")
            + (f", setup hook {built.hook.name}" if built.hook else "")
        )
    if args.no_run:
        say(f"hostpulse-port: not run; prove it with: hostpulse-compat --config {built.runfile}")
        _write_report(dest, report, "not run", 0)
        return 0
    verdict = suite.run(built.runfile, report_dir=dest)
    report["groups"] = [g.__dict__ for g in verdict.groups]
    report["counts"] = verdict.counts
    if verdict.status == "failed":
        say(verdict.output.strip()[-3000:])
    elif verdict.groups:
        say(suite.describe(verdict, dest, result.flags))
    say(f"hostpulse-port: {verdict.line} (report {dest / 'compat-report.html'}; {time.monotonic() - started:.0f} s)")
    _write_report(dest, report, verdict.status, verdict.code)
    return verdict.code


def _modes(mode: str | None) -> list[str] | None:
    if mode is None:
        return None
    return ["inprocess", "live", "fuzz"] if mode == "all" else [mode]


def _compile(dest: Path, modules: dict) -> str | None:
    for module in modules.values():
        path = dest / module.rel
        try:
            compile(path.read_text(encoding="utf-8"), str(path), "exec")
        except SyntaxError:
            return str(module.rel)
    return None


def _write_report(dest: Path, report: dict, status: str, code: int) -> None:
    report.update(status=status, exit=code)
    (dest / "port-report.json").write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
