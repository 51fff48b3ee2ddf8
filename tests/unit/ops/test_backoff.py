"""Backoff: each delay within [c/2, c], c doubling from `initial` up to `cap`; reset starts over."""

from __future__ import annotations

from serverless_runtime.ops.backoff import Backoff


def test_delays_double_up_to_the_cap_with_equal_jitter() -> None:
    backoff = Backoff(initial=0.1, cap=1.0)
    for ceiling in (0.1, 0.2, 0.4, 0.8, 1.0, 1.0):
        assert ceiling / 2 <= backoff.next_delay() <= ceiling


def test_reset_starts_from_the_shortest_delay() -> None:
    backoff = Backoff(initial=0.1, cap=5.0)
    for _ in range(10):
        backoff.next_delay()
    backoff.reset()
    assert backoff.attempts == 0
    assert backoff.next_delay() <= 0.1


def test_a_long_outage_keeps_the_cap() -> None:
    backoff = Backoff(initial=0.1, cap=5.0)
    delays = [backoff.next_delay() for _ in range(2000)]
    assert min(delays[-100:]) >= 2.5 and max(delays) <= 5.0
