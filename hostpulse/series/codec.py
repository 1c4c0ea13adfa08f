"""Compressed tables of samples: one blob holds a host's rows (times) and its series (columns).

The series store keeps samples per host and time window as one such table rather than a
row per value (96 bytes a sample): a host's series share its samples' times, so a time is
stored once for all of them. Each column is encoded by its values' form, then the whole
table goes through zlib:

- **times** in milliseconds (as Prometheus keeps them), delta-of-delta: a steady interval
  with jitter is a run of small numbers;
- **decimal values** (psutil gives percentages to one decimal, byte counts as integers)
  as integers ``value * 10**k``, delta-encoded: a counter's steady growth or a gauge's
  wander are small numbers, a constant is zeros; binary fractions (Linux load averages
  are multiples of 1/2048) likewise as ``value * 2**k``;
- **other floats** (load averages, means) as the XOR of each value's bits with the
  previous one's, as Gorilla does: close values share sign, exponent and high mantissa;
- small numbers are zigzag-encoded, stored in the narrowest of 1, 2, 4 or 8 bytes and
  split into byte planes, so zlib sees runs of zero bytes instead of interleaved ones.

Measured with the store's benchmark (``python -m bench.store``), against a row per value:
see the README's "The series store" section.

A column may miss rows (a series that started or stopped in the window): a bitmap says
which rows it has. Column keys are non-negative integers chosen by the caller (series
ids, or a series id and an aggregate field for the tiers).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

VERSION = 1
MAX_SCALE = 9  # decimals tried: 10**9 keeps float products exact enough below 2**53
MAX_BINARY = 20  # binary fractions tried (Linux load averages are multiples of 1/2048)
_EXACT = 2.0**53  # larger integers are not all floats: stored as float bits instead
_WIDTHS = (1, 2, 4, 8)
_UNSIGNED = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}
# Scale k: the values times _POWERS[k] are integers; decimal scales first, then binary ones.
_POWERS = [10.0**k for k in range(MAX_SCALE + 1)] + [2.0**k for k in range(1, MAX_BINARY + 1)]

_HEAD = struct.Struct("<BIIqqB")  # version, rows, columns, first time, first interval, width
_COLUMN = struct.Struct("<QBBBIq")  # key, mode, scale, width, rows present, first value
_MODE_SCALED, _MODE_BITS = 0, 1
_FLAG_MASK = 0x80  # in the mode byte: a bitmap of the rows present follows

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]


@dataclass
class Column:
    """One series' values; ``mask`` says which of the table's rows they belong to
    (``None``: every row)."""

    values: Floats
    mask: Mask | None = None


# --- numbers to small unsigned integers and back ----------------------------------------


def _zigzag(d: Ints) -> npt.NDArray[np.uint64]:
    return ((d << 1) ^ (d >> 63)).astype(np.uint64)


def _unzigzag(z: npt.NDArray[np.uint64]) -> Ints:
    return (z >> np.uint64(1)).astype(np.int64) ^ -(z & np.uint64(1)).astype(np.int64)


def _pack(z: npt.NDArray[np.uint64]) -> tuple[int, bytes]:
    """The narrowest width holding every number, and the numbers in byte planes."""
    top = int(z.max()) if len(z) else 0
    width = next(w for w in _WIDTHS if top < 1 << (8 * w))
    narrow = z.astype(_UNSIGNED[width])
    return width, narrow.view(np.uint8).reshape(-1, width).T.tobytes()


def _unpack(data: memoryview, count: int, width: int) -> npt.NDArray[np.uint64]:
    planes = np.frombuffer(data, dtype=np.uint8, count=count * width).reshape(width, count)
    return np.ascontiguousarray(planes.T).view(_UNSIGNED[width]).reshape(count).astype(np.uint64)


def scale_of(values: Floats) -> int | None:
    """The first scale ``k`` with ``round(v * _POWERS[k]) / _POWERS[k] == v`` for every
    value: the fewest decimals, else the fewest binary digits (``None``: neither, or too
    large to be an exact integer).

    Found in a few array operations rather than by trying each scale: values that are
    ``n / 10**9`` exactly (as doubles) have their decimals in the trailing zeros of ``n``;
    binary fractions have theirs in the lowest set bit of ``v * 2**20``.
    """
    if not len(values):
        return 0
    top = float(np.abs(values).max())
    if not top < _EXACT:
        return None
    if (np.round(values) == values).all():
        return 0
    if top * _POWERS[MAX_SCALE] < _EXACT:
        ints = np.round(values * _POWERS[MAX_SCALE])
        if (ints / _POWERS[MAX_SCALE] == values).all():
            whole = ints.astype(np.int64)
            for k in range(1, MAX_SCALE):
                if not (whole % 10 ** (MAX_SCALE - k)).any():
                    return k
            return MAX_SCALE
    if top * 2.0**MAX_BINARY < _EXACT:
        scaled = values * 2.0**MAX_BINARY
        if (np.round(scaled) == scaled).all():
            whole = scaled.astype(np.int64)
            lowest = (whole & -whole)[whole != 0]
            zeros = int(np.log2(lowest.min()))  # trailing zero bits of them all
            return MAX_SCALE + MAX_BINARY - zeros
    return None


def _encode_values(values: Floats) -> tuple[int, int, int, int, bytes]:
    """``(mode, scale, first, width, planes)`` of one column's values: the first value
    apart (a byte counter's first value would widen every delta)."""
    if not len(values):
        return _MODE_SCALED, 0, 0, 1, b""
    k = scale_of(values)
    if k is not None:
        ints = np.round(values * _POWERS[k]).astype(np.int64)
        width, planes = _pack(_zigzag(np.diff(ints)))
        return _MODE_SCALED, k, int(ints[0]), width, planes
    bits = values.view(np.uint64)
    width, planes = _pack(bits[1:] ^ bits[:-1])
    return _MODE_BITS, 0, int(bits[:1].view(np.int64)[0]), width, planes


def _decode_values(mode: int, scale: int, first: int, width: int, data: memoryview, count: int) -> Floats:
    if not count:
        return np.empty(0, np.float64)
    z = _unpack(data, count - 1, width)
    if mode == _MODE_SCALED:
        ints = np.cumsum(np.concatenate((np.array([first], np.int64), _unzigzag(z))))
        return ints.astype(np.float64) / _POWERS[scale]
    start = np.array([first], np.int64).view(np.uint64)
    return np.bitwise_xor.accumulate(np.concatenate((start, z))).view(np.float64)


# --- tables ------------------------------------------------------------------------------


def encode(times_ms: Ints, columns: dict[int, Column], level: int = 6) -> bytes:
    """One table: ``times_ms`` (one per row, in any order; kept as given) and its columns."""
    rows = len(times_ms)
    times = np.asarray(times_ms, dtype=np.int64)
    deltas = np.diff(times)
    width, planes = _pack(_zigzag(np.diff(deltas)))
    first = int(times[0]) if rows else 0
    interval = int(deltas[0]) if rows > 1 else 0
    parts = [_HEAD.pack(VERSION, rows, len(columns), first, interval, width), planes]
    for key in sorted(columns):
        column = columns[key]
        mask = column.mask
        if mask is not None and mask.all():
            mask = None
        present = rows if mask is None else int(mask.sum())
        if len(column.values) != present:
            raise ValueError(f"column {key}: {len(column.values)} values for {present} rows")
        values = np.ascontiguousarray(column.values, dtype=np.float64)
        mode, scale, first, width, planes = _encode_values(values)
        flags = mode | (_FLAG_MASK if mask is not None else 0)
        parts.append(_COLUMN.pack(key, flags, scale, width, present, first))
        if mask is not None:
            parts.append(np.packbits(mask).tobytes())
        parts.append(planes)
    return zlib.compress(b"".join(parts), level)


class Table:
    """A decoded table's times and a lazy view of its columns (only those asked for are decoded)."""

    def __init__(self, blob: bytes) -> None:
        raw = memoryview(zlib.decompress(blob))
        version, rows, ncols, first, interval, width = _HEAD.unpack_from(raw, 0)
        if version != VERSION:
            raise ValueError(f"unknown table version {version}")
        at = _HEAD.size
        self.rows = rows
        self.times_ms: Ints = np.empty(0, np.int64)
        if rows:
            dods = _unzigzag(_unpack(raw[at:], max(rows - 2, 0), width))
            deltas = np.cumsum(np.concatenate((np.array([interval], np.int64), dods)))[: rows - 1]
            self.times_ms = np.cumsum(np.concatenate((np.array([first], np.int64), deltas)))
        at += max(rows - 2, 0) * width
        self._raw = raw
        self._where: dict[int, tuple[int, int, int, int, int, int, bool]] = {}
        for _ in range(ncols):
            key, flags, scale, width, present, first_value = _COLUMN.unpack_from(raw, at)
            at += _COLUMN.size
            has_mask = bool(flags & _FLAG_MASK)
            self._where[key] = (at, flags & ~_FLAG_MASK, scale, first_value, width, present, has_mask)
            at += ((rows + 7) // 8 if has_mask else 0) + max(present - 1, 0) * width

    def keys(self) -> list[int]:
        return list(self._where)

    def __contains__(self, key: int) -> bool:
        return key in self._where

    def column(self, key: int) -> Column:
        at, mode, scale, first, width, present, has_mask = self._where[key]
        mask = None
        if has_mask:
            nbytes = (self.rows + 7) // 8
            bits = np.frombuffer(self._raw[at : at + nbytes], dtype=np.uint8)
            mask = np.unpackbits(bits, count=self.rows).astype(bool)
            at += nbytes
        return Column(_decode_values(mode, scale, first, width, self._raw[at:], present), mask)

    def points(self, key: int) -> tuple[Ints, Floats]:
        """``(times_ms, values)`` of one column, only the rows it has (empty when absent)."""
        if key not in self._where:
            return np.empty(0, np.int64), np.empty(0, np.float64)
        column = self.column(key)
        times = self.times_ms if column.mask is None else self.times_ms[column.mask]
        return times, column.values


def decode(blob: bytes) -> Table:
    return Table(blob)


__all__ = ["Column", "Table", "decode", "encode", "scale_of"]
