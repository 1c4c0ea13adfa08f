"""``/metrics``: the Prometheus text of the store, read back with prometheus_client's parser
and checked by ``promtool check metrics`` (Debian's ``prometheus`` package, installed by
``.ci/run``)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hostpulse.series import SeriesStore, prometheus_text
from hostpulse.series.naming import describe
from tests.store.support import batch

AGENT_VALUES = {
    "cpu_percent": 12.5,
    "cpu_percent.0": 3.0,
    "cpu_percent.1": 4.5,
    "virtual_memory.total": 8e9,
    "virtual_memory.percent": 61.2,
    "swap_memory.sin": 4096.0,
    "disk_usage./.percent": 40.0,
    "disk_usage./boot.percent": 20.0,
    "disk_usage./boot.free": 1e9,
    "disk_io_counters.read_bytes": 123456.0,
    "disk_io_counters.read_time": 2500.0,  # milliseconds, as psutil gives it
    "disk_io_counters.sda.write_bytes": 42.0,
    "net_io_counters.bytes_recv": 9e6,
    "net_io_counters.eth0.bytes_sent": 7e6,
    "net_io_counters.bytes_recv.rate": 100.0,  # an old agent's rate series
    "getloadavg.0": 0.5,
    "boot_time": 1.7e9,
    "pids": 120.0,
    "cpu_times.user": 1000.5,
}


def test_psutil_names_read_as_node_exporter_metrics() -> None:
    assert describe("disk_usage./.percent").metric == "hostpulse_filesystem_used_percent"
    assert describe("disk_usage./.percent").labels == (("mountpoint", "/"),)
    assert describe("disk_usage./mnt/a.b.free").labels == (("mountpoint", "/mnt/a.b"),)  # dots in a mount point
    assert describe("cpu_percent.0").labels == (("cpu", "0"),)
    counter = describe("net_io_counters.eth0.bytes_sent")
    assert (counter.metric, counter.labels, counter.counter) == (
        "hostpulse_network_transmit_bytes_total",
        (("interface", "eth0"),),
        True,
    )
    assert describe("disk_io_counters.read_time").scale == 0.001  # to seconds
    assert not describe("net_io_counters.bytes_recv.rate").counter
    assert describe("jobs.total").metric == "hostpulse_jobs_total_value"  # only counters end in _total
    assert describe("a-b:c d").metric == "hostpulse_a_b_c_d"
    assert describe("...").metric == "hostpulse_unnamed"


def test_prometheus_text_parses_with_prometheus_client(store: SeriesStore) -> None:
    values = {**AGENT_VALUES, "a.b": 1.0, "a_b": 2.0, 'odd "name" \\ here': 1e-05}
    store.store_batches([batch(1, values=values, dropped=6)], now=1234.5)
    store.store_batches([batch(1, host="db-1", values={"cpu_percent": 1.0})], now=1000.0)
    text = prometheus_text(store)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    web = (("host", "web-1"),)

    assert families["hostpulse_cpu_percent"].type == "gauge"
    assert samples[("hostpulse_cpu_percent", web)] == 12.5
    assert samples[("hostpulse_cpu_percent", (("host", "db-1"),))] == 1.0
    assert samples[("hostpulse_cpu_core_percent", (("cpu", "1"), ("host", "web-1")))] == 4.5
    assert samples[("hostpulse_filesystem_used_percent", (("host", "web-1"), ("mountpoint", "/boot")))] == 20.0
    assert families["hostpulse_network_receive_bytes"].type == "counter"
    assert samples[("hostpulse_network_receive_bytes_total", web)] == 9e6
    assert samples[("hostpulse_network_transmit_bytes_total", (("host", "web-1"), ("interface", "eth0")))] == 7e6
    assert samples[("hostpulse_disk_read_time_seconds_total", web)] == 2.5
    assert samples[("hostpulse_load1", web)] == 0.5
    # Two names sanitising alike are told apart by a label with the original name, those alone.
    assert samples[("hostpulse_a_b", (("host", "web-1"), ("series", "a.b")))] == 1.0
    assert samples[("hostpulse_a_b", (("host", "web-1"), ("series", "a_b")))] == 2.0
    assert samples[("hostpulse_odd_name_here", web)] == 1e-05
    assert not any("series" in dict(labels) for name, labels in samples if name != "hostpulse_a_b")
    assert samples[("hostpulse_host_last_seen_seconds", web)] == 1234.5
    assert families["hostpulse_agent_dropped_samples"].type == "counter"
    assert samples[("hostpulse_agent_dropped_samples_total", web)] == 6
    assert samples[("hostpulse_agent_dropped_samples_total", (("host", "db-1"),))] == 0
    assert samples[("hostpulse_store_bytes", (("tier", "head"),))] > 0
    # Each family once, its samples together: a valid exposition.
    type_lines = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")]
    assert len(type_lines) == len(set(type_lines)) == len(families)


def test_promtool_finds_nothing_to_lint(store: SeriesStore) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:  # .ci/run installs it; say so loudly elsewhere
        pytest.fail("promtool not found: install Debian's prometheus package (.ci/run does)")
    store.store_batches([batch(1, values=AGENT_VALUES)])
    store.store_batches([batch(1, host="db-1", values={"cpu_percent": 1.0})])
    store.compact(everything=True)
    text = prometheus_text(store)
    checked = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert 'hostpulse_store_bytes{tier="raw"}' in text


def test_label_values_are_escaped(store: SeriesStore) -> None:
    store.store_batches([batch(1, values={'disk_usage./a"b.percent': 1.0, "disk_usage./a\\b.percent": 2.0})])
    text = prometheus_text(store)
    assert 'mountpoint="/a\\"b"' in text and 'mountpoint="/a\\\\b"' in text
    got = {
        s.labels["mountpoint"]: s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if "mountpoint" in s.labels
    }
    assert got == {'/a"b': 1.0, "/a\\b": 2.0}


def test_empty_store_renders_empty_text(store: SeriesStore) -> None:
    assert prometheus_text(store) == ""
