"""The compact store: tables that decode to exactly what went in, compaction into tiers that
answer as raw samples do, late samples, retention per tier, and an older file converted."""

from __future__ import annotations

import math
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hostpulse.samples import Batch, Sample
from hostpulse.series import OldStoreError, SeriesStore, codec
from hostpulse.testing import write_test_config
from tests.store.conftest import MakeStore
from tests.store.support import rows

DAY = 86400.0
T0 = 1_764_000_000.0  # an hour's start (a multiple of 3600)


def agent_batches(
    host: str, hours: float, interval: float = 10.0, seed: int = 1, first_seq: int = 0, start: float = T0
) -> list[Batch]:
    """One sample a batch as the agent sends them: a percentage to one decimal that wanders,
    a byte counter that grows, a constant, a load average in 1/2048ths; times with jitter."""
    rng = np.random.default_rng(seed)
    n = int(hours * 3600 / interval)
    cpu = np.clip(np.round(30 + np.cumsum(rng.normal(0, 2, n)), 1), 0, 100)
    sent = 1e9 + np.cumsum(rng.integers(0, 50_000, n)).astype(float)
    load = np.round(np.abs(1 + np.cumsum(rng.normal(0, 0.02, n))) * 2048) / 2048
    jitter = rng.uniform(0.001, 0.09, n)  # late, never early: each sample stays in its hour
    return [
        Batch(
            host,
            "run1",
            first_seq + i,
            (
                Sample(
                    round(start + i * interval + jitter[i], 3),
                    {
                        "cpu_percent": float(cpu[i]),
                        "net_io_counters.bytes_sent": float(sent[i]),
                        "virtual_memory.total": 8e9,
                        "getloadavg.0": float(load[i]),
                    },
                ),
            ),
        )
        for i in range(n)
    ]


@pytest.fixture
def tiered(make_store: MakeStore) -> SeriesStore:
    return make_store(retention=math.inf)


# --- tables -----------------------------------------------------------------------------------

finite = st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(
    times=st.lists(st.integers(0, 2**50), min_size=1, max_size=50),
    data=st.data(),
)
def test_a_table_decodes_to_exactly_its_values(times: list[int], data: st.DataObject) -> None:
    n = len(times)
    columns = {}
    for key in range(data.draw(st.integers(0, 4))):
        mask = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
        kind = data.draw(st.sampled_from(["any", "decimal", "constant"]))
        count = int(mask.sum())
        if kind == "any":
            values = data.draw(st.lists(finite, min_size=count, max_size=count))
        elif kind == "decimal":
            values = [round(v, 1) for v in data.draw(st.lists(st.floats(-1e6, 1e6), min_size=count, max_size=count))]
        else:
            values = [data.draw(finite)] * count
        columns[key * 7 + 3] = codec.Column(np.array(values, dtype=np.float64), mask)
    table = codec.decode(codec.encode(np.array(times, np.int64), columns))
    assert table.times_ms.tolist() == times
    for key, column in columns.items():
        got = table.column(key)
        assert got.values.tolist() == column.values.tolist()  # == : -0.0 may come back as 0.0
        expected = column.mask if not column.mask.all() else None
        assert (got.mask is None) == (expected is None)
        if expected is not None:
            assert got.mask.tolist() == expected.tolist()


def test_decimals_and_binary_fractions_are_found() -> None:
    assert codec.scale_of(np.array([12.5, 3.0, 99.9])) == 1
    assert codec.scale_of(np.array([1e10, 25276502016.0])) == 0
    assert codec.scale_of(np.array([0.22802734375])) is not None  # 467/2048, a load average
    assert codec.scale_of(np.array([1 / 3])) is None
    assert codec.scale_of(np.array([2.0**60])) is None  # not an exact integer as float


# --- compaction and tiers ---------------------------------------------------------------------


