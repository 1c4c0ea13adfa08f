"""What a person reads: the summary, differences grouped by kind and place, the verdict,
and the JSON and HTML reports.

One cross-cutting difference (a header every answer lacks) is one group with a count and
one example, not a page per request; each group carries its known cause and the usual fix
when the catalogue (:mod:`compat.known`) has one, and is marked as the servers' doing when
it is (it still counts: a client sees it). Requests both sides answered 5xx are never
"same": they are counted apart and shown loudly, since a broken setup agrees with itself.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from .allow import AllowEntry
from .clients import Reply
from .compare import Difference
from .known import Known, as_dict
from .results import KeyResult, PairReport

EXAMPLES = 3  # requests shown per group in the HTML report


def _short(value: Any, limit: int = 160) -> str:
    if isinstance(value, bytes):
        text = value[:limit].decode("utf-8", "replace")
        return repr(text) + ("..." if len(value) > limit else "")
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[:limit] + "..."


# ---------------------------------------------------------------------------- groups


@dataclass
class Group:
    """Differences with one known cause, or else of one kind at one place."""

    kind: str
    where: str
    known: Known | None
    results: list[tuple[KeyResult, Difference]] = field(default_factory=list)

    @property
    def layer(self) -> str:
        return self.known.layer if self.known else "unknown"

    @property
    def title(self) -> str:
        if self.known is None:
            return f"{self.kind} {self.where}"
        places = sorted({f"{d.kind} {d.where}" for _kr, d in self.results})
        return f"{self.known.title} ({'; '.join(places[:4])}{' ...' if len(places) > 4 else ''})"

    @property
    def count(self) -> int:
        return len({kr.key for kr, _d in self.results})

    def example(self) -> tuple[KeyResult, Difference]:
        return self.results[0]


def groups(report: PairReport) -> list[Group]:
    found: dict[tuple[str, str, str], Group] = {}
    for kr in report.unexplained:
        for d in kr.differences:
            known = kr.explain(d)
            key = ("known", known.id, "") if known else (d.kind, d.where, "")
            found.setdefault(key, Group(d.kind, d.where, known)).results.append((kr, d))
    return sorted(found.values(), key=lambda g: (-g.count, g.kind, g.where))


def decides(report: PairReport) -> bool:
    """Whether a pair counts for the verdict (another server pair, asked for, does not)."""
    return not report.extra.get("informational")


def verdict(reports: list[PairReport], checks: list | None = None) -> tuple[bool, str]:
    deciding = [r for r in reports if decides(r)]
    bad = sum(len(r.unexplained) for r in deciding)
    parts = [f"{bad} request(s) with unexplained differences" if bad else "no unexplained difference"]
    ok = not bad
    failed_alike = sum(r.counts()["both 5xx"] for r in deciding)
    if failed_alike:
        parts.append(f"WARNING: {failed_alike} request(s) failed (5xx) on both sides")
    if checks is not None:
        from .mutants import selfcheck_summary

        parts.append(selfcheck_summary(checks))
        ok = ok and all(c.passed for c in checks)
    return ok, ("OK: " if ok else "FAILED: ") + "; ".join(parts)


# ---------------------------------------------------------------------------- text


COLUMNS = ["mode", "reference", "candidate", "requests", "same", "noise", "allowed", "both 5xx", "DIFFERENT"]


def summary_table(reports: list[PairReport]) -> str:
    rows = []
    for r in reports:
        c = r.counts()
        rows.append(
            [r.mode + ("*" if not decides(r) else ""), r.reference, r.candidate] + [str(c[k]) for k in COLUMNS[3:]]
        )
    widths = [max([len(COLUMNS[i])] + [len(row[i]) for row in rows]) for i in range(len(COLUMNS))]
    out = ["  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths)), "  ".join("-" * w for w in widths)]
    out += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in rows]
    if any(not decides(r) for r in reports):
        out.append("(* another server pair, asked for: shown, not part of the verdict)")
    return "\n".join(out)


def _request_line(kr: KeyResult) -> str:
    req = kr.request or {}
    return f"{req.get('method', '?')} {_short(str(req.get('path', '?')), 80)}"


def _first_line(log: str) -> str:
    lines = [line for line in log.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


def print_text(
    reports: list[PairReport],
    stream: TextIO,
    *,
    unused: list[AllowEntry] = (),
    checks: list | None = None,
    verbose: bool = False,
    logs: Path | None = None,
) -> None:
    w = stream.write
    w("\n" + summary_table(reports) + "\n")
    for r in reports:
        found = groups(r)
        if found:
            w(
                f"\n== {r.mode}: {r.reference} vs {r.candidate}: {len(r.unexplained)} request(s) differ, "
                f"{len(found)} kind(s) of difference\n"
            )
        for g in found:
            kr, d = g.example()
            layer = {"server": " [the servers]", "framework": " [Flask vs Quart]", "port": " [the port]"}.get(
                g.layer, ""
            )
            w(f"  - {g.title}{layer}: {g.count} request(s), e.g. {kr.key} [{_request_line(kr)}]\n")
            w(
                f"      reference {_short(d.reference)} | candidate {_short(d.candidate)}"
                + (f"  ({d.detail})" if d.detail else "")
                + "\n"
            )
            if g.known:
                w(f"      cause: {g.known.cause}\n      fix:   {g.known.fix}\n")
            for side, reply in (("candidate", kr.candidate), ("reference", kr.reference)):
                if reply is not None and reply.log:
                    w(f"      {side} logged: {_first_line(reply.log)}\n")
            if verbose:
                for other, od in g.results[1:]:
                    w(
                        f"      also {other.key} [{_request_line(other)}]: {_short(od.reference, 60)} | "
                        f"{_short(od.candidate, 60)}\n"
                    )
        failed = [kr for kr in r.results if kr.both_failed]
        if failed:
            w(
                f"\n!! {r.mode}: {len(failed)} request(s) answered 5xx by BOTH sides: agreement that proves "
                f"nothing; is the setup (database, hook) broken? e.g. {failed[0].key} [{_request_line(failed[0])}]\n"
            )
            log = failed[0].reference.log if failed[0].reference else ""
            if log:
                w(f"   reference logged: {_first_line(log)}\n")
        ref_failed = r.counts()["reference 5xx"] - len(failed)
        if ref_failed > 0:
            w(f"-- {r.mode}: the reference answered 5xx on {ref_failed} more request(s) (the candidate did not)\n")
        allowed = [kr for kr in r.results if kr.allowed]
        if allowed:
            w(
                f"-- {r.mode}: {sum(len(k.allowed) for k in allowed)} allowed difference(s) in {len(allowed)} "
                f"request(s), each with its reason in the allow-list\n"
            )
            if verbose:
                for kr in allowed:
                    for d, reason in kr.allowed:
                        w(f"     {kr.key}: {d.key()} -- {reason}\n")
        noise = r.noise_summary()
        if noise:
            w(
                f"-- {r.mode}: compared by form (differed between two reference instances): "
                f"{', '.join(sorted(noise)[:8])}{' ...' if len(noise) > 8 else ''}\n"
            )
        if r.extra.get("rules_missing_in_candidate"):
            w(f"-- {r.mode}: routes the candidate LACKS: {', '.join(r.extra['rules_missing_in_candidate'])}\n")
        notes = {n for _k, n in r.notes()}
        for note in sorted(notes):
            w(f"-- {r.mode}: app-level note (no client sees it): {note}\n")
    if checks is not None:
        from .mutants import print_selfcheck

        print_selfcheck(checks, stream)
    if unused:
        w("\n-- allow-list entries that matched nothing (stale?)\n")
        for e in unused:
            w(f"  - scenario={e.scenario} difference={e.difference}: {e.reason}\n")
    if logs is not None:
        w(f"-- the apps' own logs: {logs}/\n")


# ---------------------------------------------------------------------------- JSON


def _reply_dict(reply: Reply | None) -> dict[str, Any] | None:
    if reply is None:
        return None
    return {
        "status": reply.status,
        "headers": [list(h) for h in reply.headers],
        "body": reply.body[:4000].decode("utf-8", "replace"),
        "body_length": len(reply.body),
        "app_head_body": reply.app_head_body,
        "log": reply.log,
    }


def _key_dict(kr: KeyResult, full: bool) -> dict[str, Any]:
    d: dict[str, Any] = {
        "key": kr.key,
        "scenario": kr.scenario,
        "status": kr.status,
        "tags": list(kr.tags),
        "request": kr.request,
        "differences": [
            dict(x.as_dict(), known=as_dict(kr.explain(x)) if kr.explain(x) else None) for x in kr.differences
        ],
        "allowed": [dict(x.as_dict(), reason=reason) for x, reason in kr.allowed],
        "noise_learnt": kr.noise,
        "noise_compared_by_form": sorted(set(kr.noise_hits)),
        "notes": kr.notes,
    }
    if full or kr.differences or kr.allowed or kr.both_failed:
        d["reference"] = _reply_dict(kr.reference)
        d["candidate"] = _reply_dict(kr.candidate)
        d["secondary"] = _reply_dict(kr.secondary)
    return d


def _group_dict(g: Group) -> dict[str, Any]:
    kr, d = g.example()
    return {
        "kind": g.kind,
        "where": g.where,
        "layer": g.layer,
        "requests": g.count,
        "known": as_dict(g.known) if g.known else None,
        "example": kr.key,
        "keys": sorted({k.key for k, _d in g.results}),
        "reference": d.as_dict()["reference"],
        "candidate": d.as_dict()["candidate"],
    }


def _check_dict(c: Any) -> dict[str, Any]:
    return {
        "name": c.name,
        "what": c.what,
        "verdict": c.verdict,
        "changed_answers": c.applied,
        "new_differences": len(c.new_differences),
        "example": list(c.new_differences[0]) if c.new_differences else None,
    }


def to_json(
    reports: list[PairReport],
    *,
    unused: list[AllowEntry] = (),
    meta: dict[str, Any] | None = None,
    checks: list | None = None,
    full: bool = False,
) -> dict[str, Any]:
    ok, line = verdict(reports, checks)
    return {
        "meta": meta or {},
        "ok": ok,
        "verdict": line,
        "pairs": [
            {
                "mode": r.mode,
                "reference": r.reference,
                "candidate": r.candidate,
                "decides_verdict": decides(r),
                "counts": r.counts(),
                "groups": [_group_dict(g) for g in groups(r)],
                "transport_headers_ignored": list(r.ignored_headers),
                "noise": r.noise_summary(),
                "extra": r.extra,
                "results": [_key_dict(kr, full) for kr in r.results],
            }
            for r in reports
        ],
        "mutants": [_check_dict(c) for c in checks] if checks is not None else None,
        "unused_allow_entries": [
            {"scenario": e.scenario, "difference": e.difference, "reason": e.reason} for e in unused
        ],
    }


# ---------------------------------------------------------------------------- HTML


_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:90em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .5em;vertical-align:top}
th{background:#f4f4f4}.bad{background:#fde2e2}.ok{background:#e6f4ea}.allowed{background:#fff5d6}
.warn{background:#ffe8c2}pre{white-space:pre-wrap;word-break:break-all;margin:0;font-size:12px;max-height:24em;overflow:auto}
.side{width:50%}h2{margin-top:1.5em}code{background:#f4f4f4;padding:0 .2em}details{margin:.3em 0}
dl.legend dt{font-weight:bold;float:left;clear:left;width:9em}dl.legend dd{margin-left:10em}
"""

