"""The store's tiers: raw samples, 5-minute and hourly aggregates, and reading answers from them.

A long range is read from a coarse tier: ``series`` over 30 days at ``step=3600`` reads 30
rows of the hourly tier instead of 259,200 raw samples. Each aggregate bucket keeps what a
query needs to answer exactly over any multiple of its step: count, sum (so a mean over
several buckets is exact), min, max, the last value and its time; a counter also keeps its
increase and the time that increase spans (its rate over several buckets is exact, resets
included).

Rows: the raw tier keeps a host's samples per hour (``span``), the aggregate tiers a host's
buckets per day. All times here are integer milliseconds.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hostpulse.series import codec

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]

HOUR_MS = 3_600_000
DAY_MS = 86_400_000


@dataclass(frozen=True)
class Tier:
    level: int  # as series_chunks.tier stores it
    name: str  # as /metrics labels it
    step_ms: int  # bucket width (0: raw samples)
    span_ms: int  # the time one row of the tier covers


RAW = Tier(0, "raw", 0, HOUR_MS)
MEDIUM = Tier(1, "5m", 300_000, DAY_MS)
HOURLY = Tier(2, "1h", HOUR_MS, DAY_MS)
TIERS = (RAW, MEDIUM, HOURLY)
AGGREGATES = (MEDIUM, HOURLY)

# The fields of an aggregate bucket, as column ``key * FIELDS + field`` of a tier row.
COUNT, SUM, MIN, MAX, LAST, LAST_AT, INC, SPAN = range(8)
FIELDS = 8


def window_of(times_ms: Ints, span_ms: int) -> Ints:
    return (times_ms // span_ms) * span_ms


@dataclass
class Buckets:
    """Aggregates of several series: one entry per (series key, bucket), sorted by both."""

    keys: Ints
    starts: Ints
    fields: Floats  # shape (entries, FIELDS)

    @classmethod
    def empty(cls) -> Buckets:
        return cls(np.empty(0, np.int64), np.empty(0, np.int64), np.empty((0, FIELDS), np.float64))

    def __len__(self) -> int:
        return len(self.keys)

    def select(self, key: int) -> Buckets:
        chosen = self.keys == key
        return Buckets(self.keys[chosen], self.starts[chosen], self.fields[chosen])


def _groups(first: Ints, second: Ints) -> Ints:
    """Where each run of equal ``(first, second)`` starts, in arrays sorted by both."""
    if not len(first):
        return np.empty(0, np.int64)
    change = np.ones(len(first), bool)
    change[1:] = (first[1:] != first[:-1]) | (second[1:] != second[:-1])
    return np.flatnonzero(change)


def by_series(times_ms: Ints, keys: Ints, values: Floats) -> tuple[Ints, Ints, Floats]:
    """Samples sorted by series, then time: the order aggregation and tables read them in."""
    order = np.lexsort((times_ms, keys))
    return times_ms[order], keys[order], values[order]


def aggregate(
    times_ms: Ints, keys: Ints, values: Floats, step_ms: int, counters: set[int], ordered: bool = False
) -> Buckets:
    """Samples ``(time, key, value)`` in any order (``ordered``: already :func:`by_series`),
    as buckets of ``step_ms``.

    A counter's increase between two samples counts in the later one's bucket; a value
    lower than the one before is a reset (the increase is the new value, as Prometheus
    reads it).
    """
    if not len(times_ms):
        return Buckets.empty()
    t, k, v = (times_ms, keys, values) if ordered else by_series(times_ms, keys, values)
    b = (t // step_ms) * step_ms
    at = _groups(k, b)
    ends = np.append(at[1:], len(t)) - 1
    fields = np.zeros((len(at), FIELDS))
    fields[:, COUNT] = np.diff(np.append(at, len(t)))
    fields[:, SUM] = np.add.reduceat(v, at)
    fields[:, MIN] = np.minimum.reduceat(v, at)
    fields[:, MAX] = np.maximum.reduceat(v, at)
    fields[:, LAST] = v[ends]
    fields[:, LAST_AT] = t[ends] - b[ends]
    if counters:
        same = np.zeros(len(t), bool)
        same[1:] = k[1:] == k[:-1]  # the sample before is of the same series
        firsts = np.flatnonzero(~same)  # where each series starts
        lengths = np.diff(np.append(firsts, len(k)))
        is_counter = np.repeat([int(key) in counters for key in k[firsts]], lengths)
        step = np.zeros(len(t))
        step[1:] = np.where(v[1:] >= v[:-1], v[1:] - v[:-1], v[1:])
        span = np.zeros(len(t))
        span[1:] = t[1:] - t[:-1]
        counted = same & is_counter
        fields[:, INC] = np.add.reduceat(np.where(counted, step, 0.0), at)
        fields[:, SPAN] = np.add.reduceat(np.where(counted, span, 0.0), at)
    return Buckets(k[at], b[at], fields)


def merge(*parts: Buckets) -> Buckets:
    """Buckets of the same series and start combined (data that arrived late, or that one
    tier row and the head each hold part of)."""
    keys = np.concatenate([p.keys for p in parts])
    starts = np.concatenate([p.starts for p in parts])
    fields = np.concatenate([p.fields for p in parts])
    if not len(keys):
        return Buckets.empty()
    order = np.lexsort((fields[:, LAST_AT], starts, keys))  # the latest last value ends its group
    keys, starts, fields = keys[order], starts[order], fields[order]
    at = _groups(keys, starts)
    if len(at) == len(keys):
        return Buckets(keys, starts, fields)
    ends = np.append(at[1:], len(keys)) - 1
    out = np.empty((len(at), FIELDS))
    for field in (COUNT, SUM, INC, SPAN):
        out[:, field] = np.add.reduceat(fields[:, field], at)
    out[:, MIN] = np.minimum.reduceat(fields[:, MIN], at)
    out[:, MAX] = np.maximum.reduceat(fields[:, MAX], at)
    out[:, LAST] = fields[ends, LAST]
    out[:, LAST_AT] = fields[ends, LAST_AT]
    return Buckets(keys[at], starts[at], out)


# --- tier rows as tables -------------------------------------------------------------------


_GROUPS = struct.Struct("<I")
_GROUP = struct.Struct("<I")
_KEY = 0  # column of a group table holding each entry's series key; fields follow at 1 + field


def encode_row(buckets: Buckets) -> bytes:
    """One tier row: its series grouped by the scale of their values (a percentage's one
    decimal, a byte count's none, a load average's 1/2048ths), each group one table with an
    entry per (series, bucket) and a column per field, so a row is a few tables of a few
    columns rather than a column for every field of every series (ten times the encoding
    work). Sums are rounded to the decimals of the values they add (a float sum of 0.1s is
    not 0.3 but should be, and then compresses as the values do)."""
    at = _groups(buckets.keys, np.zeros(len(buckets.keys), np.int64))
    ends = np.append(at[1:], len(buckets.keys))
    by_scale: dict[int, list[tuple[int, int]]] = {}
    for first, end in zip(at, ends):
        fields = buckets.fields[first:end]
        scale = codec.scale_of(np.concatenate((fields[:, MIN], fields[:, MAX])))
        by_scale.setdefault(-1 if scale is None else scale, []).append((int(first), int(end)))
    parts = [_GROUPS.pack(len(by_scale))]
    for scale, spans in sorted(by_scale.items()):
        chosen = np.concatenate([np.arange(first, end) for first, end in spans])
        fields = buckets.fields[chosen].copy()
        if 0 <= scale <= codec.MAX_SCALE:
            fields[:, SUM] = np.round(fields[:, SUM], scale)
        columns = {_KEY: codec.Column(buckets.keys[chosen].astype(np.float64))}
        columns |= {1 + f: codec.Column(np.ascontiguousarray(fields[:, f])) for f in range(FIELDS)}
        table = codec.encode(buckets.starts[chosen], columns)
        parts += [_GROUP.pack(len(table)), table]
    return b"".join(parts)


def decode_row(blob: bytes, wanted: set[int] | None = None) -> Buckets:
    """A tier row's buckets (of the ``wanted`` series keys only, when given)."""
    (count,) = _GROUPS.unpack_from(blob, 0)
    at = _GROUPS.size
    parts = []
    for _ in range(count):
        (size,) = _GROUP.unpack_from(blob, at)
        at += _GROUP.size
        table = codec.decode(blob[at : at + size])
        at += size
        keys = table.column(_KEY).values.astype(np.int64)
        chosen = np.ones(len(keys), bool) if wanted is None else np.isin(keys, list(wanted))
        if not chosen.any():
            continue
        fields = np.stack([table.column(1 + f).values[chosen] for f in range(FIELDS)], axis=1)
        parts.append(Buckets(keys[chosen], table.times_ms[chosen], fields))
    return merge(*parts) if parts else Buckets.empty()


