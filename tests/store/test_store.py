"""The series store on both engines (a real SQLite file, a real PostgreSQL: ``conftest.py``):
exactly-once, a failing batch alone, queries, retention. The first test is about the SQLite
file itself (its journal mode and sync), so it runs on SQLite alone."""

from __future__ import annotations

import math
import sqlite3
import threading
from pathlib import Path

import pytest

from hostpulse.samples import Batch, Sample, validate_batch
from hostpulse.series import SeriesStore
from tests.store.conftest import MakeStore
from tests.store.support import INTEGRITY_ERRORS, batch, rows

# --- storage -----------------------------------------------------------------------------


def test_store_uses_wal_full_sync_and_prefixed_tables(tmp_path: Path) -> None:
    store = SeriesStore(tmp_path / "hostpulse.sqlite3", retention=3600.0)
    db = store._connect()
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    tables = {r[0] for r in rows(store, "SELECT name FROM sqlite_master WHERE type='table'")}
    # sqlite_sequence: SQLite's own, for AUTOINCREMENT (series ids are never reused)
    assert tables and all(t.startswith("series_") for t in tables - {"sqlite_sequence"})
    store.close()


def test_repeated_batch_is_acknowledged_and_stored_once(store: SeriesStore) -> None:
    b = batch(7, n=3)
    assert store.store_batches([b]) == [7]
    assert store.store_batches([b]) == [7]
    assert store.store_batches([b, b]) == [7, 7]
    assert store.batch_keys() == [("web-1", "run1", 7)]
    assert store.sample_count() == 3


def test_duplicate_inside_one_group_is_stored_once(store: SeriesStore) -> None:
    assert store.store_batches([batch(1), batch(2), batch(1)]) == [1, 2, 1]
    assert store.sample_count("web-1") == 2


def test_same_seq_in_another_run_or_host_is_a_different_batch(store: SeriesStore) -> None:
    store.store_batches([batch(1), batch(1, run="run2"), batch(1, host="web-2")])
    assert len(store.batch_keys()) == 3
    assert store.batch_keys("web-2") == [("web-2", "run1", 1)]
    assert store.sample_count() == 3


def test_a_failing_batch_in_a_group_commit_fails_alone(store: SeriesStore) -> None:
    # A bad row (NULL host breaks NOT NULL) in the middle: that batch is rolled back to
    # its savepoint and answered with its error; the others of the transaction commit.
    bad = Batch(None, "run1", 2, (Sample(1.0, {"a": 1.0}),))  # type: ignore[arg-type]
    first, error, third = store.store_batches([batch(1), bad, batch(3)])
    assert (first, third) == (1, 3) and isinstance(error, INTEGRITY_ERRORS)
    assert store.batch_keys() == [("web-1", "run1", 1), ("web-1", "run1", 3)]
    assert store.sample_count() == 2
    assert store.store_batches([batch(1), batch(3)]) == [1, 3]


def test_a_failed_transaction_stores_nothing(store: SeriesStore, monkeypatch: pytest.MonkeyPatch) -> None:
    # The commit itself failing (here: the last batch's write breaks the connection's
    # transaction) leaves nothing of the group behind.
    real = store._store_one

    def failing(db: sqlite3.Connection, b: Batch, *args: object) -> None:
        real(db, b, *args)  # type: ignore[arg-type]
        if b.seq == 3:
            db.execute("ROLLBACK")  # as SQLite does itself on a full disk or an I/O error
            raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(store, "_store_one", failing)
    with pytest.raises(sqlite3.OperationalError):
        store.store_batches([batch(1), batch(2), batch(3)])
    monkeypatch.undo()
    assert store.batch_keys() == []
    assert store.sample_count() == 0
    assert store.store_batches([batch(1), batch(3)]) == [1, 3]


def test_committed_batches_are_visible_to_another_connection(store: SeriesStore) -> None:
    store.store_batches([batch(s) for s in range(5)])
    assert rows(store, "SELECT lo, hi FROM series_acked") == [(0, 4)]