_LEGEND = [
    (
        "same",
        "the candidate's status, headers and body match the reference's (transport headers aside); "
        "values that differed between two reference instances are compared by form",
    ),
    (
        "noise",
        "of the same requests, those where noisy values (learnt from the second reference) were compared "
        "by form, not by value",
    ),
    ("allowed", "a difference listed in the allow-list, with its reason"),
    ("both 5xx", "both sides answered 5xx alike: not counted as same; a broken setup agrees with itself"),
    ("DIFFERENT", "a difference a client can see, not explained by noise or the allow-list"),
    (
        "layer",
        "[Flask vs Quart] a known framework difference; [the servers] gunicorn vs Hypercorn; "
        "[the port] a known porting mistake; each with its cause and usual fix",
    ),
]


def _pre(reply: dict[str, Any] | None) -> str:
    if reply is None:
        return "<pre>(no answer)</pre>"
    lines = [f"{reply['status']}"] + [f"{k}: {v}" for k, v in reply["headers"]] + ["", reply["body"]]
    out = "<pre>" + html.escape("\n".join(lines)) + "</pre>"
    if reply.get("log"):
        out += "<p>logged during this request:</p><pre class=warn>" + html.escape(reply["log"][-4000:]) + "</pre>"
    return out


def _request_pre(req: dict[str, Any] | None) -> str:
    if not req:
        return ""
    sent = [f"{req.get('method')} {req.get('path')}"] + [f"{k}: {v}" for k, v in req.get("headers", [])]
    sent += [
        "",
        f"({req.get('body_length', 0)} body bytes{', chunked' if req.get('chunked') else ''}) "
        + str(req.get("body_preview", "")),
    ]
    return "<pre>" + html.escape("\n".join(sent)[:6000]) + "</pre>"