def test_tiers_answer_as_raw_samples_do_before_and_after_compaction(tiered: SeriesStore) -> None:
    tiered.store_batches(agent_batches("web-1", hours=5), now=T0 + 5 * 3600)
    asked = [("cpu_percent", step) for step in (60, 300, 1800, 3600, 7200)]
    before = {q: tiered.series("web-1", q[0], step=q[1]) for q in asked}
    raw_before = tiered.series("web-1", "cpu_percent")
    moved = tiered.compact(now=T0 + 5 * 3600 + 400)  # the first five hours are closed
    assert moved == 5 * 360 and rows(tiered, "SELECT count(*) FROM series_head") == [(0,)]
    assert rows(tiered, "SELECT tier, count(*) FROM series_chunks GROUP BY tier ORDER BY tier") == [
        (0, 5),
        (1, 1),
        (2, 1),
    ]
    assert tiered.series("web-1", "cpu_percent") == raw_before
    for (name, step), points in before.items():
        after = tiered.series("web-1", name, step=step)
        assert [t for t, _ in after] == [t for t, _ in points]
        assert [v for _, v in after] == pytest.approx([v for _, v in points], rel=1e-12)
        # the mean of each step, as the raw samples give it
        by_bucket: dict[float, list[float]] = {}
        for ts, value in raw_before:
            by_bucket.setdefault(math.floor(ts / step) * step, []).append(value)
        assert [v for _, v in after] == pytest.approx([sum(v) / len(v) for v in by_bucket.values()], rel=1e-12)


def test_a_query_right_after_the_ack_sees_the_batch_in_every_tier(tiered: SeriesStore) -> None:
    tiered.store_batches(agent_batches("web-1", hours=2), now=T0 + 7200)
    tiered.compact(now=T0 + 3 * 3600)
    late = Batch("web-1", "run2", 0, (Sample(T0 + 7300.0, {"cpu_percent": 99.0}),))
    assert tiered.store_batches([late]) == [0]
    for step in (10, 300, 3600):
        (last,) = tiered.series("web-1", "cpu_percent", since=T0 + 7200, step=step)
        assert last == (math.floor((T0 + 7300) / step) * step, 99.0)


def test_samples_of_a_compacted_hour_arriving_late_are_merged(tiered: SeriesStore) -> None:
    batches = agent_batches("web-1", hours=1)
    tiered.store_batches(batches[::2], now=T0 + 3600)
    tiered.compact(now=T0 + 2 * 3600)
    mean_half = tiered.series("web-1", "cpu_percent", step=3600)
    tiered.store_batches(batches[1::2], now=T0 + 2 * 3600)  # an agent's spool, sent late
    tiered.compact(now=T0 + 2 * 3600)
    assert rows(tiered, "SELECT tier, count(*) FROM series_chunks GROUP BY tier ORDER BY tier") == [
        (0, 1),
        (1, 1),
        (2, 1),
    ]
    points = tiered.series("web-1", "cpu_percent")
    assert len(points) == 360 and [t for t, _ in points] == sorted(t for t, _ in points)
    values = [b.samples[0].values["cpu_percent"] for b in batches]
    ((_, mean),) = tiered.series("web-1", "cpu_percent", step=3600)
    assert mean == pytest.approx(sum(values) / len(values)) and (_, mean) != mean_half[0]
    # re-sent after compaction: acknowledged, stored once
    assert tiered.store_batches(batches[:3]) == [0, 1, 2]
    assert tiered.sample_count("web-1") == 360 * 4


def test_counter_rates_are_derived_resets_included(tiered: SeriesStore) -> None:
    # 100 bytes a second, reset to 0 at 30 min (an agent's host rebooted).
    values = [float(100 * 10 * i) if i < 180 else float(100 * 10 * (i - 180)) for i in range(360)]
    batches = [
        Batch("web-1", "r", i, (Sample(T0 + 10 * i, {"net_io_counters.bytes_recv": v}),)) for i, v in enumerate(values)
    ]
    tiered.store_batches(batches)
    raw = tiered.series("web-1", "net_io_counters.bytes_recv", rate=True)
    assert len(raw) == 359 and all(v == pytest.approx(100.0) for _, v in raw if _ != T0 + 1800)
    assert dict(raw)[T0 + 1800] == 0.0  # the reset: the new value (0) over its interval
    for compacted in (False, True):
        if compacted:
            tiered.compact(now=T0 + 7200)
        ((_, hourly),) = tiered.series("web-1", "net_io_counters.bytes_recv", step=3600, rate=True)
        assert hourly == pytest.approx(100.0 * 358 / 359)  # the reset's interval counted as 0


def recent_hour(days_ago: float) -> float:
    """An hour's start ``days_ago`` before now (a tier is picked by the real clock)."""
    return math.floor((time.time() - days_ago * DAY) / 3600) * 3600


