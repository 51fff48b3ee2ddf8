"""The Redis password: dev's Redis requires the one its overlay generates, and every client there
gets it from the same Secret; prod and course render no Secret at all (theirs is created outside
Git and only referenced by name), so no credential of theirs can be in Git."""

from __future__ import annotations

import base64

import pytest
import yaml

from tests.manifests.rendered import (
    FUNCTIONS_DIR,
    GITOPS,
    OVERLAYS,
    container,
    find,
    pod_spec,
    render_overlay,
    resolve_env,
    workloads,
)
from tests.pods.redis_pod import redis_argv, requirepass

# Every function folder runs in dev as a Deployment of its name (container `runtime`).
DEV_CLIENTS = {
    **{f.name: "runtime" for f in FUNCTIONS_DIR.iterdir() if (f / "function.env").is_file()},
    "metrics-collector": "collector",
    "monitoring-dashboard": "dashboard",
}
SECRET = "redis-auth"
PROMOTED = [overlay for overlay in OVERLAYS if overlay != "dev"]


def test_dev_redis_requires_the_generated_password() -> None:
    docs = render_overlay("dev")
    (secret,) = [d for d in docs if d["kind"] == "Secret"]
    assert secret["metadata"]["name"] == SECRET
    assert set(secret["data"]) == {"password"} and "stringData" not in secret
    password = base64.b64decode(secret["data"]["password"]).decode()
    # Visibly not a secret: it is in Git (gitops/README.md, "Redis password").
    assert "dev-only" in password
    argv = redis_argv(docs)
    assert argv[:1] == ["redis-server"]
    assert requirepass(argv) == password
    ctr = container(find(docs, "Deployment", "redis"), "redis")
    assert "$(REDIS_PASSWORD)" in ctr["args"], "the password is expanded from the Secret"
    assert resolve_env(ctr, docs)["REDISCLI_AUTH"] == password


@pytest.mark.parametrize("workload", sorted(DEV_CLIENTS))
def test_dev_clients_get_the_password_from_the_secret(workload: str) -> None:
    docs = render_overlay("dev")
    ctr = container(find(docs, "Deployment", workload), DEV_CLIENTS[workload])
    (var,) = [v for v in ctr["env"] if v["name"] == "REDIS_PASSWORD"]
    assert var["valueFrom"]["secretKeyRef"]["name"] == SECRET
    assert resolve_env(ctr, docs)["REDIS_PASSWORD"] == requirepass(redis_argv(docs))


def test_dev_every_container_that_talks_to_redis_is_a_known_client() -> None:
    # A new Redis client in dev must be added above (and to the NetworkPolicies).
    docs = render_overlay("dev")
    talking = {
        w["metadata"]["name"]
        for w in workloads(docs)
        for ctr in pod_spec(w)["containers"]
        if "REDIS_HOST" in resolve_env(ctr, docs) and w["metadata"]["name"] != "redis"
    }
    assert talking == set(DEV_CLIENTS)


@pytest.mark.parametrize("overlay", PROMOTED)
def test_promoted_overlays_render_no_secret_only_references(overlay: str) -> None:
    docs = render_overlay(overlay)
    assert [d["metadata"]["name"] for d in docs if d["kind"] == "Secret"] == []
    refs = [
        var["valueFrom"]["secretKeyRef"]
        for w in workloads(docs)
        for ctr in pod_spec(w)["containers"]
        for var in ctr.get("env", [])
        if "secretKeyRef" in var.get("valueFrom", {})
    ]
    # The operator's Secret, by name; optional, so a Redis without a password needs none.
    assert refs and all(r == {"name": SECRET, "key": "password", "optional": True} for r in refs)


@pytest.mark.parametrize("overlay", PROMOTED)
def test_promoted_overlays_hold_no_secret_in_git(overlay: str) -> None:
    for path in sorted((GITOPS / "overlays" / overlay).rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not isinstance(doc, dict):
                continue
            assert doc.get("kind") != "Secret", path
            assert "secretGenerator" not in doc, path
