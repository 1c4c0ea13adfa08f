"""Reconnect delays: exponential, capped, with jitter.

When a service restarts, thousands of agents lose their connection at the same moment;
without jitter they would all come back at the same moments too. "Equal jitter": the
n-th delay is drawn from ``[d/2, d]`` with ``d = min(cap, base * 2**n)``, so agents
spread out yet none retries in a tight loop.
"""

from __future__ import annotations

import random


class Backoff:
    def __init__(self, base: float = 0.5, cap: float = 30.0, rng: random.Random | None = None) -> None:
        if not 0 < base <= cap:
            raise ValueError("need 0 < base <= cap")
        self.base = base
        self.cap = cap
        self.attempts = 0
        self._rng = rng or random.Random()

    def next(self) -> float:
        """The delay before the next attempt; each call doubles the ceiling up to the cap."""
        ceiling = min(self.cap, self.base * 2 ** min(self.attempts, 62))
        self.attempts += 1
        return self._rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        """A connection worked: the next failure starts from the base again."""
        self.attempts = 0


__all__ = ["Backoff"]
