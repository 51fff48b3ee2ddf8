"""Every pod is hardened, sized, probed on the real endpoints and rolled out safely."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest

from tests.manifests.podsecurity import violations
from tests.manifests.rendered import (
    OVERLAYS,
    RUNTIMES,
    Doc,
    container,
    find,
    pod_spec,
    render_overlay,
    resolve_env,
    workloads,
)


def _pod_specs(overlay: str) -> list[tuple[str, Doc]]:
    return [(w["metadata"]["name"], pod_spec(w)) for w in workloads(render_overlay(overlay))]


def _all_containers(spec: Doc) -> list[Doc]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def _mebibytes(quantity: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1.0, "Gi": 1024.0}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return float(quantity[: -len(suffix)]) * factor
    return float(quantity) / 2**20


def _millicores(quantity: str) -> float:
    return float(quantity[:-1]) if quantity.endswith("m") else float(quantity) * 1000


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_run_as_non_root_without_token(overlay: str) -> None:
    for name, spec in _pod_specs(overlay):
        assert spec["automountServiceAccountToken"] is False, name
        context = spec["securityContext"]
        assert context["runAsNonRoot"] is True, name
        assert context["runAsUser"] > 0, name
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert not (spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC")), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_containers_are_locked_down_and_sized(overlay: str) -> None:
    for name, spec in _pod_specs(overlay):
        for ctr in _all_containers(spec):
            context = ctr["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert not context["capabilities"].get("add"), name
            assert not context.get("privileged"), name
            requests, limits = ctr["resources"]["requests"], ctr["resources"]["limits"]
            assert _mebibytes(requests["memory"]) <= _mebibytes(limits["memory"]), name
            assert _millicores(requests["cpu"]) <= _millicores(limits["cpu"]), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_writable_paths_are_bounded_empty_dirs(overlay: str) -> None:
    for name, spec in _pod_specs(overlay):
        volumes = {volume["name"]: volume for volume in spec.get("volumes", [])}
        for ctr in _all_containers(spec):
            for mount in ctr.get("volumeMounts", []):
                volume = volumes[mount["name"]]
                if "emptyDir" in volume:
                    assert volume["emptyDir"]["sizeLimit"], name
                else:
                    # Besides its emptyDirs, everything a container sees is read-only.
                    assert mount.get("readOnly") is True or "configMap" in volume, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_runtime_has_a_writable_temporary_directory(overlay: str) -> None:
    # NEW_REQUERIMENTS (pip) and FUNCTION_ZIP write under the temporary directory; the root
    # filesystem is read-only.
    runtime = find(render_overlay(overlay), "Deployment", RUNTIMES[overlay])
    volumes = {volume["name"]: volume for volume in pod_spec(runtime)["volumes"]}
    mounts = {m["mountPath"]: m for m in container(runtime, "runtime")["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
    assert not mounts["/tmp"].get("readOnly", False)


def _port_number(ctr: Doc, port: int | str) -> int:
    if isinstance(port, int):
        return port
    return int(next(p["containerPort"] for p in ctr["ports"] if p["name"] == port))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_runtime_probes_hit_its_http_endpoints(overlay: str) -> None:
    docs = render_overlay(overlay)
    ctr = container(find(docs, "Deployment", RUNTIMES[overlay]), "runtime")
    # The runtime serves its probes on HTTP_PORT (8080 unless the pod says otherwise).
    http_port = int(resolve_env(ctr, docs).get("HTTP_PORT", "8080"))
    liveness, readiness = ctr["livenessProbe"]["httpGet"], ctr["readinessProbe"]["httpGet"]
    assert liveness["path"] == "/healthz"
    assert readiness["path"] == "/readyz"
    assert _port_number(ctr, liveness["port"]) == http_port
    assert _port_number(ctr, readiness["port"]) == http_port


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_dashboard_probes_hit_its_bound_port(overlay: str) -> None:
    ctr = container(find(render_overlay(overlay), "Deployment", "monitoring-dashboard"))
    bind = ctr["args"][ctr["args"].index("--bind") + 1]
    bound_port = int(bind.rpartition(":")[2])
    for probe in ("livenessProbe", "readinessProbe"):
        http = ctr[probe]["httpGet"]
        assert http["path"] == "/healthz"
        assert _port_number(ctr, http["port"]) == bound_port == 8050


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_runtime_rollout_never_drops_below_its_replicas(overlay: str) -> None:
    runtime = find(render_overlay(overlay), "Deployment", RUNTIMES[overlay])
    strategy = runtime["spec"]["strategy"]
    # The surge pod waits as a standby for the Redis lease, so one extra pod is safe.
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    grace = pod_spec(runtime)["terminationGracePeriodSeconds"]
    timeout = resolve_env(container(runtime, "runtime"), render_overlay(overlay)).get(
        "HANDLER_TIMEOUT"
    )
    if timeout is not None:
        # SIGTERM lets the call in flight finish before the kubelet kills the pod.
        assert grace > float(timeout)


def test_prod_runs_a_standby_runtime() -> None:
    runtime = find(render_overlay("prod"), "Deployment", RUNTIMES["prod"])
    assert runtime["spec"]["replicas"] == 2


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_pass_the_restricted_pod_security_profile(overlay: str) -> None:
    # The environments' namespaces enforce `restricted` (argocd/namespaces/base/namespace.yaml):
    # a pod that broke it would never be created, and its Deployment would never become Ready.
    broken = {name: found for name, spec in _pod_specs(overlay) if (found := violations(spec))}
    assert broken == {}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda s: s["containers"][0]["securityContext"].pop("allowPrivilegeEscalation"), "allow"),
        (lambda s: s["securityContext"].pop("runAsNonRoot"), "runAsNonRoot"),
        (lambda s: s["securityContext"].pop("seccompProfile"), "seccompProfile"),
        (lambda s: s["volumes"].append({"name": "h", "hostPath": {"path": "/"}}), "hostPath"),
        (lambda s: s["containers"][0]["ports"].append({"containerPort": 1, "hostPort": 1}), "host"),
    ],
)
def test_pod_security_check_catches_what_restricted_refuses(
    change: Callable[[Doc], object], expected: str
) -> None:
    # The check is alive: each of these is refused by an `enforce: restricted` namespace.
    spec = copy.deepcopy(pod_spec(find(render_overlay("prod"), "Deployment", RUNTIMES["prod"])))
    spec.setdefault("volumes", [])
    spec["containers"][0].setdefault("ports", [])
    assert violations(spec) == []
    change(spec)
    assert any(expected in line for line in violations(spec))


def _selects(selector: Doc, labels: Doc) -> bool:
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items()) and not (
        selector.get("matchExpressions")
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_replicated_deployments_have_a_disruption_budget(overlay: str) -> None:
    # A node drain may evict one replica at a time and must keep one: every Deployment that runs
    # more than one pod has a PodDisruptionBudget selecting exactly its pods.
    docs = render_overlay(overlay)
    budgets = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    for deployment in (d for d in docs if d["kind"] == "Deployment"):
        replicas = deployment["spec"].get("replicas", 1)
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        covering = [b for b in budgets if _selects(b["spec"]["selector"], labels)]
        if replicas < 2:
            continue
        name = deployment["metadata"]["name"]
        assert len(covering) == 1, f"{overlay}/{name}: {replicas} replicas, no budget"
        spec = covering[0]["spec"]
        # One at a time may go, at least one stays.
        assert spec.get("maxUnavailable") == 1 or spec.get("minAvailable") == replicas - 1, name
    for budget in budgets:
        # No budget guards nothing (it would block nothing) or a single pod (it blocks drains).
        guarded = [
            d
            for d in docs
            if d["kind"] == "Deployment"
            and _selects(budget["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"])
        ]
        assert [d["spec"].get("replicas", 1) >= 2 for d in guarded] == [True]


def test_prod_runs_its_standby_under_a_disruption_budget() -> None:
    (budget,) = [d for d in render_overlay("prod") if d["kind"] == "PodDisruptionBudget"]
    runtime = find(render_overlay("prod"), "Deployment", RUNTIMES["prod"])
    assert _selects(budget["spec"]["selector"], runtime["spec"]["template"]["metadata"]["labels"])
