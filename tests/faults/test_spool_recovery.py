"""Issue 11, item 14 (the agent's spool): what a damaged spool did, and what it does now.

- A batch file whose body's ``seq`` differs from its name was kept under the name's seq; the
  service acknowledged the body's seq, so the file was never forgotten and every flush waited
  for it (and an ack could forget another batch). It is now removed as corrupt.
- ``state.json`` with a negative ``next_seq`` was taken as is: the new batches got negative
  seqs, which the sender (``pending(after=-1)``) never sends. A state out of range (negative,
  past the store's integers, not a run id the service accepts) now starts a new run, as an
  unreadable one does.
- Batches removed as corrupt were not counted in ``dropped``: now their samples are (one, when
  the file is too damaged to tell), and later batches carry the count to the service.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.spool import Spool
from hostpulse.samples import validate_batch

SAMPLE = (1764000000.0, {"cpu_percent": 12.5})


def batch_file(spool_dir: Path, seq: int) -> Path:
    return spool_dir / f"{seq:020d}.batch"


def drain(spool: Spool) -> list[int]:
    """What the sender and the service do: send every pending batch, which the service
    validates (its rules: a refused batch would be dropped) and acknowledges by its body's seq."""
    sent = []
    for entry in spool.pending():
        body = json.loads(spool.checkout(entry))
        batch = validate_batch(body)
        sent.append(batch.seq)
        spool.ack(batch.run, batch.seq)
    return sent


def three_batches(tmp_path: Path) -> tuple[Path, str]:
    spool = Spool(tmp_path / "spool", 1024 * 1024)
    for samples in (1, 3, 2):
        spool.append("web-1", [SAMPLE] * samples)
    run = spool.run
    spool.close()
    return tmp_path / "spool", run


def test_a_batch_whose_seq_differs_from_its_name_is_removed_and_counted(tmp_path: Path) -> None:
    path, run = three_batches(tmp_path)
    body = json.loads(batch_file(path, 1).read_bytes())
    body["seq"] = 7
    batch_file(path, 1).write_text(json.dumps(body))
    spool = Spool(path, 1024 * 1024)
    try:
        assert [e.seq for e in spool.pending()] == [0, 2]
        assert not batch_file(path, 1).exists()
        assert spool.dropped == 3  # its three samples
        assert drain(spool) == [0, 2]
        assert len(spool) == 0  # nothing left for a flush to wait on
        entry = spool.append("web-1", [SAMPLE])
        assert json.loads(spool.checkout(entry))["dropped"] == 3  # the service hears of them
    finally:
        spool.close()


def test_an_ack_for_a_mislabelled_body_cannot_forget_another_batch(tmp_path: Path) -> None:
    path, run = three_batches(tmp_path)
    body = json.loads(batch_file(path, 0).read_bytes())
    body["seq"] = 2  # file 0 claims to be batch 2
    batch_file(path, 0).write_text(json.dumps(body))
    spool = Spool(path, 1024 * 1024)
    try:
        assert drain(spool) == [1, 2]
        assert len(spool) == 0 and spool.dropped == 1
    finally:
        spool.close()


@pytest.mark.parametrize(
    "state",
    [
        {"next_seq": -5, "dropped": 0},
        {"next_seq": -1, "dropped": 0},
        {"next_seq": 2**63, "dropped": 0},
        {"next_seq": True, "dropped": 0},
        {"next_seq": 3, "dropped": -4},
        {"next_seq": 3, "dropped": 0, "run": ""},
        {"next_seq": 3, "dropped": 0, "run": "not a run!"},
        {"next_seq": 3, "dropped": 0, "run": 12},
    ],
    ids=[
        "next-seq-negative",
        "next-seq-minus-one",
        "next-seq-past-int64",
        "next-seq-bool",
        "dropped-negative",
        "run-empty",
        "run-invalid",
        "run-number",
    ],
)
def test_a_state_out_of_range_starts_a_new_run_whose_batches_are_sent(tmp_path: Path, state: dict) -> None:
    path = tmp_path / "spool"
    Spool(path, 1024 * 1024).close()
    old = json.loads((path / "state.json").read_text())
    (path / "state.json").write_text(json.dumps({**old, **state}))
    spool = Spool(path, 1024 * 1024)
    try:
        assert spool.next_seq >= 0 and spool.dropped >= 0
        entries = [spool.append("web-1", [SAMPLE]) for _ in range(3)]
        assert all(0 <= e.seq < 2**63 for e in entries)
        assert [e.seq for e in spool.pending()] == [e.seq for e in entries]  # the sender sees them all
        assert drain(spool) == [e.seq for e in entries] and len(spool) == 0
    finally:
        spool.close()


def test_corrupt_batches_are_counted_as_dropped_and_the_count_survives(tmp_path: Path) -> None:
    path, run = three_batches(tmp_path)
    batch_file(path, 0).write_text("[garbage")  # unreadable: one sample at least
    body = json.loads(batch_file(path, 1).read_bytes())
    batch_file(path, 1).write_text(json.dumps({**body, "samples": "three"}))  # not a batch
    batch_file(path, 9).write_text(
        json.dumps({"run": run, "seq": 9, "host": "web-1", "samples": [{"ts": 1.0, "values": {}}] * 4})
    )  # fine
    spool = Spool(path, 1024 * 1024)
    try:
        assert [e.seq for e in spool.pending()] == [2, 9]
        assert spool.dropped == 2
    finally:
        spool.close()
    again = Spool(path, 1024 * 1024)
    try:
        assert again.dropped == 2  # saved in state.json
        assert again.run == run
    finally:
        again.close()