def to_html(
    reports: list[PairReport],
    *,
    unused: list[AllowEntry] = (),
    meta: dict[str, Any] | None = None,
    checks: list | None = None,
) -> str:
    data = to_json(reports, unused=unused, meta=meta, checks=checks)
    esc = html.escape
    out = ["<!doctype html><meta charset=utf-8><title>compat report</title><style>", _CSS, "</style>"]
    out.append(f"<h1 class={'ok' if data['ok'] else 'bad'}>compat: {esc(data['verdict'])}</h1>")
    m = data["meta"]
    if m:
        out.append("<p>" + " · ".join(f"{esc(k)}: <code>{esc(str(v))}</code>" for k, v in m.items()) + "</p>")
    out.append(
        "<details open><summary>legend</summary><dl class=legend>"
        + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in _LEGEND)
        + "</dl></details>"
    )
    out.append("<table><tr>" + "".join(f"<th>{c}</th>" for c in COLUMNS) + "</tr>")
    for p in data["pairs"]:
        c = p["counts"]
        cls = "bad" if c["DIFFERENT"] else ("warn" if c["both 5xx"] else "ok")
        mode = p["mode"] + ("" if p["decides_verdict"] else " (not in the verdict)")
        out.append(
            f"<tr class={cls}><td>{esc(mode)}</td><td>{esc(p['reference'])}</td><td>{esc(p['candidate'])}</td>"
            + "".join(f"<td>{c[k]}</td>" for k in COLUMNS[3:])
            + "</tr>"
        )
    out.append("</table>")
    if data["mutants"] is not None:
        out.append(
            "<h2>mutant self-check</h2><table><tr><th>mutant</th><th>changes</th><th>verdict</th>"
            "<th>answers changed</th><th>new differences</th><th>example</th></tr>"
        )
        for ck in data["mutants"]:
            cls = (
                "ok"
                if ck["verdict"].startswith(("caught", "no wire"))
                else ("allowed" if ck["verdict"].startswith("not applicable") else "bad")
            )
            ex = " → ".join(ck["example"]) if ck["example"] else ""
            out.append(
                f"<tr class={cls}><td>{esc(ck['name'])}</td><td>{esc(ck['what'])}</td><td>{esc(ck['verdict'])}"
                f"</td><td>{ck['changed_answers']}</td><td>{ck['new_differences']}</td><td>{esc(ex)}</td></tr>"
            )
        out.append("</table>")
    for p in data["pairs"]:
        results = {r["key"]: r for r in p["results"]}
        out.append(f"<h2>{esc(p['mode'])}: {esc(p['reference'])} vs {esc(p['candidate'])}</h2>")
        for g in p["groups"]:
            known = g["known"]
            out.append(
                f"<h3 class=bad>{esc(g['kind'])} <code>{esc(g['where'])}</code>: {g['requests']} request(s)"
                f" <small>[{esc(g['layer'])}]</small></h3>"
            )
            if known:
                out.append(
                    f"<p><b>{esc(known['title'])}</b><br>cause: {esc(known['cause'])}<br>fix: {esc(known['fix'])}</p>"
                )
            out.append(
                f"<p>reference <code>{esc(_short(g['reference'], 300))}</code> · candidate "
                f"<code>{esc(_short(g['candidate'], 300))}</code></p>"
            )
            for key in g["keys"][:EXAMPLES]:
                r = results[key]
                out.append(
                    f"<details><summary>{esc(key)}</summary><table><tr><th>request sent</th>"
                    f"<td colspan=2>{_request_pre(r['request'])}</td></tr><tr><th>answers</th>"
                    f"<td class=side>{_pre(r.get('reference'))}</td><td class=side>{_pre(r.get('candidate'))}"
                    "</td></tr></table></details>"
                )
            if len(g["keys"]) > EXAMPLES:
                out.append(
                    f"<p>… and {len(g['keys']) - EXAMPLES} more: {esc(', '.join(g['keys'][EXAMPLES:40]))}"
                    f"{' …' if len(g['keys']) > 40 else ''}</p>"
                )
        failed = [r for r in p["results"] if r["status"] == "both 5xx"]
        if failed:
            out.append(f"<h3 class=warn>answered 5xx by both sides: {len(failed)} request(s)</h3>")
            for r in failed[:EXAMPLES]:
                out.append(
                    f"<details><summary>{esc(r['key'])}</summary><table><tr><td class=side>"
                    f"{_pre(r.get('reference'))}</td><td class=side>{_pre(r.get('candidate'))}</td></tr>"
                    "</table></details>"
                )
        allowed = [(r["key"], a) for r in p["results"] for a in r["allowed"]]
        if allowed:
            out.append(f"<details><summary>allowed differences ({len(allowed)})</summary><ul>")
            for key, a in allowed[:200]:
                out.append(f"<li>{esc(key)}: <code>{esc(a['kind'])}:{esc(a['where'])}</code> — {esc(a['reason'])}</li>")
            out.append("</ul></details>")
        if p["noise"]:
            out.append("<details><summary>compared by form (noise)</summary><ul>")
            for item, keys in sorted(p["noise"].items()):
                out.append(f"<li><code>{esc(item)}</code>: {len(keys)} request(s)</li>")
            out.append("</ul></details>")
        out.append("<p>transport headers not compared: " + esc(", ".join(p["transport_headers_ignored"])) + "</p>")
    if data["unused_allow_entries"]:
        out.append("<h2>allow-list entries that matched nothing</h2><ul>")
        for e in data["unused_allow_entries"]:
            out.append(f"<li>{esc(e['scenario'])} {esc(e['difference'])}: {esc(e['reason'])}</li>")
        out.append("</ul>")
    return "".join(out)


def write_report(
    path: Path,
    reports: list[PairReport],
    *,
    unused: list[AllowEntry] = (),
    meta: dict[str, Any] | None = None,
    checks: list | None = None,
) -> None:
    path = Path(path)
    if path.suffix.lower() in (".html", ".htm"):
        path.write_text(to_html(reports, unused=unused, meta=meta, checks=checks), encoding="utf-8")
    else:
        path.write_text(
            json.dumps(
                to_json(reports, unused=unused, meta=meta, checks=checks), indent=2, ensure_ascii=False, default=str
            ),
            encoding="utf-8",
        )
