"""The on-disk spool: order, acks, the size bound and its drop counter, persistence, and
crash safety under a real SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from agent.spool import Spool, SpoolError
from hostpulse.samples import valid_run, validate_batch
from tests.support import ROOT

SAMPLE = (1764000000.0, {"cpu_percent": 12.5, "virtual_memory.percent": 61.0})


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    s = Spool(tmp_path / "spool", max_bytes=1024 * 1024)
    yield s
    s.close()


def reopen(s: Spool) -> Spool:
    s.close()
    return Spool(s.path, s.max_bytes)


def test_append_writes_a_valid_batch_file_with_a_new_run(spool: Spool) -> None:
    entry = spool.append("web-1", [SAMPLE, SAMPLE])
    assert entry is not None and entry.seq == 0 and entry.samples == 2
    assert valid_run(spool.run)
    body = json.loads(spool.checkout(entry))
    batch = validate_batch(body)
    assert body == batch.as_json()  # one wire form for the spool and the service
    assert batch.key == ("web-1", spool.run, 0)
    assert batch.samples[0].values == SAMPLE[1]
    assert entry.size == entry.path.stat().st_size
    assert spool.size == entry.size and len(spool) == 1


def test_pending_is_oldest_first_and_ack_forgets(spool: Spool) -> None:
    seqs = [spool.append("h", [SAMPLE]).seq for _ in range(5)]
    assert seqs == [0, 1, 2, 3, 4]
    assert [e.seq for e in spool.pending()] == seqs
    assert [e.seq for e in spool.pending(after=1, limit=2)] == [2, 3]
    assert spool.ack(spool.run, 2) is True
    assert spool.ack(spool.run, 2) is False  # repeated ack
    assert spool.ack("another-run", 3) is False  # not ours
    assert [e.seq for e in spool.pending()] == [0, 1, 3, 4]
    assert not (spool.path / f"{2:020d}.batch").exists()


def test_state_survives_reopening_and_seq_is_never_reused(spool: Spool) -> None:
    for _ in range(3):
        spool.append("h", [SAMPLE])
    run = spool.run
    for entry in spool.pending():
        spool.ack(run, entry.seq)
    again = reopen(spool)
    try:
        assert again.run == run
        assert len(again) == 0
        assert again.append("h", [SAMPLE]).seq == 3
    finally:
        again.close()


def test_unacknowledged_batches_are_there_after_reopening(spool: Spool) -> None:
    spool.append("h", [SAMPLE])
    spool.append("h", [SAMPLE])
    spool.ack(spool.run, 0)
    again = reopen(spool)
    try:
        assert [e.seq for e in again.pending()] == [1]
        assert json.loads(again.checkout(again.pending()[0]))["seq"] == 1
    finally:
        again.close()


def test_the_bound_drops_oldest_batches_and_counts_their_samples(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", max_bytes=64 * 1024)
    big = [(float(i), {f"series.{n}": float(n) for n in range(100)}) for i in range(3)]
    appended = [spool.append("h", big) for _ in range(30)]
    assert all(e is not None for e in appended)
    assert spool.size <= 64 * 1024
    kept = spool.pending()
    assert 0 < len(kept) < 30 and kept[-1].seq == 29
    assert [e.seq for e in kept] == list(range(30 - len(kept), 30))  # the oldest went
    assert spool.dropped == (30 - len(kept)) * 3
    files = sorted(p.name for p in spool.path.glob("*.batch"))
    assert len(files) == len(kept) and sum((spool.path / f).stat().st_size for f in files) <= 64 * 1024
    # The newest batch carries the counter, and it persists.
    assert json.loads(spool.checkout(kept[-1]))["dropped"] == spool.dropped
    dropped = spool.dropped
    spool.close()
    again = Spool(tmp_path / "spool", max_bytes=64 * 1024)
    assert again.dropped == dropped
    again.close()


def test_exactly_at_the_bound_nothing_is_dropped(tmp_path: Path) -> None:
    probe = Spool(tmp_path / "probe", max_bytes=1 << 20)
    one = probe.append("h", [SAMPLE]).size
    probe.close()
    spool = Spool(tmp_path / "spool", max_bytes=one * 3)
    for _ in range(3):
        spool.append("h", [SAMPLE])
    assert (len(spool), spool.dropped, spool.size) == (3, 0, one * 3)
    spool.append("h", [SAMPLE])  # a fourth does not fit: the oldest goes
    assert [e.seq for e in spool.pending()] == [1, 2, 3] and spool.dropped == 1
    spool.close()


def test_a_batch_larger_than_the_spool_is_dropped_and_counted(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", max_bytes=65536)
    kept = spool.append("h", [SAMPLE])
    huge = [(1.0, {f"s{n}": 1.0 for n in range(10000)})]
    assert spool.append("h", huge) is None
    assert spool.dropped == 1
    assert [e.seq for e in spool.pending()] == [kept.seq]  # nothing else was evicted for it
    assert spool.append("h", [SAMPLE]).seq == 2  # its seq is not reused
    spool.close()


def test_discard_counts_refused_samples(spool: Spool) -> None:
    spool.append("h", [SAMPLE, SAMPLE, SAMPLE])
    entry = spool.discard(0)
    assert entry is not None and entry.samples == 3
    assert spool.dropped == 3 and len(spool) == 0
    assert spool.discard(0) is None
    assert reopen(spool).dropped == 3


def test_one_agent_per_spool(spool: Spool) -> None:
    with pytest.raises(SpoolError, match="in use by another agent"):
        Spool(spool.path, spool.max_bytes)


def test_corrupt_state_starts_a_new_run_and_keeps_the_batches(spool: Spool) -> None:
    for _ in range(3):
        spool.append("h", [SAMPLE])
    old_run = spool.run
    spool.close()
    (spool.path / "state.json").write_text("{not json")
    (spool.path / f"{7:020d}.batch.tmp").write_text("half a wri")
    (spool.path / f"{9:020d}.batch").write_text("[garbage")
    again = Spool(spool.path, spool.max_bytes)
    try:
        assert again.run != old_run
        assert [e.seq for e in again.pending()] == [0, 1, 2]
        assert all(e.run == old_run for e in again.pending())  # each batch keeps its own run
        assert again.append("h", [SAMPLE]).seq == 3  # past every file present
        names = {p.name for p in again.path.iterdir()}
        assert f"{7:020d}.batch.tmp" not in names and f"{9:020d}.batch" not in names
    finally:
        again.close()


CHILD = r"""
import sys
from pathlib import Path
from agent.spool import Spool
spool = Spool(Path(sys.argv[1]), max_bytes=10 * 1024 * 1024)
print("run", spool.run, flush=True)
values = {f"series.{n}": float(n) for n in range(50)}
while True:
    entry = spool.append("web-1", [(1.0, values)])
    print("appended", entry.seq, flush=True)
    if entry.seq % 3 == 0:
        spool.ack(spool.run, entry.seq)
        print("acked", entry.seq, flush=True)
