"""Capped exponential backoff with full jitter, for reconnecting to Redis."""

from __future__ import annotations

import random


class Backoff:
    """Delays that double from `initial` up to `cap`, each drawn uniformly below the ceiling."""

    def __init__(self, initial: float = 0.1, cap: float = 5.0) -> None:
        self.initial = initial
        self.cap = cap
        self.attempts = 0

    def next_delay(self) -> float:
        """The next pause; spread out so that many replicas do not reconnect in step."""
        ceiling = min(self.cap, self.initial * 2**self.attempts)
        self.attempts = min(self.attempts + 1, 32)
        return random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        """Start from the shortest delay again after a success."""
        self.attempts = 0
