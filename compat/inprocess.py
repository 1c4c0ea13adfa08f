"""In-process mode: each instance is its side's app in a worker process of its own, driven
through the server-faithful clients of :mod:`compat.clients` (no server, no socket to it)."""

from __future__ import annotations

from .allow import AllowList
from .apps import AppSpec, Instance, InstanceSetup, Workdir, start_side
from .corpus import Scenario
from .play import StepResult, Target, play_all
from .results import PairReport, compare_runs


def start_instances(
    reference: AppSpec,
    candidate: AppSpec,
    workdir: Workdir,
    setup: InstanceSetup,
    candidates: dict[str, str | None] | None = None,
) -> list[Instance]:
    """Two independent reference instances (noise) and the candidates, {label: mutant or None},
    all started at once (each interpreter imports its app in parallel)."""
    from concurrent.futures import ThreadPoolExecutor

    wanted: list[tuple[AppSpec, str, str, str | None]] = [
        (reference, "reference", "reference", None),
        (reference, "reference", "reference-2", None),
    ]
    for label, wrap in (candidates or {"candidate": None}).items():
        wanted.append((candidate, "candidate", label, wrap))
    with ThreadPoolExecutor(max_workers=len(wanted)) as pool:
        futures = [
            pool.submit(start_side, spec, side, workdir, setup, label, wrap) for spec, side, label, wrap in wanted
        ]
        instances, failure = [], None
        for f in futures:
            try:
                instances.append(f.result())
            except BaseException as exc:  # noqa: BLE001 -- close what started, then raise
                failure = failure or exc
    if failure is not None:
        for inst in instances:
            inst.close()
        raise failure
    return instances


def play_instances(
    scenarios: list[Scenario], instances: list[Instance], stats: dict[str, dict] | None = None
) -> dict[str, list[StepResult]]:
    """Play every scenario on every instance, the second reference last (its clock-based
    answers must differ to be learnt as noise), then close them all (``stats``: what each
    worker counted, a mutant's changed answers)."""
    try:
        targets = [Target(i.label, i.client, i.folder) for i in instances]
        runs = play_all(
            scenarios,
            [t for t in targets if t.label != "reference-2"],
            later=[t for t in targets if t.label == "reference-2"],
        )
        if stats is not None:
            stats.update({i.label: i.client.stats() for i in instances})
        return runs
    finally:
        for inst in instances:
            inst.close()


def run_inprocess(
    reference: AppSpec,
    candidate: AppSpec,
    scenarios: list[Scenario],
    setup: InstanceSetup,
    allow: AllowList,
    *,
    keep: bool = False,
    logs=None,
    reference_label: str | None = None,
    candidate_label: str | None = None,
) -> PairReport:
    workdir = Workdir(keep=keep, prefix="compat-inprocess-", logs=logs)
    try:
        runs = play_instances(scenarios, start_instances(reference, candidate, workdir, setup))
        report = compare_runs(
            scenarios,
            runs["reference"],
            runs["reference-2"],
            runs["candidate"],
            mode="inprocess",
            reference_label=reference_label or str(reference),
            candidate_label=candidate_label or str(candidate),
            allow=allow,
            secret_key=reference.secret_key,
        )
        report.extra["workdir"] = str(workdir.path) if keep else None
        report.extra["logs"] = str(workdir.logs) if logs else None
        return report
    finally:
        workdir.close()
