"""A host's state for ``GET /hosts``, from the service's clock at query time.

``up``; ``stale`` once no batch came for three of the host's intervals; ``down`` once none
came for ten, or at once when its last batch was its agent's goodbye (a clean stop). The
interval is the one its agent last sent with a batch; an older agent sends none, and then
the gap between its last two batches counts, else :data:`DEFAULT_INTERVAL`.
"""

from __future__ import annotations

UP, STALE, DOWN = "up", "stale", "down"
STALE_AFTER = 3  # intervals without a batch
DOWN_AFTER = 10
DEFAULT_INTERVAL = 10.0  # seconds: the agent's default interval


def host_interval(interval: float | None, last_seen: float, previous_seen: float | None) -> float:
    """The seconds between the host's batches: as its agent said, else the last gap, else the default."""
    if interval is not None and interval > 0:
        return interval
    if previous_seen is not None and last_seen > previous_seen:
        return last_seen - previous_seen
    return DEFAULT_INTERVAL


def host_state(
    now: float,
    last_seen: float,
    interval: float | None = None,
    previous_seen: float | None = None,
    goodbye: bool = False,
) -> str:
    """``up``, ``stale`` or ``down``: exactly three intervals of silence are already
    ``stale``, exactly ten already ``down``."""
    if goodbye:
        return DOWN
    every = host_interval(interval, last_seen, previous_seen)
    silent = now - last_seen
    if silent >= DOWN_AFTER * every:
        return DOWN
    if silent >= STALE_AFTER * every:
        return STALE
    return UP


__all__ = ["DEFAULT_INTERVAL", "DOWN", "DOWN_AFTER", "STALE", "STALE_AFTER", "UP", "host_interval", "host_state"]
