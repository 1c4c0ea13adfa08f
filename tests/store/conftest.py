from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hostpulse.series import SeriesStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SeriesStore]:
    s = SeriesStore(tmp_path / "hostpulse.sqlite3", retention=3600.0)
    yield s
    s.close()
