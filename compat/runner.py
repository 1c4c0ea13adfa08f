"""Playing scenarios on instances and comparing what they answer.

Every instance plays the whole list of scenarios in order, in its own thread (instances are
independent: each has its own folder, jobs and uploads). When all have finished, the
answers are compared request by request: noise is learnt from the two reference instances
(primary and secondary) and then the candidate is compared with the primary.
"""

from __future__ import annotations

import fnmatch
import time
import tomllib
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable

from .clients import AppClient, Reply
from .compare import (
    LIVE_TRANSPORT_HEADERS,
    TRANSPORT_HEADERS,
    Difference,
    Noise,
    compare,
    learn_noise,
)
from .capture import capture_html
from .cookies import CookieJar
from .corpus import BuiltRequest, Scenario, Step, build_request
from .known import Evidence, Known, explain


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
                results.append(StepResult(key, step.name, None, None, error=f"action failed: {exc!r}",
                                          compare=True))
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
        for tries in range(1, step.max_tries + 1):
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
        results.append(StepResult(key, step.name, sent.describe(), reply, error=error,
                                  accumulated=accumulated, compare=step.compare, tries=tries,
                                  method=req.method, accumulate=step.accumulate))
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


def play_all(scenarios: list[Scenario], targets: list[Target],
             later: list[Target] = ()) -> dict[str, dict[str, list[StepResult]]]:
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


# ---------------------------------------------------------------------------- allow-list


@dataclass
class AllowEntry:
    scenario: str
    difference: str
    reason: str
    modes: tuple[str, ...] = ()
    pair: str = "*"
    used: int = 0

    def matches(self, key: str, diff: Difference, mode: str, pair: str) -> bool:
        if self.modes and mode not in self.modes:
            return False
        if not fnmatch.fnmatchcase(pair, self.pair):
            return False
        scen = key.split("/", 1)[0]
        if not (fnmatch.fnmatchcase(key, self.scenario) or fnmatch.fnmatchcase(scen, self.scenario)):
            return False
        return fnmatch.fnmatchcase(diff.key(), self.difference)


class AllowList:
    def __init__(self, entries: list[AllowEntry], source: str = "") -> None:
        self.entries = entries
        self.source = source

    @classmethod
    def load(cls, path: Path | None) -> "AllowList":
        if path is None or not Path(path).exists():
            return cls([], str(path or ""))
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        entries = []
        for n, item in enumerate(data.get("allow", [])):
            reason = str(item.get("reason", "")).strip()
            if not reason:
                raise ValueError(f"{path}: allow[{n}] has no reason; every allowed difference needs one")
            for k in ("scenario", "difference"):
                if not item.get(k):
                    raise ValueError(f"{path}: allow[{n}] needs {k}")
            entries.append(AllowEntry(
                scenario=item["scenario"], difference=item["difference"], reason=reason,
                modes=tuple(item.get("modes", ())), pair=item.get("pair", "*"),
            ))
        return cls(entries, str(path))

    def find(self, key: str, diff: Difference, mode: str, pair: str) -> AllowEntry | None:
        for e in self.entries:
            if e.matches(key, diff, mode, pair):
                e.used += 1
                return e
        return None


# ---------------------------------------------------------------------------- results


@dataclass
class KeyResult:
    """The comparison of one request (one scenario, or one step of a sequence)."""

    key: str
    scenario: str
    tags: tuple[str, ...]
    request: dict[str, Any] | None
    reference: Reply | None
    candidate: Reply | None
    secondary: Reply | None
    differences: list[Difference] = field(default_factory=list)
    allowed: list[tuple[Difference, str]] = field(default_factory=list)
    noise: list[str] = field(default_factory=list)  # noise learnt here (primary vs secondary)
    noise_hits: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    accumulated: tuple[dict[str, str], dict[str, str]] = ({}, {})
    known: dict[str, Known] = field(default_factory=dict)  # difference key -> its known cause

    @property
    def both_failed(self) -> bool:
        """Both sides answered 5xx alike: agreement that proves nothing (a broken setup?)."""
        return (not self.differences and self.reference is not None and self.candidate is not None
                and self.reference.status >= 500 and self.candidate.status >= 500)

    @property
    def status(self) -> str:
        if self.differences:
            return "DIFFERENT"
        if self.both_failed:
            return "both 5xx"
        if self.allowed:
            return "allowed"
        if self.noise_hits:
            return "same (noise)"
        return "same"

    def explain(self, diff: Difference) -> Known | None:
        return self.known.get(diff.key())


