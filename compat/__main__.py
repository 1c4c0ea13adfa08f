"""``python -m compat``: prove, request by request, that a port answers like its reference.

    python -m compat [--mode inprocess|live|fuzz|all] [--fuzz N] [--reference M:F]
                     [--candidate M:F] [--corpus PATH] [--allow PATH] [--report out.json|out.html]
                     [--smoke] [--mutants]

Exit status: 0 when every difference is absent or allow-listed with its reason (and, with
``--mutants``, every mutant is caught); 1 when a difference is unexplained; 2 on a usage or
setup error.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from compat.apps import DEFAULT_CANDIDATE, DEFAULT_REFERENCE, AppSpec
from compat.corpus import DEFAULT_CORPUS, CorpusError, load
from compat.report import print_text, write_report
from compat.runner import AllowList, PairReport, unused_allow_entries

DEFAULT_ALLOW = Path(__file__).resolve().parent / "allowlist.toml"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m compat", description=__doc__.split("\n")[0])
    p.add_argument("--mode", choices=["inprocess", "live", "fuzz", "all"], default="inprocess")
    p.add_argument("--fuzz", type=int, default=None, metavar="N",
                   help="fuzz requests to generate (default 2000; implies fuzz in --mode all)")
    p.add_argument("--fuzz-seed", type=int, default=0, help="seed of the fuzz run (reproducible)")
    p.add_argument("--reference", default=DEFAULT_REFERENCE, metavar="MODULE:FACTORY")
    p.add_argument("--candidate", default=DEFAULT_CANDIDATE, metavar="MODULE:FACTORY")
    p.add_argument("--corpus", default=None, metavar="PATH", help="corpus directory or file")
    p.add_argument("--allow", default=None, metavar="PATH",
                   help="allow-list (default: compat/allowlist.toml for the built-in corpus, "
                        "else allowlist.toml beside the corpus if present)")
    p.add_argument("--report", action="append", default=[], metavar="FILE",
                   help="write a report: .json or .html (repeatable)")
    p.add_argument("--smoke", action="store_true", help="live mode: only the scenarios tagged smoke")
    p.add_argument("--tag", action="append", default=[], help="only scenarios with this tag")
    p.add_argument("--scenario", action="append", default=[], help="only this scenario (repeatable)")
    p.add_argument("--mutants", action="store_true", help="also run the mutant self-check")
    p.add_argument("--servers", default=None,
                   help="live mode: comma-separated subset of gunicorn,hypercorn-wsgi,hypercorn")
    p.add_argument("--workers", type=int, default=1, help="live mode: workers per server")
    p.add_argument("--keep", action="store_true", help="keep the instance folders")
    p.add_argument("-v", "--verbose", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except SystemExit as exc:  # a factory that cannot be loaded, an unknown server, ...
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
            return 2
        raise


def _main(argv: list[str] | None) -> int:
    args = parse_args(argv)
    # the apps of this project live at the repository root
    root = str(Path(__file__).resolve().parent.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    for var in ("HOSTPULSE_CONFIG",):
        if var in os.environ:
            print(f"compat: ignoring ${var} (every instance gets its own config)", file=sys.stderr)
            os.environ.pop(var)
    corpus_path = Path(args.corpus) if args.corpus else DEFAULT_CORPUS
    try:
        corpus = load(corpus_path)
    except CorpusError as exc:
        print(f"compat: corpus: {exc}", file=sys.stderr)
        return 2
    if args.allow:
        allow_path: Path | None = Path(args.allow)
        if not allow_path.exists():
            print(f"compat: no allow-list at {allow_path}", file=sys.stderr)
            return 2
    elif args.corpus is None:
        allow_path = DEFAULT_ALLOW
    else:
        base = corpus_path if corpus_path.is_dir() else corpus_path.parent
        allow_path = base / "allowlist.toml"
    try:
        allow = AllowList.load(allow_path)
    except (ValueError, OSError) as exc:
        print(f"compat: allow-list: {exc}", file=sys.stderr)
        return 2
    reference, candidate = AppSpec(args.reference), AppSpec(args.candidate)
    reference.factory(), candidate.factory()  # fail early (exit 2) on a name that does not load
    setup = corpus.setup()
    modes = ["inprocess", "live", "fuzz"] if args.mode == "all" else [args.mode]
    if args.fuzz is not None and "fuzz" not in modes:
        modes.append("fuzz")
    tags = set(args.tag) or None
    names = set(args.scenario) or None
    reports: list[PairReport] = []
    notes: list[str] = []
    started = time.monotonic()
    mutants_ok = True
    for mode in modes:
        t0 = time.monotonic()
        if mode == "inprocess":
            from compat.inprocess import run_inprocess

            scenarios = corpus.select(mode="inprocess", tags=tags, names=names)
            print(f"compat: in-process: {len(scenarios)} scenarios, {reference} vs {candidate}", file=sys.stderr)
            reports.append(run_inprocess(reference, candidate, scenarios, setup, allow, keep=args.keep))
        elif mode == "live":
            from compat.live import run_live

            live_tags = (tags or set()) | ({"smoke"} if args.smoke else set())
            scenarios = corpus.select(mode="live", tags=live_tags or None, names=names)
            print(f"compat: live: {len(scenarios)} scenarios", file=sys.stderr)
            from compat.live import LiveError

            servers = args.servers.split(",") if args.servers else None
            try:
                reports.extend(run_live(reference, candidate, scenarios, setup, allow, keep=args.keep,
                                        servers=servers, workers=args.workers))
            except LiveError as exc:
                print(f"compat: live: {exc}", file=sys.stderr)
                return 2
        elif mode == "fuzz":
            from compat.fuzz import run_fuzz

            n = args.fuzz if args.fuzz is not None else 2000
            print(f"compat: fuzz: {n} generated requests", file=sys.stderr)
            reports.append(run_fuzz(reference, candidate, setup, allow, n=n, seed=args.fuzz_seed, keep=args.keep))
        print(f"compat: {mode} done in {time.monotonic() - t0:.1f}s", file=sys.stderr)
    if args.mutants:
        from compat.mutants import print_selfcheck, self_check

        scenarios = corpus.select(mode="inprocess", tags=tags, names=names)
        t0 = time.monotonic()
        checks = self_check(reference, candidate, scenarios, setup)
        print_selfcheck(checks, sys.stdout)
        print(f"compat: mutant self-check done in {time.monotonic() - t0:.1f}s", file=sys.stderr)
        mutants_ok = all(c.passed for c in checks)
    unused = unused_allow_entries(allow, reports)
    print_text(reports, sys.stdout, unused=unused, extra_notes=notes, verbose=args.verbose)
    meta = {"reference": str(reference), "candidate": str(candidate), "corpus": str(corpus_path),
            "allow": str(allow_path), "modes": modes, "seconds": round(time.monotonic() - started, 1)}
    for path in args.report:
        write_report(Path(path), reports, unused=unused, meta=meta)
        print(f"compat: report written to {path}", file=sys.stderr)
    same = all(not r.unexplained for r in reports)
    verdicts = ["no unexplained difference" if same else "UNEXPLAINED DIFFERENCES"]
    if args.mutants:
        verdicts.append("every mutant caught" if mutants_ok else "A MUTANT NOT CAUGHT")
    ok = same and mutants_ok
    print("\ncompat: " + ("OK: " if ok else "FAILED: ") + "; ".join(verdicts))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
