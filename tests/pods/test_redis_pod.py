"""The dev overlay's Redis, started as the kubelet would start it, requires the password its
clients get from the same Secret (tests/manifests/test_redis_auth.py); without it, nothing is
served. The runtime, collector and dashboard pods of dev run against it (test_*_pod.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from tests.manifests.rendered import render_overlay
from tests.pods.redis_pod import kubelet_expand, rendered_redis


def test_kubelet_expansion_follows_kubernetes_rules() -> None:
    env = {"A": "x y", "B": "$(A)"}
    assert kubelet_expand("--a=$(A)", env) == "--a=x y"
    # Unknown references stay as written; $$ escapes; values are not expanded again.
    assert kubelet_expand("$(C)", env) == "$(C)"
    assert kubelet_expand("$$(A)", env) == "$(A)"
    assert kubelet_expand("$(B)", env) == "$(A)"


@pytest.mark.slow
def test_dev_redis_refuses_clients_without_the_password(tmp_path: Path) -> None:
    docs = render_overlay("dev")
    with rendered_redis(docs, tmp_path / "redis") as (port, password):
        anonymous = redis.Redis(port=port, socket_timeout=5)
        with pytest.raises(redis.AuthenticationError):
            anonymous.set("metrics", "{}")
        anonymous.close()
        wrong = redis.Redis(port=port, password="not-" + password, socket_timeout=5)
        with pytest.raises(redis.AuthenticationError):
            wrong.ping()
        wrong.close()
        client = redis.Redis(port=port, password=password, socket_timeout=5)
        assert client.ping() is True
        client.close()