"""


def test_sigkill_while_appending_loses_no_spooled_batch(tmp_path: Path) -> None:
    path = tmp_path / "spool"
    runs, appended, acked = [], [], []
    for _ in range(2):  # kill, restart, kill again: the second life continues the same run
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        runs.append(proc.stdout.readline().split()[1])
        lines = 0
        for line in proc.stdout:
            word, seq = line.split()
            (appended if word == "appended" else acked).append(int(seq))
            lines += 1
            if lines == 40:
                os.kill(proc.pid, signal.SIGKILL)
                break
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
    assert runs[0] == runs[1]
    assert len(appended) == len(set(appended)), "a seq was used twice"
    spool = Spool(path, 10 * 1024 * 1024)
    try:
        waiting = {e.seq: e for e in spool.pending()}
        for seq in appended:
            if seq in acked:
                assert seq not in waiting
            else:
                assert seq in waiting, f"batch {seq} was reported on disk but is gone"
                assert validate_batch(json.loads(spool.checkout(waiting[seq]))).seq == seq
        assert spool.next_seq > max(appended)
        assert not list(path.glob("*.tmp"))
    finally:
        spool.close()


def test_batches_awaiting_an_ack_are_dropped_last(tmp_path: Path) -> None:
    probe = Spool(tmp_path / "probe", max_bytes=1 << 20)
    one = probe.append("h", [SAMPLE]).size
    probe.close()
    spool = Spool(tmp_path / "spool", max_bytes=one * 3)
    first, second, third = (spool.append("h", [SAMPLE]) for _ in range(3))
    assert spool.checkout(first) is not None  # sent, ack awaited
    spool.append("h", [SAMPLE])
    assert [e.seq for e in spool.pending()] == [0, 2, 3]  # the unsent 1 went, not the sent 0
    spool.release()  # the connection ended: 0 is an ordinary old batch again
    spool.append("h", [SAMPLE])
    assert [e.seq for e in spool.pending()] == [2, 3, 4]
    assert spool.dropped == 2
    spool.close()


def test_a_dropped_batch_acknowledged_later_is_not_counted_as_lost(tmp_path: Path) -> None:
    probe = Spool(tmp_path / "probe", max_bytes=1 << 20)
    one = probe.append("h", [SAMPLE]).size
    probe.close()
    spool = Spool(tmp_path / "spool", max_bytes=one * 2)
    a, b = spool.append("h", [SAMPLE]), spool.append("h", [SAMPLE])
    spool.checkout(a), spool.checkout(b)
    spool.append("h", [SAMPLE])  # every batch is in flight: the oldest sent one goes
    assert spool.dropped == 1 and [e.seq for e in spool.pending()] == [1, 2]
    assert spool.ack(spool.run, 0) is False  # ... but its ack arrives: stored after all
    assert spool.dropped == 0
    assert spool.ack(spool.run, 1) is True
    assert json.loads(spool.checkout(spool.append("h", [SAMPLE])))["dropped"] == 0  # later batches say so
    assert reopen(spool).dropped == 0
