"""The environment the manifests give each container is exactly what its program reads."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest
from monitoring_dashboard import settings as dashboard_settings
from serverless_runtime.config import ENV_VARS, RedisConfig, Settings

from tests.manifests.rendered import (
    OUTPUT_KEYS,
    OVERLAYS,
    RUNTIMES,
    Doc,
    container,
    find,
    pod_spec,
    render_overlay,
    resolve_env,
)

# What `serverless-runtime collect` reads besides its arguments (cli.collect_command).
COLLECTOR_ENV = frozenset({"REDIS_URL", "REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD"}) | {
    "REDIS_INPUT_KEY",
    "LOG_FORMAT",
}


def _declared_names(ctr: Doc, docs: list[Doc]) -> set[str]:
    """Every variable the container may get, optional Secrets included."""
    names = {var["name"] for var in ctr.get("env", [])}
    for source in ctr.get("envFrom", []):
        ref = source.get("configMapRef") or source.get("secretRef") or {}
        names |= {
            source.get("prefix", "") + key for key in find(docs, "ConfigMap", ref["name"])["data"]
        }
    return names


def _runtime(overlay: str) -> tuple[Doc, list[Doc]]:
    docs = render_overlay(overlay)
    return container(find(docs, "Deployment", RUNTIMES[overlay]), "runtime"), docs


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_runtime_env_is_read_by_the_runtime(overlay: str) -> None:
    ctr, docs = _runtime(overlay)
    names = _declared_names(ctr, docs)
    assert names <= ENV_VARS, f"set but never read: {sorted(names - ENV_VARS)}"
    assert "REDIS_OUTPUT_KEY" in names


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_runtime_env_parses_into_settings(overlay: str) -> None:
    ctr, docs = _runtime(overlay)
    settings = Settings.from_env(resolve_env(ctr, docs))
    assert settings.keys.output == OUTPUT_KEYS[overlay]
    assert settings.keys.input == "metrics"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_runtime_finds_the_function_where_it_is_mounted(overlay: str) -> None:
    ctr, docs = _runtime(overlay)
    function_path = PurePosixPath(Settings.from_env(resolve_env(ctr, docs)).function_path)
    volumes = {
        v["name"]: v for v in pod_spec(find(docs, "Deployment", RUNTIMES[overlay]))["volumes"]
    }
    mounted = set()
    for mount in ctr["volumeMounts"]:
        if "configMap" not in volumes[mount["name"]]:
            continue  # the emptyDir at /tmp
        source = volumes[mount["name"]]["configMap"]
        if "subPath" in mount:
            mounted.add(PurePosixPath(mount["mountPath"]))
        else:
            paths = [item["path"] for item in source.get("items", [])] or list(
                find(docs, "ConfigMap", source["name"])["data"]
            )
            mounted |= {PurePosixPath(mount["mountPath"]) / path for path in paths}
    assert function_path in mounted


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_redis_password_only_comes_from_a_secret(overlay: str) -> None:
    docs = render_overlay(overlay)
    for workload in (d for d in docs if d["kind"] == "Deployment"):
        for ctr in pod_spec(workload)["containers"]:
            env = {var["name"]: var for var in ctr.get("env", [])}
            declared = _declared_names(ctr, docs) - set(env)
            assert "REDIS_PASSWORD" not in declared, "a password in a ConfigMap"
            assert "REDIS_URL" not in declared | set(env), "credentials could hide in a URL"
            if "REDIS_PASSWORD" in env:
                ref = env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]
                if workload["metadata"]["name"] == "redis":
                    # The dev Redis's own password: never started without it (test_redis_auth.py).
                    assert ref.get("optional", False) is False
                else:
                    # A client's: optional, so a Redis without a password needs no Secret.
                    assert ref["optional"] is True


def test_collector_env_is_read_by_the_collector() -> None:
    docs = render_overlay("dev")
    ctr = container(find(docs, "Deployment", "metrics-collector"))
    assert _declared_names(ctr, docs) <= COLLECTOR_ENV <= ENV_VARS
    assert RedisConfig.from_env(resolve_env(ctr, docs)).host == "redis"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_component_uses_the_same_redis_and_keys(overlay: str) -> None:
    docs = render_overlay(overlay)
    runtime_ctr, _ = _runtime(overlay)
    runtime = Settings.from_env(resolve_env(runtime_ctr, docs))
    dashboard_ctr = container(find(docs, "Deployment", "monitoring-dashboard"))
    dashboard = dashboard_settings.Settings.from_env(resolve_env(dashboard_ctr, docs))
    assert (dashboard.redis.host, dashboard.redis.port) == (runtime.redis.host, runtime.redis.port)
    assert dashboard.output_key == runtime.keys.output
    if overlay == "dev":
        collector_env = resolve_env(container(find(docs, "Deployment", "metrics-collector")), docs)
        assert RedisConfig.from_env(collector_env) == RedisConfig.from_env(
            resolve_env(runtime_ctr, docs)
        )
        assert collector_env["REDIS_INPUT_KEY"] == runtime.keys.input


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_dashboard_env_is_read_by_the_dashboard(overlay: str) -> None:
    env_vars = dashboard_settings.ENV_VARS
    docs = render_overlay(overlay)
    ctr = container(find(docs, "Deployment", "monitoring-dashboard"))
    names = _declared_names(ctr, docs)
    assert names <= env_vars, f"set but never read: {sorted(names - env_vars)}"