# --- answers ---------------------------------------------------------------------------------


def answer(buckets: Buckets, step_ms: int, rate: bool) -> tuple[Ints, Floats]:
    """One series' buckets regrouped by ``step_ms``: the mean of each step, or with ``rate``
    the counter's increase per second over the time its increases span."""
    if not len(buckets):
        return np.empty(0, np.int64), np.empty(0, np.float64)
    grouped = (buckets.starts // step_ms) * step_ms
    order = np.argsort(grouped, kind="stable")
    grouped, fields = grouped[order], buckets.fields[order]
    at = _groups(grouped, np.zeros(len(grouped), np.int64))
    if rate:
        span = np.add.reduceat(fields[:, SPAN], at)
        inc = np.add.reduceat(fields[:, INC], at)
        keep = span > 0
        return grouped[at][keep], inc[keep] / span[keep] * 1000.0
    return grouped[at], np.add.reduceat(fields[:, SUM], at) / np.add.reduceat(fields[:, COUNT], at)


def rates(times_ms: Ints, values: Floats) -> tuple[Ints, Floats]:
    """A counter's raw samples as per-second rates between each sample and the one before."""
    if len(times_ms) < 2:
        return np.empty(0, np.int64), np.empty(0, np.float64)
    span = np.diff(times_ms)
    inc = np.where(values[1:] >= values[:-1], values[1:] - values[:-1], values[1:])
    keep = span > 0
    return times_ms[1:][keep], inc[keep] / span[keep] * 1000.0


__all__ = [
    "AGGREGATES",
    "HOURLY",
    "MEDIUM",
    "RAW",
    "TIERS",
    "Buckets",
    "Tier",
    "aggregate",
    "answer",
    "decode_row",
    "encode_row",
    "merge",
    "rates",
    "window_of",
]
