"""In-process mode: both apps driven through :mod:`compat.clients`, as their servers would."""

from __future__ import annotations

from typing import Any, Callable

from compat.apps import AppSpec, Instance, InstanceSetup, Workdir, start_inprocess
from compat.corpus import Scenario
from compat.runner import AllowList, PairReport, StepResult, Target, compare_runs, play_all


def start_trio(reference: AppSpec, candidate: AppSpec, workdir: Workdir, setup: InstanceSetup,
               wrap: Callable[[Any], Any] | None = None) -> list[Instance]:
    """Primary and secondary (two independent reference instances), and the candidate."""
    instances: list[Instance] = []
    try:
        instances.append(start_inprocess(reference, workdir, setup, "reference"))
        instances.append(start_inprocess(reference, workdir, setup, "reference-2"))
        instances.append(start_inprocess(candidate, workdir, setup, "candidate", wrap=wrap))
    except BaseException:
        for inst in instances:
            inst.close()
        raise
    return instances


def play_reference(reference: AppSpec, scenarios: list[Scenario], workdir: Workdir,
                   setup: InstanceSetup) -> tuple[dict[str, list[StepResult]], dict[str, list[StepResult]]]:
    """Play the scenarios on two fresh reference instances (reused by the mutant self-check)."""
    a = start_inprocess(reference, workdir, setup, "reference")
    b = start_inprocess(reference, workdir, setup, "reference-2")
    try:
        runs = play_all(scenarios, [Target("reference", a.client, a.folder)],
                        later=[Target("reference-2", b.client, b.folder)])
    finally:
        a.close()
        b.close()
    return runs["reference"], runs["reference-2"]


def play_candidate(candidate: AppSpec, scenarios: list[Scenario], workdir: Workdir, setup: InstanceSetup,
                   wrap: Callable[[Any], Any] | None = None, label: str = "candidate") -> dict[str, list[StepResult]]:
    c = start_inprocess(candidate, workdir, setup, label, wrap=wrap)
    try:
        return play_all(scenarios, [Target(label, c.client, c.folder)])[label]
    finally:
        c.close()


def play_instances(scenarios: list[Scenario], instances: list[Instance]) -> dict[str, list[StepResult]]:
    """Play every scenario on every instance, the second reference last (its clock-based
    answers must differ to be learnt as noise), then close them all."""
    try:
        targets = [Target(i.label, i.client, i.folder) for i in instances]
        return play_all(scenarios, [t for t in targets if t.label != "reference-2"],
                        later=[t for t in targets if t.label == "reference-2"])
    finally:
        for inst in instances:
            inst.close()


def run_inprocess(reference: AppSpec, candidate: AppSpec, scenarios: list[Scenario], setup: InstanceSetup,
                  allow: AllowList, *, keep: bool = False, wrap: Callable[[Any], Any] | None = None,
                  reference_label: str | None = None, candidate_label: str | None = None) -> PairReport:
    workdir = Workdir(keep=keep, prefix="compat-inprocess-")
    try:
        runs = play_instances(scenarios, start_trio(reference, candidate, workdir, setup, wrap=wrap))
        report = compare_runs(
            scenarios, runs["reference"], runs["reference-2"], runs["candidate"],
            mode="inprocess", reference_label=reference_label or str(reference),
            candidate_label=candidate_label or str(candidate), allow=allow,
        )
        report.extra["workdir"] = str(workdir.path) if keep else None
        return report
    finally:
        workdir.close()
