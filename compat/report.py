"""The summary table, and the JSON and HTML reports."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any, TextIO

from compat.clients import Reply
from compat.runner import AllowEntry, KeyResult, PairReport


def _short(value: Any, limit: int = 160) -> str:
    if isinstance(value, bytes):
        text = value[:limit].decode("utf-8", "replace")
        return repr(text) + ("..." if len(value) > limit else "")
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[:limit] + "..."


MAX_SHOWN = 40


def summary_table(reports: list[PairReport]) -> str:
    cols = ["mode", "reference", "candidate", "requests", "same", "noise", "allowed", "DIFFERENT"]
    rows = []
    for r in reports:
        c = r.counts()
        rows.append([r.mode, r.reference, r.candidate, str(c["requests"]), str(c["same"]),
                     str(c["same (noise)"]), str(c["allowed"]), str(c["DIFFERENT"])])
    widths = [max(len(cols[i]), *(len(row[i]) for row in rows)) if rows else len(cols[i]) for i in range(len(cols))]
    line = "  ".join(c.ljust(w) for c, w in zip(cols, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in rows]
    return "\n".join(out)


def print_text(reports: list[PairReport], stream: TextIO, *, unused: list[AllowEntry] = (),
               extra_notes: list[str] = (), verbose: bool = False) -> None:
    w = stream.write
    w("\n" + summary_table(reports) + "\n")
    for r in reports:
        bad = r.unexplained
        if bad:
            w(f"\n== {r.mode}: {r.reference} vs {r.candidate}: {len(bad)} request(s) differ\n")
            shown = bad if verbose else bad[:MAX_SHOWN]
            for kr in shown:
                req = kr.request or {}
                w(f"  - {kr.key}  [{req.get('method', '?')} {req.get('path', '?')}]\n")
                for d in kr.differences:
                    w(f"      {d.kind} {d.where}: reference {_short(d.reference)} | candidate {_short(d.candidate)}"
                      + (f"  ({d.detail})" if d.detail else "") + "\n")
            if len(shown) < len(bad):
                w(f"  ... and {len(bad) - len(shown)} more (all of them in --report FILE, or with -v)\n")
        allowed = [kr for kr in r.results if kr.allowed]
        if allowed and verbose:
            w(f"\n-- {r.mode}: allowed differences ({len(allowed)})\n")
            for kr in allowed:
                for d, reason in kr.allowed:
                    w(f"  - {kr.key}: {d.key()}  -- {reason}\n")
        elif allowed:
            w(f"\n-- {r.mode}: {sum(len(k.allowed) for k in allowed)} allowed difference(s) in "
              f"{len(allowed)} request(s), each with its reason in the allow-list\n")
    # noise
    for r in reports:
        summary = r.noise_summary()
        if summary:
            w(f"\n-- {r.mode}: treated as noise (differed between two reference instances; compared by shape)\n")
            for item, keys in sorted(summary.items()):
                where = f"{len(keys)} request(s), e.g. {keys[0]}" if keys else "learnt from other requests"
                w(f"  - {item}: {where}\n")
        w(f"-- {r.mode}: transport headers not compared (the server's): {', '.join(r.ignored_headers)}\n")
        if r.extra.get("rules_only_in_candidate_not_compared"):
            w(f"-- {r.mode}: routes only the candidate has, not compared: "
              f"{', '.join(r.extra['rules_only_in_candidate_not_compared'])}\n")
        if r.extra.get("rules_missing_in_candidate"):
            w(f"-- {r.mode}: routes the candidate LACKS: {', '.join(r.extra['rules_missing_in_candidate'])}\n")
    notes = [(r.mode, k, n) for r in reports for k, n in r.notes()]
    if notes:
        w("\n-- app-level notes (not differences a client can see)\n")
        seen = set()
        for mode, key, note in notes:
            if (mode, note) in seen and not verbose:
                continue
            seen.add((mode, note))
            count = sum(1 for m, _k, n in notes if m == mode and n == note)
            w(f"  - {mode}: {note} [{count} request(s), e.g. {key}]\n")
    for note in extra_notes:
        w(f"  - {note}\n")
    if unused:
        w("\n-- allow-list entries that matched nothing (stale?)\n")
        for e in unused:
            w(f"  - scenario={e.scenario} difference={e.difference}: {e.reason}\n")


def _reply_dict(reply: Reply | None) -> dict[str, Any] | None:
    if reply is None:
        return None
    body = reply.body
    return {
        "status": reply.status,
        "headers": [list(h) for h in reply.headers],
        "body": body[:4000].decode("utf-8", "replace"),
        "body_length": len(body),
        "app_head_body": reply.app_head_body,
    }


def _key_dict(kr: KeyResult, full: bool) -> dict[str, Any]:
    d: dict[str, Any] = {
        "key": kr.key,
        "scenario": kr.scenario,
        "status": kr.status,
        "tags": list(kr.tags),
        "request": kr.request,
        "differences": [x.as_dict() for x in kr.differences],
        "allowed": [dict(x.as_dict(), reason=reason) for x, reason in kr.allowed],
        "noise_learnt": kr.noise,
        "noise_compared_by_shape": sorted(set(kr.noise_hits)),
        "notes": kr.notes,
    }
    if full or kr.differences or kr.allowed:
        d["reference"] = _reply_dict(kr.reference)
        d["candidate"] = _reply_dict(kr.candidate)
        d["secondary"] = _reply_dict(kr.secondary)
    return d


def to_json(reports: list[PairReport], *, unused: list[AllowEntry] = (), meta: dict[str, Any] | None = None,
            full: bool = False) -> dict[str, Any]:
    return {
        "meta": meta or {},
        "ok": all(not r.unexplained for r in reports),
        "pairs": [
            {
                "mode": r.mode,
                "reference": r.reference,
                "candidate": r.candidate,
                "counts": r.counts(),
                "transport_headers_ignored": list(r.ignored_headers),
                "noise": r.noise_summary(),
                "extra": r.extra,
                "results": [_key_dict(kr, full) for kr in r.results],
            }
            for r in reports
        ],
        "unused_allow_entries": [
            {"scenario": e.scenario, "difference": e.difference, "reason": e.reason} for e in unused
        ],
    }


_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .5em;vertical-align:top}
th{background:#f4f4f4}.bad{background:#fde2e2}.ok{background:#e6f4ea}.allowed{background:#fff5d6}
pre{white-space:pre-wrap;word-break:break-all;margin:0;font-size:12px;max-height:24em;overflow:auto}
.side{width:50%}h2{margin-top:1.5em}code{background:#f4f4f4;padding:0 .2em}
"""


def _pre(reply: dict[str, Any] | None) -> str:
    if reply is None:
        return "<pre>(no answer)</pre>"
    lines = [f"{reply['status']}"] + [f"{k}: {v}" for k, v in reply["headers"]] + ["", reply["body"]]
    return "<pre>" + html.escape("\n".join(lines)) + "</pre>"


def to_html(reports: list[PairReport], *, unused: list[AllowEntry] = (), meta: dict[str, Any] | None = None) -> str:
    data = to_json(reports, unused=unused, meta=meta)
    out = ["<!doctype html><meta charset=utf-8><title>compat report</title><style>", _CSS, "</style>"]
    out.append("<h1>compat report: " + ("no unexplained difference" if data["ok"] else "DIFFERENCES FOUND") + "</h1>")
    out.append("<table><tr>" + "".join(f"<th>{h}</th>" for h in
               ["mode", "reference", "candidate", "requests", "same", "noise", "allowed", "DIFFERENT"]) + "</tr>")
    for p in data["pairs"]:
        c = p["counts"]
        cls = "bad" if c["DIFFERENT"] else "ok"
        out.append(f"<tr class={cls}><td>{p['mode']}</td><td>{html.escape(p['reference'])}</td>"
                   f"<td>{html.escape(p['candidate'])}</td><td>{c['requests']}</td><td>{c['same']}</td>"
                   f"<td>{c['same (noise)']}</td><td>{c['allowed']}</td><td>{c['DIFFERENT']}</td></tr>")
    out.append("</table>")
    for p in data["pairs"]:
        out.append(f"<h2>{p['mode']}: {html.escape(p['reference'])} vs {html.escape(p['candidate'])}</h2>")
        for r in p["results"]:
            if not (r["differences"] or r["allowed"]):
                continue
            cls = "bad" if r["differences"] else "allowed"
            req = r["request"] or {}
            out.append(f"<h3 class={cls}>{html.escape(r['key'])} <small><code>{html.escape(str(req.get('method')))} "
                       f"{html.escape(str(req.get('path')))}</code></small></h3>")
            out.append("<table><tr><th>what</th><th class=side>reference</th><th class=side>candidate</th></tr>")
            if req:
                sent = [f"{req.get('method')} {req.get('path')}"] + [f"{k}: {v}" for k, v in req.get("headers", [])]
                sent += ["", f"({req.get('body_length', 0)} body bytes{', chunked' if req.get('chunked') else ''}) "
                         + str(req.get("body_preview", ""))]
                out.append("<tr><td>request sent</td><td colspan=2><pre>" + html.escape("\n".join(sent))
                           + "</pre></td></tr>")
            for d in r["differences"]:
                out.append(f"<tr class=bad><td>{html.escape(d['kind'])}<br><code>{html.escape(d['where'])}</code>"
                           f"<br><small>{html.escape(d['detail'])}</small></td>"
                           f"<td><pre>{html.escape(_short(d['reference'], 2000))}</pre></td>"
                           f"<td><pre>{html.escape(_short(d['candidate'], 2000))}</pre></td></tr>")
            for d in r["allowed"]:
                out.append(f"<tr class=allowed><td>allowed: {html.escape(d['kind'])}<br><code>{html.escape(d['where'])}"
                           f"</code><br><small>{html.escape(d['reason'])}</small></td>"
                           f"<td><pre>{html.escape(_short(d['reference'], 2000))}</pre></td>"
                           f"<td><pre>{html.escape(_short(d['candidate'], 2000))}</pre></td></tr>")
            out.append(f"<tr><td>whole answers</td><td>{_pre(r.get('reference'))}</td><td>{_pre(r.get('candidate'))}</td></tr>")
            out.append("</table>")
        if p["noise"]:
            out.append("<h3>treated as noise (compared by shape)</h3><ul>")
            for item, keys in sorted(p["noise"].items()):
                out.append(f"<li><code>{html.escape(item)}</code>: {len(keys)} request(s)</li>")
            out.append("</ul>")
        out.append("<p>transport headers not compared: " + ", ".join(p["transport_headers_ignored"]) + "</p>")
        notes: dict[str, list[str]] = {}
        for r in p["results"]:
            for n in r["notes"]:
                notes.setdefault(n, []).append(r["key"])
        if notes:
            out.append("<h3>app-level notes (not differences a client can see)</h3><ul>")
            for n, keys in notes.items():
                out.append(f"<li>{html.escape(n)}: {len(keys)} request(s), e.g. {html.escape(keys[0])}</li>")
            out.append("</ul>")
    if data["unused_allow_entries"]:
        out.append("<h2>allow-list entries that matched nothing</h2><ul>")
        for e in data["unused_allow_entries"]:
            out.append(f"<li>{html.escape(e['scenario'])} {html.escape(e['difference'])}: {html.escape(e['reason'])}</li>")
        out.append("</ul>")
    return "".join(out)


def write_report(path: Path, reports: list[PairReport], *, unused: list[AllowEntry] = (),
                 meta: dict[str, Any] | None = None) -> None:
    path = Path(path)
    if path.suffix.lower() in (".html", ".htm"):
        path.write_text(to_html(reports, unused=unused, meta=meta), encoding="utf-8")
    else:
        path.write_text(json.dumps(to_json(reports, unused=unused, meta=meta), indent=2, ensure_ascii=False,
                                   default=str), encoding="utf-8")
