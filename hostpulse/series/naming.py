"""What a series is: an agent's psutil name read as a metric name, labels and a type.

Agents name series after psutil (``disk_usage./.percent``, ``cpu_percent.0``,
``net_io_counters.eth0.bytes_sent``); those names are what the batch format, the store and
``GET /hosts/<host>/series?name=`` speak, so an older agent's batches need nothing new. The
name already holds every label (the mount point, the core, the interface, the disk sits
between the psutil function and its field), so the service reads them from it here, once,
with node_exporter's conventions for ``/metrics``:

- ``disk_usage./.free`` -> ``hostpulse_filesystem_free_bytes{mountpoint="/"}``;
- ``cpu_percent.0`` -> ``hostpulse_cpu_core_percent{cpu="0"}``;
- ``net_io_counters.bytes_recv`` -> ``hostpulse_network_receive_bytes_total``, a counter
  (``…{interface="eth0"}`` when per interface);
- ``disk_io_counters.read_time`` (milliseconds) -> ``hostpulse_disk_read_time_seconds_total``
  with the value scaled to seconds (promtool wants base units).

A name outside the known functions keeps a sanitised form of itself as a gauge; an old
agent's ``<counter>.rate`` series is a gauge of its own (rates are derived from counters at
query time now: ``rate=1``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

PREFIX = "hostpulse_"
_NOT_METRIC_CHAR = re.compile(r"[^a-zA-Z0-9_]+")


@dataclass(frozen=True)
class Described:
    """A series as Prometheus sees it: ``metric{labels}``, its type, and the factor from the
    agent's unit to the metric's base unit."""

    metric: str
    labels: tuple[tuple[str, str], ...] = ()
    counter: bool = False
    scale: float = 1.0


# function -> (metric stem, label of the key between function and field, {field: (name, counter, scale)})
_BYTES = "bytes"
_FIELDS: dict[str, tuple[str, str, dict[str, tuple[str, bool, float]]]] = {
    "virtual_memory": (
        "memory",
        "",
        {
            **{
                f: (f"{f}_bytes", False, 1.0)
                for f in (
                    "total",
                    "available",
                    "used",
                    "free",
                    "active",
                    "inactive",
                    "buffers",
                    "cached",
                    "shared",
                    "slab",
                    "wired",
                )
            },
            "percent": ("used_percent", False, 1.0),
        },
    ),
    "swap_memory": (
        "swap",
        "",
        {
            **{f: (f"{f}_bytes", False, 1.0) for f in ("total", "used", "free")},
            "percent": ("used_percent", False, 1.0),
            "sin": ("in_bytes_total", True, 1.0),
            "sout": ("out_bytes_total", True, 1.0),
        },
    ),
    "disk_usage": (
        "filesystem",
        "mountpoint",
        {
            **{f: (f"{f}_bytes", False, 1.0) for f in ("total", "used", "free")},
            "percent": ("used_percent", False, 1.0),
        },
    ),
    "disk_io_counters": (
        "disk",
        "device",
        {
            "read_count": ("reads_completed_total", True, 1.0),
            "write_count": ("writes_completed_total", True, 1.0),
            "read_bytes": ("read_bytes_total", True, 1.0),
            "write_bytes": ("written_bytes_total", True, 1.0),
            "read_time": ("read_time_seconds_total", True, 0.001),
            "write_time": ("write_time_seconds_total", True, 0.001),
            "busy_time": ("io_time_seconds_total", True, 0.001),
            "read_merged_count": ("reads_merged_total", True, 1.0),
            "write_merged_count": ("writes_merged_total", True, 1.0),
        },
    ),
    "net_io_counters": (
        "network",
        "interface",
        {
            "bytes_sent": ("transmit_bytes_total", True, 1.0),
            "bytes_recv": ("receive_bytes_total", True, 1.0),
            "packets_sent": ("transmit_packets_total", True, 1.0),
            "packets_recv": ("receive_packets_total", True, 1.0),
            "errin": ("receive_errs_total", True, 1.0),
            "errout": ("transmit_errs_total", True, 1.0),
            "dropin": ("receive_drop_total", True, 1.0),
            "dropout": ("transmit_drop_total", True, 1.0),
        },
    ),
    "cpu_stats": (
        "cpu",
        "",
        {
            "ctx_switches": ("context_switches_total", True, 1.0),
            "interrupts": ("interrupts_total", True, 1.0),
            "soft_interrupts": ("soft_interrupts_total", True, 1.0),
            "syscalls": ("syscalls_total", True, 1.0),
        },
    ),
}
# Whole-value functions: name -> metric
_SINGLE = {
    "cpu_percent": "cpu_percent",
    "boot_time": "boot_time_seconds",
    "pids": "processes",
    "cpu_count": "cpus",
}
_LOAD = {"0": "load1", "1": "load5", "2": "load15"}


def sanitise(text: str) -> str:
    """A valid metric name body: runs of other characters become one ``_``."""
    return re.sub("_+", "_", _NOT_METRIC_CHAR.sub("_", text)).strip("_") or "unnamed"


@lru_cache(maxsize=65536)
def describe(name: str) -> Described:
    """The metric, labels and type of the series an agent calls ``name``."""
    function, _, rest = name.partition(".")
    if not rest and function in _SINGLE:
        return Described(PREFIX + _SINGLE[function])
    if function == "cpu_percent" and rest.isdigit():
        return Described(PREFIX + "cpu_core_percent", (("cpu", rest),))
    if function == "getloadavg" and rest in _LOAD:
        return Described(PREFIX + _LOAD[rest])
    if function == "cpu_times" and rest and "." not in rest:
        return Described(PREFIX + "cpu_seconds_total", (("mode", rest),), counter=True)
    known = _FIELDS.get(function)
    if known is not None and rest and not rest.endswith(".rate"):
        stem, label, fields = known
        key, _, field = rest.rpartition(".")
        if field in fields and (not key or label):
            metric, counter, scale = fields[field]
            labels = ((label, key),) if key else ()
            return Described(f"{PREFIX}{stem}_{metric}", labels, counter, scale)
    metric = PREFIX + sanitise(name)
    # Only counters end in _total (promtool): an odd name such as "jobs.total" is a gauge.
    return Described(metric + "_value" if metric.endswith("_total") else metric)


LABELS = ("mountpoint", "device", "interface", "cpu", "mode")  # the labels a query may give


def matching(names: list[str], name: str, labels: dict[str, str]) -> list[str]:
    """The series among ``names`` that ``name`` and ``labels`` pick: the series called
    ``name``, else those of metric ``name`` (``hostpulse_`` optional) whose labels include
    every one given."""
    if name in names and not labels:
        return [name]
    metric = name if name.startswith(PREFIX) else PREFIX + name
    wanted = set(labels.items())
    return [n for n in names if describe(n).metric == metric and wanted <= set(describe(n).labels)]


__all__ = ["LABELS", "PREFIX", "Described", "describe", "matching", "sanitise"]
