"""``python -m compat`` / ``hostpulse-compat``: prove, request by request, that a port
answers like its reference.

    hostpulse-compat --config compat.toml [--mode inprocess|live|fuzz|all] [--report out.html]
    python -m compat [--reference M:F] [--candidate M:F] [--corpus PATH] [--allow PATH] ...

Exit status: 0 when every difference is absent or allow-listed with its reason (and, with
``--mutants``, no mutant missed); 1 when a difference is unexplained; 2 on a usage or setup
error (a bad run file or corpus, an app that does not start).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .allow import AllowList, unused_allow_entries
from .apps import DEFAULT_CANDIDATE, DEFAULT_REFERENCE, AppSpec, InstanceSetup
from .corpus import DEFAULT_CORPUS, CorpusError, load
from .loading import SetupError
from .report import print_text, verdict, write_report
from .results import PairReport
from .runfile import RunFile, RunFileError
from .runfile import load as load_runfile

DEFAULT_ALLOW = Path(__file__).resolve().parent / "allowlist.toml"
DEFAULT_LOGS = "compat-logs"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="hostpulse-compat", description="Prove, request by request, that a port answers like its reference."
    )
    p.add_argument("--config", metavar="FILE", help="a run file (TOML): the two sides, setup hook, corpus")
    p.add_argument(
        "--mode",
        choices=["inprocess", "live", "fuzz", "all"],
        default=None,
        help="default: the run file's modes, else inprocess",
    )
    p.add_argument(
        "--fuzz",
        type=int,
        default=None,
        metavar="N",
        help="fuzz requests to generate (default 2000; implies fuzz in --mode all)",
    )
    p.add_argument("--fuzz-seed", type=int, default=None, help="seed of the fuzz run (reproducible)")
    p.add_argument("--reference", default=None, metavar="MODULE:FACTORY")
    p.add_argument("--candidate", default=None, metavar="MODULE:FACTORY")
    p.add_argument("--corpus", default=None, metavar="PATH", help="corpus directory or file")
    p.add_argument(
        "--allow",
        default=None,
        metavar="PATH",
        help="allow-list (default: the run file's, compat/allowlist.toml for the built-in corpus, "
        "else allowlist.toml beside the corpus if present)",
    )
    p.add_argument(
        "--report", action="append", default=[], metavar="FILE", help="write a report: .json or .html (repeatable)"
    )
    p.add_argument(
        "--logs",
        default=None,
        metavar="DIR",
        help=f"where the apps' own logs go (default ./{DEFAULT_LOGS}; its old *.log files are removed)",
    )
    p.add_argument("--smoke", action="store_true", help="live mode: only the scenarios tagged smoke")
    p.add_argument("--tag", action="append", default=[], help="only scenarios with this tag")
    p.add_argument("--scenario", action="append", default=[], help="only this scenario (repeatable)")
    p.add_argument("--mutants", action="store_true", help="also run the mutant self-check")
    p.add_argument(
        "--servers",
        default=None,
        help="live mode: comma-separated subset of gunicorn,hypercorn,hypercorn-wsgi "
        "(default gunicorn,hypercorn: what a team deploys)",
    )
    p.add_argument("--workers", type=int, default=None, help="live mode: workers per server")
    p.add_argument("--keep", action="store_true", help="keep the instance folders")
    p.add_argument("-v", "--verbose", action="store_true", help="every difference, not one example per group")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except (RunFileError, CorpusError, SetupError) as exc:
        print(f"compat: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # an unknown server, ...
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
            return 2
        raise


def _sides(args: argparse.Namespace, runfile: RunFile | None) -> tuple[AppSpec, AppSpec]:
    if runfile is not None:
        ref, cand = runfile.reference, runfile.candidate
        if args.reference:
            ref = AppSpec(args.reference, hook=ref.hook, hook_path=ref.hook_path, secret_key=ref.secret_key)
        if args.candidate:
            cand = AppSpec(args.candidate, hook=cand.hook, hook_path=cand.hook_path, secret_key=cand.secret_key)
        return ref, cand
    return AppSpec(args.reference or DEFAULT_REFERENCE), AppSpec(args.candidate or DEFAULT_CANDIDATE)


def _allow_path(args: argparse.Namespace, runfile: RunFile | None, corpus_path: Path, builtin: bool) -> Path | None:
    if args.allow:
        path = Path(args.allow)
        if not path.exists():
            raise RunFileError(f"no allow-list at {path}")
        return path
    if runfile is not None and runfile.allow is not None:
        return runfile.allow
    if builtin:
        return DEFAULT_ALLOW
    base = corpus_path if corpus_path.is_dir() else corpus_path.parent
    return base / "allowlist.toml"


def _logs_dir(args: argparse.Namespace, run: dict) -> Path:
    """The folder of the apps' logs, without the previous run's ``*.log`` files (nothing else
    in it is touched: it may be a folder of the user's)."""
    logs = Path(args.logs or run.get("logs") or DEFAULT_LOGS)
    logs.mkdir(parents=True, exist_ok=True)
    for old in logs.glob("*.log"):
        old.unlink(missing_ok=True)
    return logs


def _main(argv: list[str] | None) -> int:
    args = parse_args(argv)
    for var in ("HOSTPULSE_CONFIG",):
        if var in os.environ:
            print(f"compat: ignoring ${var} (every instance gets its own config)", file=sys.stderr)
            os.environ.pop(var)
    runfile = load_runfile(args.config) if args.config else None
    try:
        return _run(args, runfile)
    finally:
        if runfile is not None:
            runfile.close()


def _run(args: argparse.Namespace, runfile: RunFile | None) -> int:
    run = runfile.run if runfile is not None else {}
    reference, candidate = _sides(args, runfile)
    if args.corpus:
        corpus_path = Path(args.corpus)
    elif runfile is not None and runfile.corpus is not None:
        corpus_path = runfile.corpus
    else:
        corpus_path = DEFAULT_CORPUS
    builtin = corpus_path == DEFAULT_CORPUS
    corpus = load(corpus_path)
    allow_path = _allow_path(args, runfile, corpus_path, builtin)
    try:
        allow = AllowList.load(allow_path)
    except (ValueError, OSError) as exc:
        raise RunFileError(f"allow-list: {exc}") from None
    setup = InstanceSetup.load(runfile.instance) if runfile is not None and runfile.instance else corpus.setup()
    if args.mode:
        modes = ["inprocess", "live", "fuzz"] if args.mode == "all" else [args.mode]
    else:
        modes = list(run.get("modes", ["inprocess"]))
    fuzz_n = args.fuzz if args.fuzz is not None else int(run.get("fuzz", 2000))
    if args.fuzz is not None and "fuzz" not in modes:
        modes.append("fuzz")
    seed = args.fuzz_seed if args.fuzz_seed is not None else int(run.get("fuzz_seed", 0))
    servers = args.servers.split(",") if args.servers else run.get("servers")
    workers = args.workers or int(run.get("workers", 1))
    limits = [int(x) for x in run.get("limits", [])]
    tags = set(args.tag) or None
    names = set(args.scenario) or None
    logs = _logs_dir(args, run)
    reports: list[PairReport] = []
    started = time.monotonic()
    checks = None
    say = lambda text: print(f"compat: {text}", file=sys.stderr)  # noqa: E731 -- progress lines
    say(f"{reference} vs {candidate}; corpus {corpus_path}; the apps' logs in {logs}/")
    for mode in modes:
        t0 = time.monotonic()
        if mode == "inprocess":
            from .inprocess import run_inprocess

            scenarios = corpus.select(mode="inprocess", tags=tags, names=names)
            reports.append(run_inprocess(reference, candidate, scenarios, setup, allow, keep=args.keep, logs=logs))
        elif mode == "live":
            from .live import LiveError, run_live

            live_tags = (tags or set()) | ({"smoke"} if args.smoke else set())
            scenarios = corpus.select(mode="live", tags=live_tags or None, names=names)
            try:
                reports.extend(
                    run_live(
                        reference,
                        candidate,
                        scenarios,
                        setup,
                        allow,
                        keep=args.keep,
                        servers=servers,
                        workers=workers,
                        logs=logs,
                        limits=limits,
                        edges=not (args.smoke or names or tags),
                    )
                )
            except LiveError as exc:
                raise SetupError(f"live: {exc}") from None
        elif mode == "fuzz":
            from .fuzz import run_fuzz

            reports.append(
                run_fuzz(
                    reference,
                    candidate,
                    setup,
                    allow,
                    n=fuzz_n,
                    seed=seed,
                    keep=args.keep,
                    logs=logs,
                    corpus=corpus.scenarios,
                    limits=limits,
                )
            )
        say(
            f"{mode} done in {time.monotonic() - t0:.1f}s ({sum(len(r.results) for r in reports if r.mode == mode)} requests)"
        )
    if args.mutants or run.get("mutants"):
        from .mutants import self_check

        t0 = time.monotonic()
        checks = self_check(
            reference, candidate, corpus.select(mode="inprocess", tags=tags, names=names), setup, logs=logs
        )
        say(f"mutant self-check done in {time.monotonic() - t0:.1f}s")
    unused = unused_allow_entries(allow, reports)
    print_text(reports, sys.stdout, unused=unused, checks=checks, verbose=args.verbose, logs=logs)
    meta = {
        "reference": str(reference),
        "candidate": str(candidate),
        "corpus": str(corpus_path),
        "allow": str(allow_path),
        "modes": modes,
        "logs": str(logs),
        "run_file": str(args.config or ""),
        "seconds": round(time.monotonic() - started, 1),
    }
    configured = run.get("report", [])
    for path in args.report or ([configured] if isinstance(configured, str) else configured):
        write_report(Path(path), reports, unused=unused, meta=meta, checks=checks)
        say(f"report written to {path}")
    ok, line = verdict(reports, checks)
    print("\ncompat: " + line)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
