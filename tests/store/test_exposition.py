"""``/metrics``: the Prometheus text of the store, read back with prometheus_client's parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from hostpulse.series import SeriesStore, metric_name, prometheus_text
from tests.store.support import batch


def test_metric_names_are_sanitised() -> None:
    assert metric_name("disk_usage./.percent") == "hostpulse_disk_usage_percent"
    assert metric_name("cpu_percent.0") == "hostpulse_cpu_percent_0"
    assert metric_name("a-b:c d") == "hostpulse_a_b_c_d"
    assert metric_name("...") == "hostpulse_unnamed"


def test_prometheus_text_parses_with_prometheus_client(store: SeriesStore) -> None:
    values = {
        "cpu_percent": 12.5,
        "cpu_percent.0": 3.0,
        "disk_usage./.percent": 40.0,
        "disk_usage./boot.percent": 20.0,
        "a.b": 1.0,
        "a_b": 2.0,
        'odd "name" \\ here': 1e-05,
    }
    store.store_batches([batch(1, values=values, dropped=6)], now=1234.5)
    store.store_batches([batch(1, host="db-1", values={"cpu_percent": 1.0})], now=1000.0)
    text = prometheus_text(store)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}

    assert families["hostpulse_cpu_percent"].type == "gauge"
    assert samples[("hostpulse_cpu_percent", (("host", "web-1"),))] == 12.5
    assert samples[("hostpulse_cpu_percent", (("host", "db-1"),))] == 1.0
    assert samples[("hostpulse_cpu_percent_0", (("host", "web-1"),))] == 3.0
    assert samples[("hostpulse_disk_usage_boot_percent", (("host", "web-1"),))] == 20.0
    # Two names sanitising alike are told apart by a label with the original name.
    assert samples[("hostpulse_a_b", (("host", "web-1"), ("series", "a.b")))] == 1.0
    assert samples[("hostpulse_a_b", (("host", "web-1"), ("series", "a_b")))] == 2.0
    assert samples[("hostpulse_odd_name_here", (("host", "web-1"),))] == 1e-05
    assert samples[("hostpulse_host_last_seen_seconds", (("host", "web-1"),))] == 1234.5
    assert families["hostpulse_agent_dropped_samples"].type == "counter"
    assert samples[("hostpulse_agent_dropped_samples_total", (("host", "web-1"),))] == 6
    assert samples[("hostpulse_agent_dropped_samples_total", (("host", "db-1"),))] == 0
    # Each family once, its samples together: a valid exposition.
    type_lines = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")]
    assert len(type_lines) == len(set(type_lines)) == len(families)


def test_label_values_are_escaped(store: SeriesStore) -> None:
    store.store_batches([batch(1, values={'a"b': 1.0, "a\\b": 2.0, "a b": 3.0})])
    text = prometheus_text(store)
    assert 'series="a\\"b"' in text and 'series="a\\\\b"' in text
    got = {
        s.labels["series"]: s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if "series" in s.labels
    }
    assert got == {'a"b': 1.0, "a\\b": 2.0, "a b": 3.0}


def test_empty_store_renders_empty_text(store: SeriesStore) -> None:
    assert prometheus_text(store) == ""
