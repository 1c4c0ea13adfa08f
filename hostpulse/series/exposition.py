"""``/metrics``: the store's latest values in the Prometheus text exposition format (0.0.4).

Kept apart from the store as prometheus client_python keeps ``exposition.py`` apart from
its metrics: this module only reads (through :class:`~hostpulse.series.store.SeriesStore`'s
queries) and formats; it knows no SQL.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the store calls this module: no import cycle at run time
    from hostpulse.series.store import SeriesStore

METRIC_PREFIX = "hostpulse_"
DROPPED_METRIC = "hostpulse_agent_dropped_samples_total"
LAST_SEEN_METRIC = "hostpulse_host_last_seen_seconds"
SERIES_METRIC = "hostpulse_series"
REFUSED_METRIC = "hostpulse_series_refused_batches_total"
# The service's own families: a series sanitising to one of these names is left out, so a
# family is never written twice (a counter's family name is its samples' without _total).
_RESERVED = {
    DROPPED_METRIC,
    DROPPED_METRIC.removesuffix("_total"),
    LAST_SEEN_METRIC,
    SERIES_METRIC,
    REFUSED_METRIC,
    REFUSED_METRIC.removesuffix("_total"),
}
_NOT_METRIC_CHAR = re.compile(r"[^a-zA-Z0-9_]+")


def metric_name(series: str) -> str:
    """``disk_usage./.percent`` -> ``hostpulse_disk_usage_percent``: valid in Prometheus
    (``[a-zA-Z_:][a-zA-Z0-9_:]*``; the prefix makes the first character a letter)."""
    body = _NOT_METRIC_CHAR.sub("_", series).strip("_")
    return METRIC_PREFIX + re.sub("_+", "_", body) if body else METRIC_PREFIX + "unnamed"


def _label_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _family(metric: str, kind: str, help_text: str) -> list[str]:
    return [f"# HELP {metric} {help_text}", f"# TYPE {metric} {kind}"]


def prometheus_text(store: SeriesStore) -> str:
    """The exposition of the store's latest values ("" for an empty store).

    One gauge family per sanitised series name, the host as a label. When two series
    names sanitise to the same metric name (``a.b`` and ``a_b``), every sample of that
    family also carries ``series="<original name>"`` so no two lines collide.
    Also: each host's last-seen time, the samples its agents dropped (a counter), and once
    anything is stored or refused, the series held and the batches each cap refused.
    """
    hosts = store.hosts()
    families: dict[str, list[tuple[str, str, float]]] = defaultdict(list)
    for info in hosts:
        for name, value in info.latest.items():
            metric = metric_name(name)
            if metric not in _RESERVED:
                families[metric].append((info.host, name, value))
    lines: list[str] = []
    for metric in sorted(families):
        members = families[metric]
        ambiguous = len({name for _, name, _ in members}) > 1
        lines += _family(metric, "gauge", "Latest value of a psutil series reported by agents.")
        for host, name, value in sorted(members):
            labels = f'host="{_label_value(host)}"'
            if ambiguous:
                labels += f',series="{_label_value(name)}"'
            lines.append(f"{metric}{{{labels}}} {_number(value)}")
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
    return "\n".join(lines) + "\n" if lines else ""


__all__ = [
    "DROPPED_METRIC",
    "LAST_SEEN_METRIC",
    "METRIC_PREFIX",
    "REFUSED_METRIC",
    "SERIES_METRIC",
    "metric_name",
    "prometheus_text",
]