def test_each_tier_keeps_its_own_retention(make_store: MakeStore) -> None:
    t0 = recent_hour(0.5)
    store = make_store(retention=DAY, retention_medium=7 * DAY, retention_hourly=30 * DAY)
    store.store_batches(agent_batches("web-1", hours=2, start=t0), now=t0 + 7200)
    store.compact(now=t0 + 3 * 3600)
    assert store.prune(now=t0 + 3 * DAY) == 2 * 360 * 4  # raw samples deleted
    assert store.series("web-1", "cpu_percent") == []
    assert len(store.series("web-1", "cpu_percent", since=t0, step=300)) == 24
    assert store.prune(now=t0 + 10 * DAY) == 0
    assert store.series("web-1", "cpu_percent", since=t0, step=300) == []
    assert len(store.series("web-1", "cpu_percent", since=t0, step=3600)) == 2
    store.prune(now=t0 + 31 * DAY)
    assert store.series("web-1", "cpu_percent", step=3600) == [] and store.hosts() == []


def test_a_range_older_than_a_tier_keeps_reads_a_coarser_tier(make_store: MakeStore) -> None:
    t0 = recent_hour(20)  # past the 5-minute tier's 7 days, within the hourly tier's 30
    store = make_store(retention=DAY, retention_medium=7 * DAY, retention_hourly=30 * DAY)
    store.store_batches(agent_batches("web-1", hours=2, start=t0), now=t0 + 7200)
    store.compact(now=t0 + 3 * 3600)  # not pruned: the 5-minute rows are still there
    assert len(store.series("web-1", "cpu_percent", step=300)) == 24
    hourly = store.series("web-1", "cpu_percent", since=t0, step=300)
    assert hourly == store.series("web-1", "cpu_percent", since=t0, step=3600) and len(hourly) == 2


# The bytes are the codec's, the same on both engines: measured once, on the embedded one.
@pytest.mark.parametrize("engine", ["sqlite"])
def test_the_store_is_compact_for_agent_data(tiered: SeriesStore) -> None:
    batches = agent_batches("web-1", hours=24)
    for i in range(0, len(batches), 500):
        tiered.store_batches(batches[i : i + 500])
    tiered.compact(everything=True)
    stored = sum(tiered.tier_bytes().values())
    samples = tiered.sample_count()
    assert samples == len(batches) * 4
    assert stored / samples < 2.0, tiered.tier_bytes()  # bytes per sample, every tier


def test_deleting_a_host_forgets_its_series_and_frees_its_names(make_store: MakeStore) -> None:
    store = make_store(retention=math.inf, max_series_per_host=4)
    store.store_batches(agent_batches("web-1", hours=1) + agent_batches("web-2", hours=1))
    store.compact(everything=True)
    assert store.delete_host("web-1") and not store.delete_host("web-1")
    assert [h.host for h in store.hosts()] == ["web-2"] and store.sample_count("web-1") == 0
    assert store.series("web-1", "cpu_percent") == [] and store.series_total() == 4
    # a new host of that name starts afresh (its ids are new, its run's seqs free again)
    again = Batch("web-1", "run1", 0, (Sample(T0, {"pids": 1.0}),))
    assert store.store_batches([again]) == [0]
    assert store.series("web-1", "pids") == [(T0, 1.0)] and store.series("web-1", "cpu_percent") == []


# --- an older file (SQLite alone: PostgreSQL never held the format before the tiers) --------------

OLD_SCHEMA = """
CREATE TABLE series_batches (host TEXT NOT NULL, run TEXT NOT NULL, seq INTEGER NOT NULL,
    received REAL NOT NULL, samples INTEGER NOT NULL, PRIMARY KEY (host, run, seq)) WITHOUT ROWID;
CREATE TABLE series_samples (host TEXT NOT NULL, name TEXT NOT NULL, ts REAL NOT NULL, value REAL NOT NULL);
CREATE INDEX series_samples_host_name_ts ON series_samples (host, name, ts);
CREATE TABLE series_latest (host TEXT NOT NULL, name TEXT NOT NULL, ts REAL NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (host, name)) WITHOUT ROWID;
CREATE TABLE series_hosts (host TEXT PRIMARY KEY, last_seen REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE series_runs (host TEXT NOT NULL, run TEXT NOT NULL, dropped INTEGER NOT NULL,
    seq INTEGER NOT NULL, PRIMARY KEY (host, run)) WITHOUT ROWID;
"""


