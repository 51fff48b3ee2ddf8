"""What the e2e tests need from the kind cluster, through the `kubernetes` client: settings,
waiting, pods, exec (to read Redis and to commit in the git server), Argo CD's view of an
Application, and the dashboard page as a browser would fetch it."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, TypeVar

T = TypeVar("T")

ARGOCD_GROUP = ("argoproj.io", "v1alpha1", "applications")
CPU_AVERAGE = re.compile(r"avg-util-cpu\d+-60sec")
RESOURCE_MONITOR_KEYS = ("percent-network-egress", "percent-memory-caching", "timestamp")


@dataclass(frozen=True)
class E2ESettings:
    """Where things are in the e2e cluster; each field can be set with E2E_<FIELD> in the env."""

    namespace: str = "serverless-dev"
    application: str = "serverless-dev"
    argocd_namespace: str = "argocd"
    output_key: str = "resource-monitor"
    dashboard_url: str = "http://localhost:31001"
    redis_selector: str = "app.kubernetes.io/name=redis"
    runtime_selector: str = "app.kubernetes.io/name=serverless-runtime"
    git_namespace: str = "gitops-e2e"
    git_selector: str = "app.kubernetes.io/name=git-server"
    # Argo CD's API (the e2e workflow port-forwards argocd-server here).
    argocd_url: str = "https://localhost:8080"
    # Set in the e2e workflow: there, an unreachable cluster is a failure, not a skip.
    required: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> E2ESettings:
        """Defaults overridden by E2E_NAMESPACE, E2E_OUTPUT_KEY, … and E2E_REQUIRED=1."""
        values: dict[str, Any] = {}
        for field in fields(cls):
            raw = environ.get(f"E2E_{field.name.upper()}")
            if raw is None or raw == "":
                continue
            values[field.name] = (
                raw.strip().lower() in ("1", "true", "yes") if field.type == "bool" else raw
            )
        return cls(**values)


def wait_until(
    observe: Callable[[], T],
    timeout: float,
    what: str,
    accept: Callable[[T], object] = bool,
    interval: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Observe until accept(observation) holds and return that observation.

    After timeout seconds it raises AssertionError naming `what` and the last observation,
    which is what one needs to see when a cluster did not converge."""
    deadline = clock() + timeout
    while True:
        observation = observe()
        if accept(observation):
            return observation
        if clock() >= deadline:
            last = repr(observation)
            last = last if len(last) <= 400 else last[:400] + "…"
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last}")
        sleep(interval)


def connect() -> tuple[Any, str | None]:
    """An ApiClient for the current kubeconfig, or (None, why the cluster is not reachable)."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    try:
        config.load_kube_config()
    except (ConfigException, OSError) as kube_error:
        try:
            config.load_incluster_config()
        except ConfigException:
            return None, f"no Kubernetes cluster reachable (kubeconfig: {kube_error})"
    api = client.ApiClient()
    try:
        client.VersionApi(api).get_code(_request_timeout=5)
    except Exception as error:  # any transport error means the same: no cluster to test
        api.close()
        return None, f"no Kubernetes cluster reachable ({type(error).__name__}: {error})"
    return api, None


def pod_ready(pod: Any) -> bool:
    """Whether a V1Pod is running with its Ready condition true (not being deleted)."""
    if pod.metadata.deletion_timestamp is not None or pod.status.phase != "Running":
        return False
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def ready_pods(core: Any, namespace: str, selector: str) -> list[str]:
    """Names of the ready pods matching a label selector."""
    pods = core.list_namespaced_pod(namespace, label_selector=selector).items
    return sorted(p.metadata.name for p in pods if pod_ready(p))


def exec_in_pod(
    core: Any, namespace: str, pod: str, command: Sequence[str], timeout: float = 60
) -> tuple[int, str, str]:
    """Run command in the pod's first container: (exit code, stdout, stderr)."""
    from kubernetes.stream import stream

    resp = stream(
        core.connect_get_namespaced_pod_exec,
        pod,
        namespace,
        command=list(command),
        stdin=False,
        stdout=True,
        stderr=True,
        tty=False,
        _preload_content=False,
    )
    out: list[str] = []
    err: list[str] = []
    deadline = time.monotonic() + timeout
    while resp.is_open() and time.monotonic() < deadline:
        resp.update(timeout=1)
        if resp.peek_stdout():
            out.append(resp.read_stdout())
        if resp.peek_stderr():
            err.append(resp.read_stderr())
    still_open = resp.is_open()
    # Frames that arrived with the closing one are buffered already.
    out.append(resp.read_stdout())
    err.append(resp.read_stderr())
    resp.close()
    if still_open:
        raise AssertionError(f"{command[0]} in {namespace}/{pod} ran longer than {timeout}s")
    code = resp.returncode
    return (code if code is not None else 0), "".join(out), "".join(err)