def test_stores_from_many_threads_lose_nothing(store: SeriesStore) -> None:
    def worker(host: str) -> None:
        for seq in range(20):
            store.store_batches([batch(seq, host=host)])

    threads = [threading.Thread(target=worker, args=(f"h{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.batch_keys()) == 80
    assert store.sample_count() == 80


# --- queries -----------------------------------------------------------------------------


def test_hosts_have_last_seen_latest_values_and_drops(store: SeriesStore) -> None:
    store.store_batches([batch(1, ts=100.0, values={"a": 1.0, "b": 2.0}, dropped=2)], now=5000.0)
    store.store_batches([batch(2, ts=200.0, values={"a": 3.0}, dropped=5)], now=5001.0)
    # A late re-send of an older batch neither rewinds the latest value nor the counter.
    store.store_batches([batch(0, ts=50.0, values={"a": -1.0}, dropped=1)], now=5002.0)
    store.store_batches([batch(1, host="db-1", run="other", values={"c": 9.0}, dropped=4)], now=4000.0)
    hosts = {h.host: h for h in store.hosts()}
    assert hosts["web-1"].latest == {"a": 3.0, "b": 2.0}
    assert hosts["web-1"].last_seen == 5002.0
    assert hosts["web-1"].dropped == 5
    assert hosts["db-1"].dropped == 4 and hosts["db-1"].latest == {"c": 9.0}
    assert [h.host for h in store.hosts()] == ["db-1", "web-1"]


def test_drops_add_up_over_runs(store: SeriesStore) -> None:
    store.store_batches([batch(1, run="a", dropped=3), batch(1, run="b", dropped=4)])
    assert store.hosts()[0].dropped == 7


def test_the_newest_batch_of_a_run_says_how_many_were_dropped(store: SeriesStore) -> None:
    # The agent lowers its counter when a batch it dropped proves stored after all.
    store.store_batches([batch(5, dropped=4)])
    store.store_batches([batch(6, dropped=3)])
    assert store.hosts()[0].dropped == 3
    store.store_batches([batch(2, dropped=9)])  # an old batch sent again: no say
    assert store.hosts()[0].dropped == 3


def test_series_raw_is_oldest_first_and_bounded(store: SeriesStore) -> None:
    # Stored out of order: the query orders by time.
    store.store_batches([batch(s, ts=float(t), values={"x": float(t)}) for s, t in enumerate([30, 10, 20, 40])])
    assert store.series("web-1", "x") == [(10.0, 10.0), (20.0, 20.0), (30.0, 30.0), (40.0, 40.0)]
    assert store.series("web-1", "x", since=20, until=30) == [(20.0, 20.0), (30.0, 30.0)]
    assert store.series("web-1", "x", limit=2) == [(10.0, 10.0), (20.0, 20.0)]
    assert store.series("web-1", "nope") == []
    assert store.series("web-2", "x") == []


def test_series_with_step_is_the_mean_per_bucket(store: SeriesStore) -> None:
    points = {0: 1.0, 5: 3.0, 9.9: 5.0, 10: 10.0, 25: 7.0, 29: 9.0}
    store.store_batches([batch(s, ts=float(t), values={"x": v}) for s, (t, v) in enumerate(points.items())])
    assert store.series("web-1", "x", step=10) == [(0.0, 3.0), (10.0, 10.0), (20.0, 8.0)]
    assert store.series("web-1", "x", step=10, since=5, until=26) == [(0.0, 4.0), (10.0, 10.0), (20.0, 7.0)]
    assert store.series("web-1", "x", step=0.5, since=9, until=10) == [(9.5, 5.0), (10.0, 10.0)]
    with pytest.raises(ValueError):
        store.series("web-1", "x", step=0)


# --- retention ---------------------------------------------------------------------------


def test_prune_forgets_old_samples_batches_and_hosts(store: SeriesStore) -> None:
    store.store_batches([batch(1, ts=1000.0, values={"x": 1.0})], now=1000.0)
    store.store_batches([batch(2, ts=5000.0, values={"x": 2.0})], now=5000.0)
    store.store_batches([batch(1, host="gone", ts=1000.0)], now=1000.0)
    assert store.prune(now=5000.0) == 2  # cutoff 1400: the two samples at ts=1000
    assert store.series("web-1", "x") == [(5000.0, 2.0)]
    # A run's stored seqs are kept as ranges, until the run's newest batch is older than the
    # retention: seq 1 is still known (a re-send of it is acknowledged, not stored again).
    assert store.batch_keys() == [("web-1", "run1", 1), ("web-1", "run1", 2)]
    assert [h.host for h in store.hosts()] == ["web-1"]
    assert store.prune(now=5000.0) == 0


def test_infinite_retention_keeps_everything(make_store: MakeStore) -> None:
    s = make_store(retention=math.inf)
    s.store_batches([batch(1, ts=0.0)], now=0.0)
    assert s.prune(now=1e12) == 0 and s.sample_count() == 1
    with pytest.raises(ValueError):
        make_store(retention=0)


def test_data_survives_reopening(make_store: MakeStore) -> None:
    s = make_store(retention=3600)
    s.store_batches([batch(1), batch(2)])
    s.close()
    again = make_store(retention=3600)
    assert again.store_batches([batch(2)]) == [2]
    assert again.sample_count() == 2


def test_validated_batches_store_unchanged(store: SeriesStore) -> None:
    b = validate_batch({"host": "Web-1", "run": "r", "seq": 3, "samples": [{"ts": 5, "values": {"n": 2}}]})
    store.store_batches([b])
    assert store.series("web-1", "n") == [(5.0, 2.0)]


def test_two_nodes_store_each_batch_once(make_store: MakeStore) -> None:
    # Two stores on one location stand for two workers (SQLite) or two nodes (PostgreSQL):
    # an agent re-sending its batches to the other after a failover, both at once, gets every
    # batch acknowledged by both and stored once (the engine's write lock makes the check and
    # the insert of a (host, run, seq) one step).
    a, b = make_store(retention=3600.0), make_store(retention=3600.0)
    batches = [batch(seq, ts=1000.0 + seq) for seq in range(60)]
    answers: dict[str, list[int | Exception]] = {}

    def send(name: str, store: SeriesStore) -> None:
        answers[name] = [r for i in range(0, 60, 6) for r in store.store_batches(batches[i : i + 6])]

    threads = [threading.Thread(target=send, args=item) for item in (("a", a), ("b", b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == {"a": list(range(60)), "b": list(range(60))}
    assert a.batch_keys() == b.batch_keys() == [("web-1", "run1", seq) for seq in range(60)]
    assert a.sample_count() == 60 and a.stored_batches("web-1") == 60
    assert b.series("web-1", "cpu_percent") == [(1000.0 + seq, float(seq)) for seq in range(60)]
