"""lease.py: one leader at a time, a fencing token per term, an announced release."""

from __future__ import annotations

from redis.exceptions import SlotNotCoveredError
from serverless_runtime.storage.keys import lease_released_channel
from serverless_runtime.storage.lease import Lease


def refresh(client, lease: Lease) -> bool:
    for source in Lease.SCRIPTS:  # as the store's first read does
        client.script_load(source)
    pipe = client.pipeline(transaction=False)
    lease.queue_refresh(pipe)
    (reply,) = pipe.execute()
    return lease.apply(reply)


def test_lease_first_replica_leads_and_the_second_stands_by(client) -> None:
    a = Lease(client, "out:lease", "a/1", 10)
    b = Lease(client, "out:lease", "b/2", 10)
    assert refresh(client, a) is True
    assert refresh(client, b) is False
    assert a.value == "a/1:1"
    assert refresh(client, a) is True, "the leader renews"


def test_lease_a_new_term_gets_a_new_token(client) -> None:
    a = Lease(client, "out:lease", "a/1", 10)
    b = Lease(client, "out:lease", "b/2", 10)
    refresh(client, a)
    client.delete("out:lease")  # as if it lapsed
    assert refresh(client, b) is True
    assert b.value == "b/2:2", "a higher fencing token than the old leader's"


def test_lease_release_hands_over_and_tells_the_standbys(client) -> None:
    a = Lease(client, "out:lease", "a/1", 10)
    refresh(client, a)
    listener = client.pubsub()
    listener.subscribe(lease_released_channel("out:lease"))
    listener.get_message(timeout=1)  # the subscription's confirmation
    a.release(client)
    assert client.get("out:lease") is None
    message = listener.get_message(timeout=1)
    assert message is not None and message["data"] == b"released"
    assert a.value is None


def test_lease_release_without_a_slot_master_is_logged_and_left_to_lapse(client, caplog) -> None:
    a = Lease(client, "out:lease", "a/1", 10)
    refresh(client, a)

    def no_master(**_: object) -> None:
        raise SlotNotCoveredError("slot 1234 is not covered")

    a._release = no_master  # type: ignore[assignment]
    with caplog.at_level("WARNING"):
        a.release(client)
    assert "could not release lease 'out:lease' (slot 1234 is not covered)" in caplog.text
    assert a.value is None
