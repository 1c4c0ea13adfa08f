"""The bench's ratios: each round's servers side by side, then the median over rounds."""

from __future__ import annotations

import importlib

bench_main = importlib.import_module("bench.__main__")


def test_a_ratio_is_the_median_of_each_rounds_ratio() -> None:
    # the machine's speed drifts from round to round; within a round both sides see the same
    bare = [{"rps": 6000.0}, {"rps": 3000.0}, {"rps": 4500.0}]
    port = [{"rps": 5700.0}, {"rps": 3000.0}, {"rps": 3600.0}]  # 0.95x, 1.0x, 0.8x
    assert bench_main.paired_ratio(port, bare, "rps") == 0.95
    # the ratio of the medians pairs the port's slowest round with bare's middle one
    assert bench_main._ratio(3600.0, 4500.0, "rps") == 0.8


def test_lower_is_better_and_missing_rounds_fall_back() -> None:
    assert bench_main.paired_ratio([{"p99": 0.010}], [{"p99": 0.020}], "p99") == 2.0
    assert bench_main.paired_ratio([{"rps": 1.0}], [{"rps": 1.0}, {"rps": 2.0}], "rps") is None
    assert bench_main.paired_ratio([{"rps": None}], [{"rps": 1.0}], "rps") is None


def test_the_targets_read_the_tables_paired_ratio() -> None:
    figures = {"port-uvloop": {"rps": 5856.0, "ratios": {"quart-bare": 0.94}}, "quart-bare": {"rps": 5658.0}}
    lines = bench_main.targets({"json-dict-50": {"figures": figures}})
    # the medians alone would read 1.03x and "met"
    assert lines == ["port-uvloop: json-dict-50 0.94x bare Quart (target >= 0.95x): NOT met"]
