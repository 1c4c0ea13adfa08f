"""``/metrics``: the store's latest values in the Prometheus text exposition format (0.0.4).

Kept apart from the store as prometheus client_python keeps ``exposition.py`` apart from
its metrics: this module only reads (through :class:`~hostpulse.series.store.SeriesStore`'s
queries) and formats; it knows no SQL.

Names follow node_exporter's conventions (``hostpulse/series/naming.py``): one family per
metric, the host and the series' own labels (``mountpoint``, ``device``, ``cpu``,
``interface``, ``mode``) as labels, counters typed ``counter`` and named ``…_total``, values
in base units; ``promtool check metrics`` finds nothing to say (``tests/store``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import TYPE_CHECKING

from hostpulse.series.naming import PREFIX, describe

if TYPE_CHECKING:  # the store calls this module: no import cycle at run time
    from hostpulse.series.store import SeriesStore

METRIC_PREFIX = PREFIX
DROPPED_METRIC = "hostpulse_agent_dropped_samples_total"
LAST_SEEN_METRIC = "hostpulse_host_last_seen_seconds"
SERIES_METRIC = "hostpulse_series"
REFUSED_METRIC = "hostpulse_series_refused_batches_total"
STORE_BYTES_METRIC = "hostpulse_store_bytes"
# The service's own families: a series named like one of these is left out, so a family is
# never written twice (a counter's family name is its samples' without _total).
_RESERVED = {
    name
    for metric in (DROPPED_METRIC, LAST_SEEN_METRIC, SERIES_METRIC, REFUSED_METRIC, STORE_BYTES_METRIC)
    for name in (metric, metric.removesuffix("_total"))
}


def _label_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(pairs: tuple[tuple[str, str], ...]) -> str:
    return ",".join(f'{key}="{_label_value(value)}"' for key, value in pairs)


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _family(metric: str, kind: str, help_text: str) -> list[str]:
    return [f"# HELP {metric} {help_text}", f"# TYPE {metric} {kind}"]


def _series_lines(store: SeriesStore) -> list[str]:
    """Every host's latest value of each series, one family per metric.

    Two series that would print the same line (odd names such as ``a.b`` and ``a_b``) are
    told apart by a ``series="<name>"`` label on those lines alone; a series whose odd name
    lands in a counter's family as a gauge is left out (a family has one type).
    """
    families: dict[str, list[tuple[tuple[tuple[str, str], ...], str, float]]] = defaultdict(list)
    counters: set[str] = set()
    for info in store.hosts():
        for name, value in info.latest.items():
            described = describe(name)
            if described.metric in _RESERVED:
                continue
            if described.counter:
                counters.add(described.metric)
            labels = (("host", info.host), *described.labels)
            families[described.metric].append((labels, name, value * described.scale))
    lines: list[str] = []
    for metric in sorted(families):
        counter = metric in counters
        members = [m for m in families[metric] if describe(m[1]).counter == counter]
        if counter:
            lines += _family(metric, "counter", "A psutil counter reported by agents (latest value).")
        else:
            lines += _family(metric, "gauge", "Latest value of a psutil series reported by agents.")
        seen: defaultdict[tuple[tuple[str, str], ...], int] = defaultdict(int)
        for labels, _, _ in members:
            seen[labels] += 1
        for labels, name, value in sorted(members):
            shown = labels + (("series", name),) if seen[labels] > 1 else labels
            lines.append(f"{metric}{{{_labels(shown)}}} {_number(value)}")
    return lines


def prometheus_text(store: SeriesStore) -> str:
    """The exposition of the store's latest values ("" for an empty store).

    Also: each host's last-seen time, the samples its agents dropped (a counter), and once
    anything is stored or refused, the series held, the batches each cap refused and the
    bytes each tier of the store holds.
    """
    hosts = store.hosts()
    lines = _series_lines(store)
    if hosts:
        lines += _family(LAST_SEEN_METRIC, "gauge", "When the service last stored a batch from the host.")
        lines += [f'{LAST_SEEN_METRIC}{{host="{_label_value(h.host)}"}} {_number(h.last_seen)}' for h in hosts]
        lines += _family(DROPPED_METRIC, "counter", "Samples agents dropped from a full spool.")
        lines += [f'{DROPPED_METRIC}{{host="{_label_value(h.host)}"}} {_number(h.dropped)}' for h in hosts]
    refused = store.refused()
    if lines or any(refused.values()):
        lines += _family(SERIES_METRIC, "gauge", "Series (host and name) the store holds.")
        lines.append(f"{SERIES_METRIC} {_number(store.series_total())}")
        lines += _family(
            REFUSED_METRIC,
            "counter",
            "Batches refused because their new series would pass a cap ([store] max_series_per_host, max_series).",
        )
        lines += [f'{REFUSED_METRIC}{{limit="{cap}"}} {_number(n)}' for cap, n in refused.items()]
        lines += _family(STORE_BYTES_METRIC, "gauge", "Bytes of samples each tier of the series store holds.")
        lines += [f'{STORE_BYTES_METRIC}{{tier="{tier}"}} {n}' for tier, n in store.tier_bytes().items()]
    return "\n".join(lines) + "\n" if lines else ""


__all__ = [
    "DROPPED_METRIC",
    "LAST_SEEN_METRIC",
    "METRIC_PREFIX",
    "REFUSED_METRIC",
    "SERIES_METRIC",
    "STORE_BYTES_METRIC",
    "prometheus_text",
]
