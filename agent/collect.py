"""What the agent measures: psutil functions by name, flattened to series, with rates.

Positional arguments name psutil functions as seed 000 did (``cpu_percent
virtual_memory ...``). Only functions that need no argument and return numbers are
offered; ``disk_usage`` is read for every mounted file system, ``pids`` is the number of
processes. Counters (disk and network I/O, CPU stats) are sent as they are: the service
derives their rates at query time (``rate=1``), so a rate series would only double what
is stored (an older agent sent ``<series>.rate``; the service still takes it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence

import psutil

from hostpulse.samples import flatten


def _disk_usage() -> dict[str, object]:
    usage: dict[str, object] = {}
    for part in psutil.disk_partitions(all=False):
        try:
            usage[part.mountpoint] = psutil.disk_usage(part.mountpoint)
        except OSError:  # a mount that went away, or one this user may not stat
            continue
    return usage


def _cpu_percent_once() -> float:
    # A single call with interval=None measures since the last call: nothing yet here.
    return psutil.cpu_percent(interval=0.1)


def _cpu_times_percent_once() -> object:
    return psutil.cpu_times_percent(interval=0.1)


# name -> how to read it (each takes no argument). Only those this platform has.
_CANDIDATES: dict[str, Callable[[], object]] = {
    "boot_time": lambda: psutil.boot_time(),
    "cpu_count": lambda: psutil.cpu_count(),
    "cpu_freq": lambda: psutil.cpu_freq(),
    "cpu_percent": lambda: psutil.cpu_percent(interval=None),
    "cpu_stats": lambda: psutil.cpu_stats(),
    "cpu_times": lambda: psutil.cpu_times(),
    "cpu_times_percent": lambda: psutil.cpu_times_percent(interval=None),
    "disk_io_counters": lambda: psutil.disk_io_counters(),
    "disk_usage": _disk_usage,
    "getloadavg": lambda: psutil.getloadavg(),
    "net_if_stats": lambda: psutil.net_if_stats(),
    "net_io_counters": lambda: psutil.net_io_counters(),
    "pids": lambda: len(psutil.pids()),
    "sensors_battery": lambda: psutil.sensors_battery(),
    "sensors_fans": lambda: psutil.sensors_fans(),
    "sensors_temperatures": lambda: psutil.sensors_temperatures(),
    "swap_memory": lambda: psutil.swap_memory(),
    "virtual_memory": lambda: psutil.virtual_memory(),
}
READERS: dict[str, Callable[[], object]] = {name: read for name, read in _CANDIDATES.items() if hasattr(psutil, name)}

DEFAULT_NAMES: tuple[str, ...] = tuple(
    name
    for name in (
        "cpu_percent",
        "virtual_memory",
        "swap_memory",
        "disk_usage",
        "disk_io_counters",
        "net_io_counters",
        "getloadavg",
        "boot_time",
        "pids",
    )
    if name in READERS
)


class UnknownName(ValueError):
    """A positional name that is not a psutil function the agent can read."""


def check_names(names: Iterable[str]) -> tuple[str, ...]:
    """The names to collect (the default set for none); fail on the first unknown one,
    listing the valid ones."""
    chosen = tuple(dict.fromkeys(names)) or DEFAULT_NAMES
    unknown = [n for n in chosen if n not in READERS]
    if unknown:
        raise UnknownName(f"unknown psutil name(s): {', '.join(unknown)}; valid names: {', '.join(sorted(READERS))}")
    return chosen


def read_once(names: Sequence[str]) -> list[object]:
    """Seed 000's list: one raw psutil result per name, as ``json.dumps`` can write it
    (named tuples become lists, per-mount usage a dict)."""
    once = {"cpu_percent": _cpu_percent_once, "cpu_times_percent": _cpu_times_percent_once}
    return [once.get(name, READERS[name])() for name in names]


class Collector:
    """Reads the chosen names into one flat ``{series: value}`` per call (blocking: call
    it in a thread)."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = check_names(names)
        if "cpu_percent" in self.names:  # prime: the first call measures since now
            psutil.cpu_percent(interval=None)
            psutil.cpu_percent(interval=None, percpu=True)
        if "cpu_times_percent" in self.names:
            psutil.cpu_times_percent(interval=None)

    def collect(self) -> tuple[float, dict[str, float]]:
        """``(unix time, values)``; a name whose read fails this time is left out."""
        ts = time.time()
        values: dict[str, float] = {}
        for name in self.names:
            try:
                raw = READERS[name]()
                if name == "cpu_percent":
                    values.update(flatten(name, psutil.cpu_percent(interval=None, percpu=True)))
            except (OSError, RuntimeError, AttributeError):
                continue
            values.update(flatten(name, raw))
        return ts, values


__all__ = ["Collector", "DEFAULT_NAMES", "READERS", "UnknownName", "check_names", "read_once"]
