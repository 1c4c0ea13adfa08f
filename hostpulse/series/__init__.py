"""The time-series store: agents' batches in SQLite, stored once, on disk before the ack.

One concept a module, as prometheus client_python keeps ``exposition.py`` apart from its
metrics:

- ``schema.py``: the ``series_*`` tables, and bringing an older file up to them;
- ``store.py``: :class:`SeriesStore`: writes (exactly-once, a SAVEPOINT per batch, the
  caps on series), queries, retention;
- ``exposition.py``: ``/metrics``, the Prometheus text of the latest values;
- ``committer.py``: :class:`GroupCommitter`, many batches of an event loop in one commit,
  each acknowledged only after it.

The names below are the package's public ones; import them from here.
"""

from __future__ import annotations

from hostpulse.series.committer import GroupCommitter
from hostpulse.series.exposition import metric_name, prometheus_text
from hostpulse.series.store import MIN_STEP, HostInfo, SeriesLimitError, SeriesStore

__all__ = [
    "MIN_STEP",
    "GroupCommitter",
    "HostInfo",
    "SeriesLimitError",
    "SeriesStore",
    "metric_name",
    "prometheus_text",
]
