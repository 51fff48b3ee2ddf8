"""Capped exponential backoff with equal jitter (redis-py's), for reconnecting and retrying."""

from __future__ import annotations

from redis.backoff import EqualJitterBackoff


class Backoff:
    """The n-th delay is drawn from [c/2, c], c = min(cap, initial x 2^n); reset on success."""

    CAP = 5.0  # seconds: the longest step after a Redis outage, by default

    def __init__(self, initial: float = 0.1, cap: float = CAP) -> None:
        self._draw = EqualJitterBackoff(cap=cap, base=initial)
        self.attempts = 0

    def next_delay(self) -> float:
        """The next pause; spread out so that many replicas do not reconnect in step."""
        delay = self._draw.compute(self.attempts)
        self.attempts = min(self.attempts + 1, 32)  # 2^n stays a float however long the outage
        return delay

    def reset(self) -> None:
        self.attempts = 0
