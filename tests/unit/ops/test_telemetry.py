"""The loop's own figures, as the probes read them."""

from __future__ import annotations

from serverless_runtime.ops.telemetry import DURATION_BUCKETS, Telemetry


def test_invoked_counts_each_outcome_and_frees_the_loop() -> None:
    telemetry = Telemetry(stale_after=60, busy_since=1.0)  # a call is running
    telemetry.invoked("success", 0.002, input_age=1.5)
    telemetry.invoked("handler-error", None, None)
    telemetry.invoked("handler-error", None, None)
    assert telemetry.outcomes == {"success": 1, "handler-error": 2}
    assert telemetry.busy_since is None
    assert telemetry.input_age == 1.5


def test_a_duration_on_a_bucket_bound_counts_in_that_bucket() -> None:
    telemetry = Telemetry(stale_after=60)
    telemetry.invoked("success", DURATION_BUCKETS[2], None)
    assert telemetry.duration_counts[2] == 1
    assert telemetry.duration_sum == DURATION_BUCKETS[2]


def test_only_a_success_sets_the_last_success() -> None:
    telemetry = Telemetry(stale_after=60)
    telemetry.invoked("timeout", 1.0, None)
    assert telemetry.last_success is None
    telemetry.invoked("success", 0.1, None)
    assert telemetry.last_success is not None


def test_reloaded_counts_failures_by_kind() -> None:
    telemetry = Telemetry(stale_after=60)
    telemetry.reloaded(ok=True)
    telemetry.reloaded(ok=False, kind="syntax-error")
    telemetry.reloaded(ok=False, kind="syntax-error")
    assert telemetry.reloads == {"success": 1, "failure": 2}
    assert telemetry.load_failures == {"syntax-error": 2}


def test_a_beat_with_a_pause_keeps_the_heartbeat_fresh_through_the_pause() -> None:
    telemetry = Telemetry(stale_after=60)
    telemetry.beat(pause=3600)
    assert telemetry.heartbeat_age() == 0.0
