"""Fixtures of the fault tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.live_jobs import JobsService, end_recorded


@pytest.fixture
def services(tmp_path: Path) -> Iterator[list[JobsService]]:
    """Services a test makes are stopped, and what their jobs left behind ended."""
    made: list[JobsService] = []
    yield made
    for service in made:
        service.stop()
    for service in made:
        end_recorded(service.scripts)