def parse_redis_value(stdout: str) -> dict[str, Any] | None:
    """What `redis-cli GET key` printed, as the JSON object the runtime wrote (None if unset)."""
    text = stdout.strip()
    if not text:
        return None
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {text[:80]!r}")
    return value


def read_output(core: Any, settings: E2ESettings) -> dict[str, Any] | None:
    """The runtime's output key, read with redis-cli inside the in-cluster Redis pod."""
    pods = ready_pods(core, settings.namespace, settings.redis_selector)
    if not pods:
        return None
    code, out, err = exec_in_pod(
        core, settings.namespace, pods[0], ["redis-cli", "--raw", "GET", settings.output_key]
    )
    if code != 0:
        raise AssertionError(f"redis-cli failed ({code}): {err.strip()}")
    return parse_redis_value(out)


def has_resource_monitor_keys(output: Mapping[str, Any]) -> bool:
    """Whether an output has every key the resource-monitor function writes."""
    return all(k in output for k in RESOURCE_MONITOR_KEYS) and any(
        CPU_AVERAGE.fullmatch(k) for k in output
    )


def fetch(url: str, timeout: float = 10) -> tuple[int, str]:
    """GET url: (HTTP status, body); connection errors give status 0 and the reason."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return int(error.code), error.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as error:
        return 0, str(error)


def is_dash_page(body: str) -> bool:
    """Whether an HTML page is a Dash app's index (its config and React mount point)."""
    return 'id="_dash-config"' in body and 'id="react-entry-point"' in body


def application(custom: Any, settings: E2ESettings, name: str) -> dict[str, Any] | None:
    """An Argo CD Application as a dict, or None while it does not exist."""
    from kubernetes.client.exceptions import ApiException

    group, version, plural = ARGOCD_GROUP
    try:
        app: dict[str, Any] = custom.get_namespaced_custom_object(
            group, version, settings.argocd_namespace, plural, name
        )
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    return app


def sync_and_health(app: Mapping[str, Any] | None) -> tuple[str, str]:
    """(sync status, health status) of an Application; ("", "") before Argo CD has looked."""
    status = (app or {}).get("status") or {}
    return (status.get("sync") or {}).get("status", ""), (status.get("health") or {}).get(
        "status", ""
    )


def error_conditions(app: Mapping[str, Any] | None) -> list[str]:
    """Argo CD's error conditions on an Application (permission problems show up here)."""
    conditions = ((app or {}).get("status") or {}).get("conditions") or []
    return [
        f"{c.get('type')}: {c.get('message')}"
        for c in conditions
        if str(c.get("type", "")).endswith("Error")
    ]


def list_objects(custom: Any, settings: E2ESettings, plural: str) -> list[dict[str, Any]]:
    """Every Argo CD object of a kind (applications, appprojects) in Argo CD's namespace."""
    group, version, _ = ARGOCD_GROUP
    found = custom.list_namespaced_custom_object(group, version, settings.argocd_namespace, plural)
    items: list[dict[str, Any]] = found["items"]
    return items


def request_refresh(custom: Any, settings: E2ESettings, name: str) -> None:
    """Ask Argo CD to look at Git now, as the GitHub webhook would."""
    group, version, plural = ARGOCD_GROUP
    custom.patch_namespaced_custom_object(
        group,
        version,
        settings.argocd_namespace,
        plural,
        name,
        {"metadata": {"annotations": {"argocd.argoproj.io/refresh": "normal"}}},
    )
