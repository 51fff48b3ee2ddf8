"""Keyspace notifications: what the notify trigger needs a Redis server to publish."""

from __future__ import annotations

import logging

import redis
import redis.client

log = logging.getLogger(__name__)


def refused(connection: redis.Redis) -> str | None:
    """Make sure the server publishes keyspace events for string commands (`K$` at least).

    None when it does; else why it may not be asked (CONFIG renamed or denied, as on managed
    services), and the caller's polling still sees every change.
    """
    try:
        reply = connection.config_get("notify-keyspace-events")
        current = str(reply.get("notify-keyspace-events", ""))
        has_strings = "$" in current or "A" in current
        if "K" not in current or not has_strings:
            wanted = current + ("" if "K" in current else "K") + ("" if has_strings else "$")
            connection.config_set("notify-keyspace-events", wanted)
    except redis.ResponseError as exc:
        return str(exc)
    return None


def close(pubsub: redis.client.PubSub | None) -> None:
    """Close a subscription whose connection may already be gone."""
    if pubsub is not None:
        try:
            pubsub.close()
        except redis.RedisError:
            log.debug("closing the pub/sub connection failed", exc_info=True)
