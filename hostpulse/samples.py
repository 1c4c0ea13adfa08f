"""Samples: psutil results flattened to named numbers, and agent batches checked at the door.

Used by both sides of the wire. The agent flattens what psutil returns into
``{name: float}``; the service validates every batch with :func:`validate_batch` before
it touches the store, so the store only ever sees finite numbers under sane names.
Standard library only: a monitored host installs nothing of the server.

A batch (the README's "The agent on another host"), as :func:`wire_form` builds it for the agent's spool::

    {"host": "web-1", "run": "<spool id>", "seq": 41, "dropped": 0, "interval": 10.0,
     "samples": [{"ts": 1764000000.0, "values": {"cpu_percent": 12.5}}]}

``interval`` (seconds between the agent's batches) and ``goodbye`` (``true`` on the last
batch of a clean stop, which may carry no samples) are optional: an older agent's batch
without them is still valid.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from hostpulse.errorcodes import BAD_REQUEST, MISSING_FIELD, PAYLOAD_TOO_LARGE

MAX_NAME_LENGTH = 200
MAX_HOST_LENGTH = 253
# SQLite's INTEGER is 64-bit signed: a larger seq or drop count cannot be stored, and one
# that reached the group commit failed every batch of its transaction (issue 11, item 1).
MAX_INTEGER = 2**63 - 1

_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_RUN = re.compile(r"[A-Za-z0-9_-]{1,64}")
_PRINTABLE_ASCII = bytes(range(0x20, 0x7F))

REQUIRED_FIELDS = frozenset({"host", "run", "seq", "samples"})
# ``dropped`` may be left out (an agent that never dropped anything); it then counts as 0.
# ``interval`` and ``goodbye`` came later (``GET /hosts``' state); an older agent sends neither.
OPTIONAL_FIELDS = frozenset({"dropped", "interval", "goodbye"})
ALL_FIELDS = REQUIRED_FIELDS | OPTIONAL_FIELDS
MAX_INTERVAL = 7 * 86400.0  # seconds: the longest interval a batch may announce
SAMPLE_FIELDS = frozenset({"ts", "values"})


@dataclass(frozen=True)
class Limits:
    """Caps on one batch, so a single frame cannot make the service do unbounded work."""

    max_samples: int = 1000
    max_values: int = 100_000  # summed over the batch's samples
    max_bytes: int = 4 * 1024 * 1024  # the batch's JSON text (checked by the service before parsing)


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Sample:
    ts: float
    values: dict[str, float]


@dataclass(frozen=True)
class Batch:
    host: str
    run: str
    seq: int
    samples: tuple[Sample, ...]
    dropped: int = 0
    interval: float | None = None  # seconds between the agent's batches, when it said
    goodbye: bool = False  # the last batch of a clean stop

    @property
    def key(self) -> tuple[str, str, int]:
        """What the service stores at most once."""
        return (self.host, self.run, self.seq)

    def as_json(self) -> dict[str, Any]:
        """The wire form, as :func:`validate_batch` accepts it back."""
        return wire_form(
            self.host,
            self.run,
            self.seq,
            self.dropped,
            ((s.ts, s.values) for s in self.samples),
            interval=self.interval,
            goodbye=self.goodbye,
        )


@dataclass(frozen=True)
class TimeWindow:
    """The sample times the service takes: at most ``ahead`` seconds past ``now`` (clock
    skew) and at most ``behind`` seconds before it (the retention; ``math.inf``: any age)."""

    now: float
    ahead: float
    behind: float = math.inf


class BatchError(ValueError):
    """A batch the service refuses; ``seq`` is echoed when it could be read, so the agent knows which."""

    def __init__(self, message: str, seq: int | None = None, code: str = BAD_REQUEST, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.seq = seq
        self.code = code
        self.status = status

    def as_json(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, "seq": self.seq}


# --- the wire form ----------------------------------------------------------------------


def wire_form(
    host: str,
    run: str,
    seq: int,
    dropped: int,
    samples: Iterable[tuple[float, Mapping[str, float]]],
    *,
    interval: float | None = None,
    goodbye: bool = False,
) -> dict[str, Any]:
    """A batch as it goes on the wire (the module's docstring): one definition for
    :meth:`Batch.as_json` and the agent's spool, so the two never drift apart.
    ``interval`` is left out when ``None`` and ``goodbye`` when false."""
    form: dict[str, Any] = {
        "host": host,
        "run": run,
        "seq": seq,
        "dropped": dropped,
        "samples": [{"ts": ts, "values": dict(values)} for ts, values in samples],
    }
    if interval is not None:
        form["interval"] = interval
    if goodbye:
        form["goodbye"] = True
    return form


def wire_bytes(
    host: str,
    run: str,
    seq: int,
    dropped: int,
    samples: Iterable[tuple[float, Mapping[str, float]]],
    *,
    interval: float | None = None,
    goodbye: bool = False,
) -> bytes:
    """:func:`wire_form` as the agent spools and sends it: compact JSON, and a NaN or an
    infinity raises here rather than reaching the service as invalid JSON."""
    form = wire_form(host, run, seq, dropped, samples, interval=interval, goodbye=goodbye)
    return json.dumps(form, separators=(",", ":"), allow_nan=False).encode()


# --- names and numbers -------------------------------------------------------------------


def is_number(value: object) -> bool:
    """A JSON number that is a real, finite quantity (``True`` is not a number here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)  # an int too large for a float raises OverflowError
    except OverflowError:
        return False


def valid_name(name: object) -> bool:
    """1 to 200 characters of printable ASCII (space to tilde)."""
    # For ASCII text, isprintable() is exactly 0x20-0x7E; both run in C (this is per value).
    return isinstance(name, str) and 0 < len(name) <= MAX_NAME_LENGTH and name.isascii() and name.isprintable()


def valid_host(host: object) -> bool:
    """A host name as RFC 1123 allows it: dot-separated labels of letters, digits, hyphens."""
    if not isinstance(host, str) or not 0 < len(host) <= MAX_HOST_LENGTH:
        return False
    return all(_HOST_LABEL.fullmatch(label) for label in host.split("."))


def valid_run(run: object) -> bool:
    """1 to 64 of A-Z a-z 0-9 _ - (the agent's spool id)."""
    return isinstance(run, str) and _RUN.fullmatch(run) is not None


def is_count(value: object) -> bool:
    """An integer the store can keep (a seq, a drop count): 0 to 2**63-1, ``True`` not one."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_INTEGER


# --- flattening psutil results -----------------------------------------------------------


def _is_namedtuple(value: object) -> bool:
    return isinstance(value, tuple) and hasattr(value, "_fields")


def _walk(name: str, value: object) -> Iterator[tuple[str, float]]:
    if isinstance(value, bool):
        yield name, 1.0 if value else 0.0
    elif isinstance(value, (int, float)):
        if is_number(value):
            yield name, float(value)
    elif _is_namedtuple(value):
        for key in value._fields:  # type: ignore[attr-defined]
            yield from _walk(f"{name}.{key}", getattr(value, key))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _walk(f"{name}.{index}", item)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _walk(f"{name}.{key}", item)
    # Strings, None and anything else carry no number: left out.


def flatten(name: str, value: object) -> dict[str, float]:
    """One psutil result as series: ``virtual_memory.percent``, ``cpu_percent.0``,
    ``disk_usage./.percent``, ``net_io_counters.eth0.bytes_sent``.

    Booleans become 0/1, non-numbers (strings, None), NaN and infinities are left out, and
    so is any series whose name the service would refuse (over 200 characters, not
    printable ASCII: an odd mount point or interface name), so that everything returned
    passes :func:`validate_batch`.
    """
    return {key: number for key, number in _walk(name, value) if valid_name(key)}


# --- validation --------------------------------------------------------------------------


def _seq_of(obj: Mapping[str, Any]) -> int | None:
    seq = obj.get("seq")
    return seq if is_count(seq) else None


def _check_time(ts: float, where: str, seq: int, window: TimeWindow) -> None:
    if ts > window.now + window.ahead:
        raise BatchError(
            f"{where}.ts {ts:.3f} is {ts - window.now:.0f} s ahead of the service's clock;"
            f" at most {window.ahead:g} s is allowed ([store] max_skew)",
            seq,
        )
    if ts < window.now - window.behind:
        raise BatchError(
            f"{where}.ts {ts:.3f} is {window.now - ts:.0f} s old, older than the retention"
            f" of {window.behind:g} s ([store] retention)",
            seq,
        )


def _sample(raw: object, index: int, seq: int, window: TimeWindow | None = None) -> Sample:
    where = f"samples[{index}]"
    if not isinstance(raw, Mapping):
        raise BatchError(f"{where} must be an object", seq)
    missing = SAMPLE_FIELDS - raw.keys()
    if missing:
        raise BatchError(f"{where} lacks {', '.join(sorted(missing))}", seq, MISSING_FIELD)
    extra = raw.keys() - SAMPLE_FIELDS
    if extra:
        raise BatchError(f"{where} has unknown field(s) {', '.join(sorted(map(str, extra)))}", seq)
    ts = raw["ts"]
    if not is_number(ts) or ts < 0:
        raise BatchError(f"{where}.ts must be a finite, non-negative number of Unix seconds", seq)
    if window is not None:
        _check_time(ts, where, seq, window)
    values = raw["values"]
    if not isinstance(values, Mapping):
        raise BatchError(f"{where}.values must be an object of name: number", seq)
    if not values:
        raise BatchError(f"{where}.values is empty", seq)
    checked: dict[str, float] = {}
    for name, value in values.items():
        # The common case first and cheaply (this runs for every value of every batch):
        # a float that is finite (inf - inf and nan - nan are nan, never 0).
        if type(value) is float and value - value == 0.0:
            number = value
        elif is_number(value):
            number = float(value)
        else:
            raise BatchError(f"{where}.values[{name!r}] must be a finite number, got {value!r:.40}", seq)
        if not valid_name(name):
            shown = repr(name)[:60]
            raise BatchError(
                f"{where}: series name {shown} must be 1 to {MAX_NAME_LENGTH} printable ASCII characters",
                seq,
            )
        checked[name] = number
    return Sample(float(ts), checked)


def validate_batch(obj: object, limits: Limits = DEFAULT_LIMITS, window: TimeWindow | None = None) -> Batch:
    """The batch as a typed :class:`Batch`, or :class:`BatchError` saying what is wrong.

    Strict on purpose: every value stored is one that a query or ``/metrics`` can render,
    every integer fits SQLite's INTEGER, and a mistake in an agent shows up as an error at
    once rather than as odd data later. With ``window``, every sample's ``ts`` must fall
    in it (the service passes its clock, the allowed skew and the retention).

    A batch as agents send it takes :func:`_fast_batch`; anything it does not accept at
    once goes through :func:`_checked_batch`, which finds the first fault and says it.
    """
    if type(obj) is dict:
        fast = _fast_batch(obj, limits, window)
        if fast is not None:
            return fast
    return _checked_batch(obj, limits, window)


def _fast_batch(obj: dict[str, Any], limits: Limits, window: TimeWindow | None) -> Batch | None:
    """The batch :func:`_checked_batch` would return, or None: then let it say what is wrong.

    One pass, each check a C call over a whole sample (names joined and tested at once,
    values summed: a NaN or an infinity makes the sum one); only what is certainly valid
    is accepted here, so refusals keep their exact messages. 50 values: ~4 us instead
    of ~13 us (README, "Ingest cost"); ``tests/store/test_samples.py`` holds both to the
    same answers.
    """
    keys = obj.keys()
    if not REQUIRED_FIELDS <= keys <= ALL_FIELDS:
        return None
    seq, host, run, raw_samples = obj["seq"], obj["host"], obj["run"], obj["samples"]
    dropped, goodbye = obj.get("dropped", 0), obj.get("goodbye", False)
    interval: Any = obj.get("interval")
    if not (is_count(seq) and is_count(dropped) and valid_host(host) and valid_run(run)):
        return None
    if (goodbye is not False and goodbye is not True) or type(raw_samples) is not list or not raw_samples:
        return None
    if "interval" in obj and not (is_number(interval) and 0 < interval <= MAX_INTERVAL):
        return None
    if len(raw_samples) > limits.max_samples:
        return None
    latest = math.inf if window is None else window.now + window.ahead
    earliest = -math.inf if window is None else window.now - window.behind
    samples = []
    count = 0
    for raw in raw_samples:
        if type(raw) is not dict or len(raw) != 2:
            return None
        ts, values = raw.get("ts"), raw.get("values")
        if type(ts) is not float or ts - ts != 0.0 or not 0.0 <= ts <= latest or ts < earliest:
            return None  # not a float, not finite, negative, or outside the window
        if type(values) is not dict or not values:
            return None
        try:
            names = "".join(values)  # TypeError: a name that is not text
        except TypeError:
            return None
        if not names.isascii() or names.encode().translate(None, _PRINTABLE_ASCII):
            return None  # a character outside space to tilde
        if "" in values or max(map(len, values)) > MAX_NAME_LENGTH:
            return None
        numbers = values.values()
        total = sum(numbers) if set(map(type, numbers)) == {float} else math.nan
        if total - total != 0.0:  # not all floats, or not all finite (or a sum past 1e308: let it check)
            return None
        count += len(values)
        samples.append(Sample(ts, dict(values)))
    if count > limits.max_values:
        return None
    return Batch(
        host=host.lower(),
        run=run,
        seq=seq,
        samples=tuple(samples),
        dropped=dropped,
        interval=None if interval is None else float(interval),
        goodbye=goodbye,
    )


def _checked_batch(obj: object, limits: Limits = DEFAULT_LIMITS, window: TimeWindow | None = None) -> Batch:
    """:func:`validate_batch`, each field checked in turn: the first fault is the one said."""
    if not isinstance(obj, Mapping):
        raise BatchError("a batch must be a JSON object")
    seq = _seq_of(obj)
    missing = REQUIRED_FIELDS - obj.keys()
    if missing:
        raise BatchError(f"the batch lacks {', '.join(sorted(missing))}", seq, MISSING_FIELD)
    extra = obj.keys() - REQUIRED_FIELDS - OPTIONAL_FIELDS
    if extra:
        raise BatchError(f"unknown field(s) {', '.join(sorted(map(str, extra)))}", seq)
    if seq is None:
        raise BatchError("seq must be an integer from 0 to 2**63-1")
    host = obj["host"]
    if not valid_host(host):
        raise BatchError(
            f"host {str(host)[:80]!r} is not an RFC 1123 host name "
            "(dot-separated labels of letters, digits and inner hyphens)",
            seq,
        )
    run = obj["run"]
    if not valid_run(run):
        raise BatchError("run must be 1 to 64 of A-Z a-z 0-9 _ -", seq)
    dropped = obj.get("dropped", 0)
    if not is_count(dropped):
        raise BatchError("dropped must be an integer from 0 to 2**63-1", seq)
    interval: Any = obj.get("interval")
    if "interval" in obj and not (is_number(interval) and 0 < interval <= MAX_INTERVAL):
        raise BatchError(f"interval must be a number of seconds above 0 and at most {MAX_INTERVAL:g}", seq)
    goodbye = obj.get("goodbye", False)
    if not isinstance(goodbye, bool):
        raise BatchError("goodbye must be true or false", seq)
    raw_samples = obj["samples"]
    if not isinstance(raw_samples, list):
        raise BatchError("samples must be a list", seq)
    if not raw_samples and not goodbye:  # a goodbye may carry no samples
        raise BatchError("samples is empty", seq)
    if len(raw_samples) > limits.max_samples:
        raise BatchError(
            f"{len(raw_samples)} samples in one batch; the limit is {limits.max_samples}",
            seq,
            PAYLOAD_TOO_LARGE,
            413,
        )
    total = sum(
        len(s["values"]) for s in raw_samples if isinstance(s, Mapping) and isinstance(s.get("values"), Mapping)
    )
    if total > limits.max_values:
        raise BatchError(
            f"{total} values in one batch; the limit is {limits.max_values}",
            seq,
            PAYLOAD_TOO_LARGE,
            413,
        )
    samples = tuple(_sample(raw, i, seq, window) for i, raw in enumerate(raw_samples))
    # RFC 1123 names are case-insensitive: one host, one spelling.
    return Batch(
        host=host.lower(),
        run=run,
        seq=seq,
        samples=samples,
        dropped=dropped,
        interval=None if interval is None else float(interval),
        goodbye=goodbye,
    )


__all__ = [
    "Batch",
    "BatchError",
    "DEFAULT_LIMITS",
    "Limits",
    "MAX_INTEGER",
    "MAX_INTERVAL",
    "MAX_NAME_LENGTH",
    "Sample",
    "TimeWindow",
    "flatten",
    "is_count",
    "is_number",
    "valid_host",
    "valid_name",
    "valid_run",
    "validate_batch",
    "wire_bytes",
    "wire_form",
]
