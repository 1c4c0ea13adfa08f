"""The service's logs, in Hypercorn's error-log format: ``hostpulse.*`` messages (retention,
jobs killed at their time limit, failed batches) to stderr, the access log
(``app/access_log.py``) to stdout.

Without a handler of their own, INFO messages of these loggers were dropped. A handler
configured for them beforehand (Hypercorn's ``logconfig`` option) is kept.
"""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s [%(process)d] [%(levelname)s] %(message)s"
DATE_FORMAT = "[%Y-%m-%d %H:%M:%S %z]"


class _Current(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stdout`` or ``sys.stderr`` is when it writes (a test runner
    swaps them)."""

    def __init__(self, stream: str) -> None:
        super().__init__()
        self.stream_name = stream

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = getattr(sys, self.stream_name)
        super().emit(record)


def configure(name: str, stream: str) -> logging.Logger:
    """The logger ``name`` writing INFO and above to ``sys.<stream>``, unless already set up."""
    logger = logging.getLogger(name)
    if not logger.handlers:
        handler = _Current(stream)
        handler.setFormatter(logging.Formatter(FORMAT, DATE_FORMAT))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger
