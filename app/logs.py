"""The service's logs, in Hypercorn's error-log format: ``hostpulse.*`` messages (retention,
jobs killed at their time limit, failed batches) to stderr, the access log
(``app/access_log.py``) to stdout.

Without a handler of their own, INFO messages of these loggers were dropped. A handler
configured for them beforehand (Hypercorn's ``logconfig`` option) is kept.

Every message is made safe before any handler writes it (``hostpulse.logsafe``): control
characters escaped, so a request's path or a batch's text can never start a forged line or
drive a terminal, and credentials (``Bearer ...``, ``token=...``) redacted. The access log
builds its lines safe itself (one check a request less).
"""

from __future__ import annotations

import logging
import sys

from hostpulse.logsafe import protect, protect_tree

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


def configure(name: str, stream: str, safe: bool = True) -> logging.Logger:
    """The logger ``name`` writing INFO and above to ``sys.<stream>``, unless already set up;
    with ``safe``, its records and what its handlers write are made safe (see above)."""
    logger = logging.getLogger(name)
    if not logger.handlers:
        handler = _Current(stream)
        handler.setFormatter(logging.Formatter(FORMAT, DATE_FORMAT))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    if safe:
        protect(logger)
    return logger


def protect_app(app_logger: logging.Logger) -> None:
    """The app's logger (Quart's, unhandled errors with the request's path) and every
    ``hostpulse.*`` logger but the access log: safe records, whatever handler writes them."""
    protect(app_logger)
    protect_tree("hostpulse", skip=("hostpulse.access",))
