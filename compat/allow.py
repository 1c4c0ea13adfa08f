"""The allow-list: differences let through, each with its reason, and the stale entries."""

from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .compare import Difference

if TYPE_CHECKING:
    from .results import PairReport


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
    def load(cls, path: Path | None) -> AllowList:
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
            entries.append(
                AllowEntry(
                    scenario=item["scenario"],
                    difference=item["difference"],
                    reason=reason,
                    modes=tuple(item.get("modes", ())),
                    pair=item.get("pair", "*"),
                )
            )
        return cls(entries, str(path))

    def find(self, key: str, diff: Difference, mode: str, pair: str) -> AllowEntry | None:
        for e in self.entries:
            if e.matches(key, diff, mode, pair):
                e.used += 1
                return e
        return None


def unused_allow_entries(allow: AllowList, reports: list[PairReport] | None = None) -> list[AllowEntry]:
    """Entries that matched nothing although their mode and pair were played (stale?)."""
    out = []
    for e in allow.entries:
        if e.used:
            continue
        if reports is not None:
            played = [r for r in reports if (not e.modes or r.mode in e.modes) and fnmatch.fnmatchcase(r.pair, e.pair)]
            if not any(
                fnmatch.fnmatchcase(k.key, e.scenario) or fnmatch.fnmatchcase(k.scenario, e.scenario)
                for r in played
                for k in r.results
            ):
                continue  # its scenarios were not played in this run
        out.append(e)
    return out
