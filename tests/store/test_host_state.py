"""``GET /hosts``' state: the state function at its edges, the batch's ``interval`` and
``goodbye`` fields, and the store keeping them (also in a file from before them)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from hostpulse.hoststate import DEFAULT_INTERVAL, host_interval, host_state
from hostpulse.samples import BatchError, validate_batch, wire_form
from hostpulse.series import SeriesStore

SEEN = 1_000_000.0


# --- the state function (a fake now) -------------------------------------------------------


@pytest.mark.parametrize(
    ("silent", "state"),
    [(0.0, "up"), (29.999, "up"), (30.0, "stale"), (99.999, "stale"), (100.0, "down"), (1e6, "down")],
)
def test_state_edges_at_exactly_three_and_ten_intervals(silent: float, state: str) -> None:
    assert host_state(SEEN + silent, SEEN, interval=10.0) == state


def test_goodbye_is_down_at_once() -> None:
    assert host_state(SEEN, SEEN, interval=10.0, goodbye=True) == "down"


def test_without_interval_the_gap_between_the_last_two_batches_counts() -> None:
    assert host_interval(None, SEEN, SEEN - 2.0) == 2.0
    assert host_state(SEEN + 5.999, SEEN, None, SEEN - 2.0) == "up"
    assert host_state(SEEN + 6.0, SEEN, None, SEEN - 2.0) == "stale"
    assert host_state(SEEN + 20.0, SEEN, None, SEEN - 2.0) == "down"


def test_without_interval_or_an_earlier_batch_the_default_counts() -> None:
    assert host_interval(None, SEEN, None) == DEFAULT_INTERVAL == 10.0
    assert host_state(SEEN + 29.9, SEEN) == "up"
    assert host_state(SEEN + 30.0, SEEN) == "stale"
    assert host_state(SEEN + 100.0, SEEN) == "down"


def test_a_said_interval_wins_over_the_gap() -> None:
    assert host_state(SEEN + 30.0, SEEN, interval=60.0, previous_seen=SEEN - 1.0) == "up"


# --- the batch's new fields ---------------------------------------------------------------


def batch(**extra: Any) -> dict[str, Any]:
    obj = wire_form("web-1", "r1", 7, 0, [(SEEN, {"cpu_percent": 1.0})])
    obj.update(extra)
    return obj


def test_an_old_agents_batch_without_the_fields_still_validates() -> None:
    b = validate_batch(batch())
    assert b.interval is None and b.goodbye is False
    assert "interval" not in b.as_json() and "goodbye" not in b.as_json()


def test_interval_and_goodbye_validate_and_round_trip() -> None:
    b = validate_batch(batch(interval=15, goodbye=True))
    assert b.interval == 15.0 and b.goodbye is True
    assert validate_batch(b.as_json()) == b
    assert wire_form("h", "r", 1, 0, [], interval=2.5, goodbye=True)["goodbye"] is True


def test_a_goodbye_may_carry_no_samples_but_another_batch_may_not() -> None:
    assert validate_batch(batch(samples=[], goodbye=True)).samples == ()
    with pytest.raises(BatchError, match="samples is empty"):
        validate_batch(batch(samples=[], goodbye=False))


@pytest.mark.parametrize("interval", ["10", None, True, 0, -1, float("nan"), float("inf"), 1e9, [10]])
def test_bad_interval_is_refused_with_its_seq(interval: object) -> None:
    with pytest.raises(BatchError, match="interval must be a number of seconds") as err:
        validate_batch(batch(interval=interval))
    assert err.value.seq == 7 and err.value.as_json()["seq"] == 7


@pytest.mark.parametrize("goodbye", ["true", 1, 0, None, []])
def test_bad_goodbye_is_refused_with_its_seq(goodbye: object) -> None:
    with pytest.raises(BatchError, match="goodbye must be true or false") as err:
        validate_batch(batch(goodbye=goodbye))
    assert err.value.seq == 7 and err.value.as_json()["error"] == "bad_request"


# --- the store ------------------------------------------------------------------------


def test_store_keeps_interval_goodbye_and_the_previous_batch(store: SeriesStore) -> None:
    store.store_batches([validate_batch(batch(seq=1))], now=SEEN)
    (h,) = store.hosts()
    assert (h.last_seen, h.previous_seen, h.interval, h.goodbye) == (SEEN, None, None, False)
    store.store_batches([validate_batch(batch(seq=2, interval=5))], now=SEEN + 5)
    (h,) = store.hosts()
    assert (h.last_seen, h.previous_seen, h.interval, h.goodbye) == (SEEN + 5, SEEN, 5.0, False)
    store.store_batches([validate_batch(batch(seq=3, interval=5, samples=[], goodbye=True))], now=SEEN + 6)
    (h,) = store.hosts()
    assert (h.last_seen, h.interval, h.goodbye) == (SEEN + 6, 5.0, True)
    assert h.latest == {"cpu_percent": 1.0}
    store.store_batches([validate_batch(batch(seq=4, run="r2", interval=5))], now=SEEN + 60)
    assert store.hosts()[0].goodbye is False  # the agent is back


def test_a_file_from_before_the_columns_gets_them(tmp_path: Path) -> None:
    # SQLite alone: PostgreSQL's tables were made with every column (migration step 2).
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE series_hosts (host TEXT PRIMARY KEY, last_seen REAL NOT NULL) WITHOUT ROWID")
    db.execute("INSERT INTO series_hosts VALUES ('web-1', ?)", (SEEN,))
    db.commit()
    db.close()
    store = SeriesStore(path, retention=float("inf"))
    try:
        (h,) = store.hosts()
        assert (h.host, h.last_seen, h.interval, h.previous_seen, h.goodbye) == ("web-1", SEEN, None, None, False)
        assert host_state(SEEN + 30.0, h.last_seen, h.interval, h.previous_seen, h.goodbye) == "stale"
        store.store_batches([validate_batch(batch(seq=1, interval=2, goodbye=True))], now=SEEN + 1)
        (h,) = store.hosts()
        assert (h.interval, h.previous_seen, h.goodbye) == (2.0, SEEN, True)
    finally:
        store.close()
    SeriesStore(path, retention=float("inf")).close()  # opening it again changes nothing
