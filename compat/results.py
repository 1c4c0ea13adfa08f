"""Comparing what the instances answered, request by request, into one report per pair.

Noise is learnt from the two reference instances (primary and secondary), then the
candidate is compared with the primary; each difference is matched against the catalogue
of known differences, then against the allow-list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .allow import AllowList
from .clients import Reply
from .compare import LIVE_TRANSPORT_HEADERS, TRANSPORT_HEADERS, Difference, Noise, compare, learn_noise
from .corpus import Scenario
from .known import Evidence, Known, explain
from .play import StepResult


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
        return (
            not self.differences
            and self.reference is not None
            and self.candidate is not None
            and self.reference.status >= 500
            and self.candidate.status >= 500
        )

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
        c = {
            "requests": len(self.results),
            "same": 0,
            "noise": 0,
            "allowed": 0,
            "both 5xx": 0,
            "DIFFERENT": 0,
            "reference 5xx": 0,
        }
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
        return (
            []
            if p.error.split("\n")[0] == c.error.split("\n")[0]
            else [Difference("error", "request", p.error, c.error, "both sides failed differently")]
        )
    if p.error or c.error:
        return [
            Difference(
                "error", "request", p.error or "(answered)", c.error or "(answered)", "one side failed to answer"
            )
        ]
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
                kr = KeyResult(
                    present.key, s.name, s.tags, present.request, p and p.reply, c and c.reply, q and q.reply
                )
                kr.differences.append(
                    Difference(
                        "error",
                        "request",
                        "played" if p else "not played",
                        "played" if c else "not played",
                        "the sequence stopped early on one side",
                    )
                )
            else:
                if not p.compare:
                    continue
                kr = KeyResult(
                    p.key,
                    s.name,
                    s.tags,
                    p.request,
                    p.reply,
                    c.reply,
                    q and q.reply,
                    accumulated=(p.accumulated, c.accumulated),
                )
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
                    outcome = compare(
                        p.reply,
                        c.reply,
                        noise,
                        ignore=ignore,
                        live=live,
                        acc_ref=p.accumulated,
                        acc_cand=c.accumulated,
                        method=p.method,
                        secret_key=secret_key,
                    )
                    kr.differences.extend(outcome.differences)
                    kr.noise_hits = outcome.noise_hits
                    kr.notes = outcome.notes
            for d in kr.differences:
                known = explain(
                    Evidence(
                        d,
                        kr.request,
                        kr.reference,
                        kr.candidate,
                        candidate_log=kr.candidate.log if kr.candidate else "",
                        reference_log=kr.reference.log if kr.reference else "",
                        mode=mode,
                        pair=pair,
                    )
                )
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
    return PairReport(
        mode=mode,
        reference=reference_label,
        candidate=candidate_label,
        results=results,
        ignored_headers=ignore,
        global_noise_headers=global_headers,
    )