def old_store(path: Path, batches: int) -> None:
    """A file as the row-per-value store wrote it: one sample a batch, two series."""
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SCHEMA)
        for seq in range(batches):
            ts = T0 + 10 * seq
            db.execute("INSERT INTO series_batches VALUES ('old', 'r', ?, ?, 1)", (seq, ts))
            db.executemany(
                "INSERT INTO series_samples VALUES ('old', ?, ?, ?)",
                [("cpu_percent", ts, seq % 100), ("pids", ts, 7.0)],
            )
        last = T0 + 10 * (batches - 1)
        db.executemany(
            "INSERT INTO series_latest VALUES ('old', ?, ?, ?)",
            [("cpu_percent", last, (batches - 1) % 100), ("pids", last, 7.0)],
        )
        db.execute("INSERT INTO series_hosts VALUES ('old', ?)", (last,))
        db.execute("INSERT INTO series_runs VALUES ('old', 'r', 0, ?)", (batches - 1,))
    path.chmod(0o600)


def test_an_older_file_is_converted_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    old_store(path, 500)
    store = SeriesStore(path, retention=math.inf)
    assert store.sample_count("old") == 1000 and store.stored_batches("old") == 0
    assert store.batch_keys("old") == [("old", "r", seq) for seq in range(500)]
    assert store.store_batches([Batch("old", "r", 7, (Sample(T0, {"pids": 1.0}),))]) == [7]  # already stored
    assert store.series("old", "cpu_percent")[:2] == [(T0, 0.0), (T0 + 10, 1.0)]
    assert store.hosts()[0].latest == {"cpu_percent": 99.0, "pids": 7.0}
    tables = {r[0] for r in rows(path, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert not tables & {"series_samples", "series_batches", "series_latest"}
    store.compact(everything=True)
    assert len(store.series("old", "pids")) == 500


def test_a_large_older_file_is_refused_with_the_command_that_converts_it(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    instance.mkdir()
    write_test_config(instance, {"admin": "a" * 32})
    path = instance / "hostpulse.sqlite3"
    old_store(path, 300)
    with pytest.raises(OldStoreError, match="hostpulse migrate"):
        SeriesStore(path, retention=math.inf, migrate_limit=100)
    assert rows(path, "SELECT count(*) FROM series_samples") == [(600,)]  # untouched
    done = subprocess.run(
        [sys.executable, "-m", "hostpulse", "--instance", str(instance), "migrate"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    store = SeriesStore(path, retention=math.inf, migrate_limit=100)
    assert store.sample_count("old") == 600


def test_the_cli_lists_and_deletes_hosts(tmp_path: Path, engine: str, where: Path | str) -> None:
    instance = tmp_path / "instance"
    instance.mkdir()
    write_test_config(instance, {"admin": "a" * 32})
    url = "" if engine == "sqlite" else str(where)
    store = SeriesStore(where if url else instance / "hostpulse.sqlite3", retention=math.inf)
    store.store_batches(agent_batches("web-1", hours=0.5) + agent_batches("db-1", hours=0.25))
    store.close()

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "hostpulse", "--instance", str(instance), *args]
        env = {**os.environ, "HOSTPULSE_STORE_URL": url}
        return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)

    listed = cli("hosts")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["db-1", "web-1"]
    assert "4 series" in lines[1] and f"{180 * 4} samples" in lines[1]
    deleted = cli("host-delete", "web-1")
    assert deleted.returncode == 0 and "deleted host 'web-1'" in deleted.stdout
    assert [line.split()[0] for line in cli("hosts").stdout.splitlines()] == ["db-1"]
    missing = cli("host-delete", "web-1")
    assert missing.returncode == 1 and "no host 'web-1'" in missing.stderr


def test_two_values_of_a_series_at_one_time_are_both_kept(tiered: SeriesStore) -> None:
    # Two batches (two runs of an agent, say) with a sample at the same time: both kept,
    # before and after compaction, in the order they came.
    first = Batch("web-1", "a", 0, (Sample(T0 + 5, {"x": 1.0, "y": 3.0}),))
    second = Batch("web-1", "b", 0, (Sample(T0 + 5, {"x": 2.0}), Sample(T0 + 6, {"x": 4.0})))
    tiered.store_batches([first, second])
    before = tiered.series("web-1", "x")
    tiered.compact(everything=True)
    assert tiered.series("web-1", "x") == before == [(T0 + 5, 1.0), (T0 + 5, 2.0), (T0 + 6, 4.0)]
    assert tiered.series("web-1", "y") == [(T0 + 5, 3.0)]
