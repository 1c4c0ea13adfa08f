"""``bench.agents --store postgresql --nodes 2`` at a tiny scale: the figures the README's "Two
nodes on PostgreSQL" table comes from are counted, not assumed. Its own PostgreSQL server
(``bench/pgserver.py``) and two Hypercorn nodes; no assertion on a time, only on counts: every
acknowledged batch is in the database once, and both nodes served agents."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT

AGENTS = 6


def test_two_nodes_on_postgresql_store_what_they_ack(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    argv = [sys.executable, "-m", "bench.agents", "--store", "postgresql", "--nodes", "2", "--agents", str(AGENTS)]
    argv += ["--interval", "0.5", "--duration", "3", "--values", "5", "--processes", "1", "--workers", "1"]
    done = subprocess.run([*argv, "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    figures = json.loads(out.read_text())
    assert figures["store"] == "postgresql" and figures["nodes"] == 2
    assert figures["store_fsync"] == "on"  # durable, as the SQLite store it is compared with
    assert figures["connect_errors"] == figures["closed_by_server"] == figures["error_answers"] == 0
    # the agents spread evenly, each node serving its half and acknowledging batches
    assert figures["agents_held_per_node"] == [AGENTS // 2, AGENTS // 2]
    assert figures["connections_seen_by_service_per_node"] == [AGENTS // 2, AGENTS // 2]
    acked_per_node = figures["batches_acked_per_node"]
    assert len(acked_per_node) == 2 and min(acked_per_node) >= AGENTS // 2  # a batch an agent at least
    # every batch made was acknowledged, and what was acknowledged is what the database holds
    assert figures["batches_acked"] == sum(acked_per_node) == figures["batches_produced"]
    assert figures["batches_stored"] == figures["batches_acked"]
    assert figures["acked_but_not_stored"] == 0 and figures["produced_never_acked"] == 0
    assert figures["database_cpu_ms_per_batch"] is not None  # PostgreSQL's own CPU, measured apart


def test_several_nodes_need_postgresql() -> None:
    """An SQLite file is one machine's: ``--nodes 2`` without ``--store postgresql`` is refused."""
    argv = [sys.executable, "-m", "bench.agents", "--nodes", "2"]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--store postgresql" in done.stderr
