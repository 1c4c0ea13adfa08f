"""``hostpulse-agent`` / ``python -m agent``: settings, then ``--once`` or streaming.

Exit status: 0 after a clean stop (or a 2xx ``--once``), 1 when ``--once`` failed,
2 for a setting that cannot be used (unknown psutil name, bad URL, no token, spool in
use): such mistakes fail at start with a message saying what to change.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence

from . import collect, once, settings, spool, stream


def _logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _fail(message: str) -> int:
    print(f"hostpulse-agent: error: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the agent; return its exit status."""
    try:
        config = settings.load(argv)
        names = collect.check_names(config.names)
    except (settings.SettingsError, collect.UnknownName) as exc:
        return _fail(str(exc))
    _logging(config.log_level)
    if config.once:
        return asyncio.run(once.post_once(config, names))
    try:
        queue = spool.Spool(config.spool, config.spool_size)
    except spool.SpoolError as exc:
        return _fail(str(exc))
    try:
        return asyncio.run(stream.run(config, queue))
    finally:
        queue.close()


if __name__ == "__main__":
    sys.exit(main())
