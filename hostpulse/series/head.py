"""The head: each batch's samples as they came, one row a batch, until compaction.

Writing a batch must be cheap (it is on the ingest path, before the ack) and on disk (an
acknowledged sample survives ``kill -9``): so a batch is one row of plain arrays (times in
milliseconds, then for each sample its series ids and values), not compressed. Compaction
(``SeriesStore.compact``) moves the rows of closed time windows into compressed tables.

Also here: a host's latest values, one small blob of parallel arrays, merged per batch.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import chain, repeat

import numpy as np
import numpy.typing as npt

from hostpulse.samples import Sample

_COUNT = struct.Struct("<I")
_HEAD = struct.Struct("<IB")  # samples, flags


def to_ms(ts: float) -> int:
    """Times are kept to the millisecond, as Prometheus keeps them."""
    return round(ts * 1000.0)


_SHARED = 1  # every sample has the same names in the same order: ids stored once


def encode_samples(samples: Sequence[Sample], ids: Mapping[str, int]) -> tuple[bytes, dict[int, tuple[int, float]]]:
    """``samples`` with each name replaced by its series id (a ``KeyError`` for a name not
    in ``ids``), and the batch's newest ``(time, value)`` per id.

    An agent's samples all have the same names: their ids are then written once and the
    values taken in one pass (``np.fromiter``), a third of the bytes and of the work.
    """
    times = [to_ms(s.ts) for s in samples]
    names = tuple(samples[0].values)
    if all(tuple(s.values) == names for s in samples[1:]):
        keys = array("q", map(ids.__getitem__, names))
        values = np.fromiter(
            chain.from_iterable(s.values.values() for s in samples), np.float64, len(samples) * len(names)
        )
        newest = max(range(len(samples)), key=lambda i: (times[i], i))  # the last of the newest time
        latest = dict(zip(keys, zip(repeat(times[newest]), samples[newest].values.values())))
        head = _HEAD.pack(len(samples), _SHARED) + array("q", times).tobytes() + _COUNT.pack(len(names))
        return head + keys.tobytes() + values.tobytes(), latest
    counts = array("I", [len(s.values) for s in samples])
    flat_keys = array("q")
    flat_values = array("d")
    latest = {}
    for sample, ts in zip(samples, times):
        sample_keys = list(map(ids.__getitem__, sample.values))
        flat_keys.extend(sample_keys)
        flat_values.extend(sample.values.values())
        for key, value in zip(sample_keys, sample.values.values()):
            if key not in latest or ts >= latest[key][0]:
                latest[key] = (ts, value)
    parts = (_HEAD.pack(len(samples), 0), array("q", times).tobytes(), counts.tobytes(), flat_keys.tobytes())
    return b"".join(parts) + flat_values.tobytes(), latest


class Rows:
    """Head rows decoded into flat parallel arrays: one entry per value."""

    def __init__(self, blobs: Iterable[bytes]) -> None:
        times: list[npt.NDArray[np.int64]] = []
        keys: list[npt.NDArray[np.int64]] = []
        values: list[npt.NDArray[np.float64]] = []
        for blob in blobs:
            n, flags = _HEAD.unpack_from(blob, 0)
            at = _HEAD.size
            sample_times = np.frombuffer(blob, np.int64, n, at)
            at += 8 * n
            if flags & _SHARED:
                (k,) = _COUNT.unpack_from(blob, at)
                at += _COUNT.size
                names = np.frombuffer(blob, np.int64, k, at)
                times.append(np.repeat(sample_times, k))
                keys.append(np.tile(names, n))
                values.append(np.frombuffer(blob, np.float64, n * k, at + 8 * k))
                continue
            counts = np.frombuffer(blob, np.uint32, n, at)
            at += 4 * n
            total = int(counts.sum())
            times.append(np.repeat(sample_times, counts))
            keys.append(np.frombuffer(blob, np.int64, total, at))
            values.append(np.frombuffer(blob, np.float64, total, at + 8 * total))
        self.times_ms = np.concatenate(times) if times else np.empty(0, np.int64)
        self.keys = np.concatenate(keys) if keys else np.empty(0, np.int64)
        self.values = np.concatenate(values) if values else np.empty(0, np.float64)

    def points(self, key: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """One series' ``(times_ms, values)``, in the rows' order."""
        chosen = self.keys == key
        return self.times_ms[chosen], self.values[chosen]


# --- a host's latest values ---------------------------------------------------------------


class Latest:
    """A host's latest ``(time, value)`` per series id, as one blob stores them.

    Kept in plain arrays and a dict of ints, none of which the garbage collector tracks:
    a process caching 10,000 hosts' latest values as tuples had 500,000 more objects for
    every full collection to walk (a worker stalled 0.7 s at a time under 10,000 agents).
    """

    __slots__ = ("index", "times", "values")

    def __init__(self, blob: bytes | None = None) -> None:
        self.times = array("q")
        self.values = array("d")
        keys = array("q")
        if blob:
            (n,) = _COUNT.unpack_from(blob, 0)
            at = _COUNT.size
            keys.frombytes(blob[at : at + 8 * n])
            self.times.frombytes(blob[at + 8 * n : at + 16 * n])
            self.values.frombytes(blob[at + 16 * n : at + 24 * n])
        self.index: dict[int, int] = {key: i for i, key in enumerate(keys)}

    def copy(self) -> Latest:
        other = Latest()
        other.index, other.times, other.values = dict(self.index), array("q", self.times), array("d", self.values)
        return other

    def merge(self, newest: Mapping[int, tuple[int, float]]) -> None:
        """A batch's newest values in (a re-sent older batch does not replace a newer value)."""
        for key, (ts, value) in newest.items():
            at = self.index.get(key)
            if at is None:
                self.index[key] = len(self.times)
                self.times.append(ts)
                self.values.append(value)
            elif ts >= self.times[at]:
                self.times[at] = ts
                self.values[at] = value

    def items(self) -> Iterator[tuple[int, float]]:
        """``(series id, value)`` pairs."""
        return zip(self.index, self.values)

    def to_bytes(self) -> bytes:
        keys = array("q", self.index)
        return _COUNT.pack(len(keys)) + keys.tobytes() + self.times.tobytes() + self.values.tobytes()


def encode_latest(latest: Mapping[int, tuple[int, float]]) -> bytes:
    """A blob of :class:`Latest` from ``{series id: (time, value)}``."""
    found = Latest()
    found.merge(latest)
    return found.to_bytes()


__all__ = ["Latest", "Rows", "encode_latest", "encode_samples", "to_ms"]