@dataclass
class PairReport:
    mode: str
    reference: str
    candidate: str
    results: list[KeyResult]
    ignored_headers: tuple[str, ...]
    global_noise_headers: set[str] = field(default_factory=set)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pair(self) -> str:
        return f"{self.reference}/{self.candidate}"

    @property
    def unexplained(self) -> list[KeyResult]:
        return [r for r in self.results if r.differences]

    def counts(self) -> dict[str, int]:
        """``same`` counts every request whose answers agree, noise compared by form included
        (``noise`` says how many of them had noisy parts)."""
        c = {"requests": len(self.results), "same": 0, "noise": 0, "allowed": 0, "both 5xx": 0,
             "DIFFERENT": 0, "reference 5xx": 0}
        for r in self.results:
            status = r.status
            if status in ("same", "same (noise)"):
                c["same"] += 1
                c["noise"] += status == "same (noise)"
            else:
                c[status] += 1
            if r.reference is not None and r.reference.status >= 500:
                c["reference 5xx"] += 1
        return c

    def noise_summary(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for r in self.results:
            for item in r.noise:
                out.setdefault(item, []).append(r.key)
        for h in sorted(self.global_noise_headers):
            out.setdefault(f"header:{h}", [])
        return out

    def notes(self) -> list[tuple[str, str]]:
        return [(r.key, n) for r in self.results for n in r.notes]


def _error_reply_diffs(p: StepResult, c: StepResult) -> list[Difference]:
    if p.error and c.error:
        return [] if p.error.split("\n")[0] == c.error.split("\n")[0] else [
            Difference("error", "request", p.error, c.error, "both sides failed differently")]
    if p.error or c.error:
        return [Difference("error", "request", p.error or "(answered)", c.error or "(answered)",
                           "one side failed to answer")]
    return []


def compare_runs(
    scenarios: list[Scenario],
    primary: dict[str, list[StepResult]],
    secondary: dict[str, list[StepResult]] | None,
    candidate: dict[str, list[StepResult]],
    *,
    mode: str,
    reference_label: str,
    candidate_label: str,
    allow: AllowList,
    live: bool = False,
    secret_key: str | None = None,
) -> PairReport:
    ignore = LIVE_TRANSPORT_HEADERS if live else TRANSPORT_HEADERS
    pair = f"{reference_label}/{candidate_label}"
    # pass 1: noise per request; header noise is global (a header that changes by itself
    # in one answer may change in any)
    per_key_noise: dict[str, Noise] = {}
    global_headers: set[str] = set()
    for s in scenarios:
        prim = primary.get(s.name, [])
        sec = (secondary or {}).get(s.name, [])
        for i, p in enumerate(prim):
            q = sec[i] if i < len(sec) else None
            if p.reply is None or q is None or q.reply is None:
                continue
            n = learn_noise(p.reply, q.reply, ignore, p.accumulated, q.accumulated, secret_key=secret_key)
            per_key_noise[p.key] = n
            global_headers |= n.headers | n.header_presence
    results: list[KeyResult] = []
    for s in scenarios:
        prim = primary.get(s.name, [])
        cand = candidate.get(s.name, [])
        sec = (secondary or {}).get(s.name, [])
        n = max(len(prim), len(cand))
        for i in range(n):
            p = prim[i] if i < len(prim) else None
            c = cand[i] if i < len(cand) else None
            q = sec[i] if i < len(sec) else None
            if p is None or c is None:
                present = p or c
                kr = KeyResult(present.key, s.name, s.tags, present.request, p and p.reply, c and c.reply,
                               q and q.reply)
                kr.differences.append(Difference("error", "request", "played" if p else "not played",
                                                 "played" if c else "not played",
                                                 "the sequence stopped early on one side"))
            else:
                if not p.compare:
                    continue
                kr = KeyResult(p.key, s.name, s.tags, p.request, p.reply, c.reply, q and q.reply,
                               accumulated=(p.accumulated, c.accumulated))
                errs = _error_reply_diffs(p, c)
                kr.differences.extend(errs)
                if p.reply is not None and c.reply is not None:
                    own = per_key_noise.get(p.key, Noise())
                    noise = Noise()
                    noise.merge(own)
                    noise.headers |= global_headers
                    if p.accumulate:
                        # the last try's share of a repeated field depends on timing; the
                        # whole of it is compared as the accumulated value
                        noise.covered.add("$." + p.accumulate)
                    kr.noise = own.items()
                    outcome = compare(p.reply, c.reply, noise, ignore=ignore, live=live,
                                      acc_ref=p.accumulated, acc_cand=c.accumulated, method=p.method,
                                      secret_key=secret_key)
                    kr.differences.extend(outcome.differences)
                    kr.noise_hits = outcome.noise_hits
                    kr.notes = outcome.notes
            for d in kr.differences:
                known = explain(Evidence(d, kr.request, kr.reference, kr.candidate,
                                         candidate_log=kr.candidate.log if kr.candidate else "",
                                         reference_log=kr.reference.log if kr.reference else "",
                                         mode=mode, pair=pair))
                if known is not None:
                    kr.known[d.key()] = known
            # allow-list
            remaining = []
            for d in kr.differences:
                entry = allow.find(kr.key, d, mode, pair)
                if entry is not None:
                    kr.allowed.append((d, entry.reason))
                else:
                    remaining.append(d)
            kr.differences = remaining
            results.append(kr)
    return PairReport(mode=mode, reference=reference_label, candidate=candidate_label,
                      results=results, ignored_headers=ignore, global_noise_headers=global_headers)


def unused_allow_entries(allow: AllowList, reports: list[PairReport] | None = None) -> list[AllowEntry]:
    """Entries that matched nothing although their mode and pair were played (stale?)."""
    out = []
    for e in allow.entries:
        if e.used:
            continue
        if reports is not None:
            played = [r for r in reports if (not e.modes or r.mode in e.modes)
                      and fnmatch.fnmatchcase(r.pair, e.pair)]
            if not any(fnmatch.fnmatchcase(k.key, e.scenario) or fnmatch.fnmatchcase(k.scenario, e.scenario)
                       for r in played for k in r.results):
                continue  # its scenarios were not played in this run
        out.append(e)
    return out


def iter_keys(results: Iterable[KeyResult]) -> list[str]:
    return [r.key for r in results]
