"""Reconnect delays and batch splitting: small pure pieces with exact edges."""

from __future__ import annotations

import json
import random

import pytest

from agent.backoff import Backoff
from agent.stream import split_batch
from hostpulse.samples import Limits, validate_batch


def test_backoff_doubles_within_jitter_up_to_the_cap() -> None:
    backoff = Backoff(base=0.5, cap=8.0, rng=random.Random(1))
    delays = [backoff.next() for _ in range(10)]
    ceilings = [0.5, 1, 2, 4, 8, 8, 8, 8, 8, 8]
    for delay, ceiling in zip(delays, ceilings):
        assert ceiling / 2 <= delay <= ceiling
    backoff.reset()
    assert 0.25 <= backoff.next() <= 0.5


def test_backoff_jitter_spreads_agents_apart() -> None:
    firsts = {round(Backoff(base=1, cap=30, rng=random.Random(seed)).next(), 6) for seed in range(50)}
    assert len(firsts) == 50  # fifty agents, fifty different first retries


def test_backoff_survives_many_attempts_and_checks_its_arguments() -> None:
    backoff = Backoff(base=1, cap=30)
    for _ in range(2000):
        assert backoff.next() <= 30
    with pytest.raises(ValueError):
        Backoff(base=0)
    with pytest.raises(ValueError):
        Backoff(base=10, cap=1)


def test_split_batch_keeps_each_part_within_the_service_caps() -> None:
    limits = Limits(max_samples=1000, max_values=250, max_bytes=1 << 20)
    samples = [(float(i), {f"s{n}": float(n) for n in range(100)}) for i in range(7)]
    parts = split_batch(samples, limits)
    assert [len(p) for p in parts] == [2, 2, 2, 1]
    assert [s for p in parts for s in p] == samples  # nothing lost, order kept
    for seq, part in enumerate(parts):
        body = {"host": "h", "run": "r", "seq": seq, "samples": [{"ts": t, "values": v} for t, v in part]}
        validate_batch(json.loads(json.dumps(body)), limits)


def test_split_batch_by_bytes() -> None:
    limits = Limits(max_values=10**6, max_bytes=4096)
    samples = [(float(i), {"x" * 150 + str(n): 1.0 for n in range(5)}) for i in range(4)]
    parts = split_batch(samples, limits)
    assert [len(p) for p in parts] == [2, 2]  # ~870 bytes a sample, half the cap a part
    for part in parts:
        assert len(json.dumps([{"ts": t, "values": v} for t, v in part])) <= limits.max_bytes // 2
    assert split_batch([], limits) == []
