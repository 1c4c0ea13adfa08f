"""What the agent collects from this very host, through psutil."""

from __future__ import annotations

import json

import psutil
import pytest

from agent.collect import DEFAULT_NAMES, READERS, Collector, UnknownName, check_names, read_once
from hostpulse.samples import validate_batch


def test_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(UnknownName) as info:
        check_names(["cpu_percent", "cpu_percnt", "system"])
    message = str(info.value)
    assert "cpu_percnt, system" in message
    assert all(name in message for name in READERS)


def test_no_names_means_the_default_set_and_duplicates_collapse() -> None:
    assert check_names([]) == DEFAULT_NAMES
    assert {"cpu_percent", "virtual_memory", "swap_memory", "disk_usage", "net_io_counters", "pids"} <= set(
        DEFAULT_NAMES
    )
    assert check_names(["pids", "pids", "boot_time"]) == ("pids", "boot_time")


def test_default_collection_covers_cpu_memory_disks_network_load_and_processes() -> None:
    collector = Collector([])
    collector.collect()
    ts, values = collector.collect()
    assert ts > 1e9
    cores = psutil.cpu_count() or 1
    assert "cpu_percent" in values and all(f"cpu_percent.{i}" in values for i in range(cores))
    assert 0 <= values["virtual_memory.percent"] <= 100
    assert "swap_memory.total" in values
    assert "disk_usage./.percent" in values
    assert values["pids"] >= 1
    assert "boot_time" in values
    if hasattr(psutil, "getloadavg"):
        assert "getloadavg.0" in values
    if psutil.net_io_counters() is not None:
        assert "net_io_counters.bytes_sent" in values
    # Everything collected is a batch the service accepts.
    batch = {"host": "h", "run": "r", "seq": 0, "samples": [{"ts": ts, "values": values}]}
    assert validate_batch(json.loads(json.dumps(batch))).samples[0].values == values


def test_counters_are_sent_raw_without_rate_series() -> None:
    # The service derives rates at query time (rate=1): no second series per counter.
    collector = Collector(["net_io_counters", "disk_io_counters"])
    collector.collect()
    _, second = collector.collect()
    assert second and not any(name.endswith(".rate") for name in second)


def test_read_once_gives_seed_000s_raw_json_list() -> None:
    results = read_once(["virtual_memory", "boot_time", "disk_usage"])
    decoded = json.loads(json.dumps(results))
    assert isinstance(decoded, list) and len(decoded) == 3
    assert decoded[0][0] == psutil.virtual_memory().total  # a named tuple becomes a list
    assert decoded[1] == psutil.boot_time()
    assert "/" in decoded[2]
