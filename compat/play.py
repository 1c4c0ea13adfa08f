"""Playing scenarios on instances: each instance plays the whole list in order, in its own
thread (instances are independent: each has its own folder, jobs, uploads and cookies)."""

from __future__ import annotations

import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .capture import capture_html
from .clients import AppClient, Reply
from .cookies import CookieJar
from .corpus import BuiltRequest, Scenario, Step, build_request


@dataclass
class Target:
    """Where requests go: a client, and the instance folder (for a sequence's actions).

    ``session`` is the cookie jar a scenario tagged ``login`` leaves behind, used by the
    scenarios tagged ``session`` (generated requests sent as a logged-in user)."""

    label: str
    client: AppClient
    folder: Path | None = None
    description: str = ""
    session: CookieJar = field(default_factory=CookieJar)


@dataclass
class StepResult:
    key: str
    step: str
    request: dict[str, Any] | None
    reply: Reply | None
    error: str | None = None
    accumulated: dict[str, str] = field(default_factory=dict)
    compare: bool = True
    tries: int = 1
    method: str = "GET"
    accumulate: str | None = None  # JSON field compared through ``accumulated`` instead


def _json_field(reply: Reply, dotted: str) -> Any:
    try:
        value = reply.json()
    except Exception:
        return None
    for part in dotted.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def _capture(reply: Reply, spec: str) -> Any:
    kind, _, what = spec.partition(":")
    if kind == "header":
        return reply.header(what)
    if kind == "json":
        return _json_field(reply, what)
    if kind == "status":
        return reply.status
    if kind in ("html", "regex"):
        return capture_html(reply.body, spec)
    raise ValueError(f"bad capture {spec!r}")


def _until_met(reply: Reply, until: dict[str, Any]) -> bool:
    if "status" in until and reply.status != until["status"]:
        return False
    if "field" in until:
        value = _json_field(reply, until["field"])
        if "equals" in until and value != until["equals"]:
            return False
        if "in" in until and value not in until["in"]:
            return False
        if "contains" in until:
            acc = until.get("_acc", "")
            if until["contains"] not in str(value) and until["contains"] not in acc:
                return False
    return True


def with_cookies(req: BuiltRequest, jar: CookieJar | None) -> BuiltRequest:
    """The request with the jar's ``Cookie`` header, unless the step sets its own."""
    if jar is None or any(name.lower() == "cookie" for name, _ in req.headers):
        return req
    cookie = jar.header(req.path.split("?", 1)[0])
    return replace(req, headers=req.headers + [("Cookie", cookie)]) if cookie else req


def send(client: AppClient, req: BuiltRequest) -> Reply:
    return client.request(req.method, req.path, headers=req.headers, body=req.body_arg())


def play(scenario: Scenario, target: Target) -> list[StepResult]:
    """Play one scenario on one instance, with a cookie jar of its own (unless it opts out)."""
    results: list[StepResult] = []
    variables: dict[str, Any] = {}
    if "session" in scenario.tags:
        jar: CookieJar | None = target.session
    elif "login" in scenario.tags:
        jar = target.session = CookieJar()
    else:
        jar = CookieJar() if scenario.cookies else None
    for step in scenario.steps:
        key = scenario.name if len(scenario.steps) == 1 else f"{scenario.name}/{step.name}"
        if step.action:
            try:
                _action(step, target)
            except Exception as exc:
                results.append(StepResult(key, step.name, None, None, error=f"action failed: {exc!r}", compare=True))
                break
            continue
        try:
            req = build_request(step, variables)
        except Exception as exc:
            results.append(StepResult(key, step.name, None, None, error=f"corpus: {exc}"))
            break
        acc_parts: list[str] = []
        sent = req
        reply: Reply | None = None
        error = None
        tries = 0
        for tries in range(1, step.max_tries + 1):  # noqa: B007 -- read after the loop
            try:
                sent = with_cookies(req, jar)
                reply = send(target.client, sent)
                if jar is not None:
                    jar.update(reply.headers, req.path.split("?", 1)[0])
                error = None
            except Exception as exc:  # the harness must survive an app that breaks
                reply, error = None, f"{type(exc).__name__}: {exc}"
                tb = traceback.format_exc(limit=3)
                error += "\n" + tb[-800:]
                break
            if step.accumulate:
                value = _json_field(reply, step.accumulate)
                if value not in (None, ""):
                    acc_parts.append(str(value))
            if not step.until:
                break
            until = dict(step.until)
            until["_acc"] = "\n".join(acc_parts)
            if _until_met(reply, until):
                break
            time.sleep(step.interval)
        else:
            if step.until and reply is not None:
                error = f"until {step.until} not met after {step.max_tries} tries"
        accumulated = {step.accumulate: "\n".join(acc_parts)} if step.accumulate else {}
        results.append(
            StepResult(
                key,
                step.name,
                sent.describe(),
                reply,
                error=error,
                accumulated=accumulated,
                compare=step.compare,
                tries=tries,
                method=req.method,
                accumulate=step.accumulate,
            )
        )
        if reply is None:
            break
        for var, spec in step.capture.items():
            variables[var] = _capture(reply, spec)
    return results


def _action(step: Step, target: Target) -> None:
    if step.action == "sleep":
        time.sleep(step.seconds)
        return
    if target.folder is None:
        raise RuntimeError("this target has no instance folder")
    path = (target.folder / (step.file or "")).resolve()
    if target.folder.resolve() not in path.parents:
        raise RuntimeError(f"{step.file!r} is outside the instance folder")
    if step.action == "touch":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    elif step.action == "remove":
        path.unlink(missing_ok=True)


# The secondary reference plays after the others, this long after they finished, so that a
# value that depends on the time (Last-Modified of a fresh upload, a timestamp: one-second
# resolution) always differs between the two references and is learnt as noise.
SECONDARY_GAP = 1.1


def play_all(
    scenarios: list[Scenario], targets: list[Target], later: list[Target] = ()
) -> dict[str, dict[str, list[StepResult]]]:
    """Every target plays every scenario, targets in parallel; {label: {scenario: results}}.

    ``later`` targets (the secondary reference) play once the others have finished, after
    :data:`SECONDARY_GAP` seconds.
    """

    def run(target: Target) -> dict[str, list[StepResult]]:
        return {s.name: play(s, target) for s in scenarios}

    with ThreadPoolExecutor(max_workers=max(1, len(targets), len(later))) as pool:
        futures = {t.label: pool.submit(run, t) for t in targets}
        results = {label: f.result() for label, f in futures.items()}
        if later:
            time.sleep(SECONDARY_GAP)
            futures = {t.label: pool.submit(run, t) for t in later}
            results.update({label: f.result() for label, f in futures.items()})
    return results
