"""The time-series store: agents' batches in SQLite, stored once, on disk before the ack.

One concept a module, as prometheus client_python keeps ``exposition.py`` apart from its
metrics:

- ``schema.py``: the ``series_*`` tables, and bringing an older file up to them;
- ``store.py``: :class:`SeriesStore`: writes (exactly-once, a SAVEPOINT per batch, the
  caps on series), compaction, queries, retention;
- ``head.py``: a batch's samples as one row until compaction, a host's latest values;
- ``codec.py``: compressed tables (times and columns of values);
- ``tiers.py``: raw, 5-minute and hourly tiers, and answers read from their aggregates;
- ``naming.py``: an agent's psutil name as a metric, labels and a type;
- ``exposition.py``: ``/metrics``, the Prometheus text of the latest values;
- ``committer.py``: :class:`GroupCommitter`, many batches of an event loop in one commit,
  each acknowledged only after it.

The names below are the package's public ones; import them from here.
"""

from __future__ import annotations

from hostpulse.series.committer import GroupCommitter
from hostpulse.series.exposition import prometheus_text
from hostpulse.series.schema import OldStoreError
from hostpulse.series.store import MIN_STEP, HostInfo, HostSummary, SeriesLimitError, SeriesStore

__all__ = [
    "MIN_STEP",
    "GroupCommitter",
    "HostInfo",
    "HostSummary",
    "OldStoreError",
    "SeriesLimitError",
    "SeriesStore",
    "prometheus_text",
]
