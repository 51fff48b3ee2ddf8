"""gitops/components/pod-monitor and docs/grafana: Prometheus scrapes every function's pods on the
port their /metrics answers, through the namespace's default deny, and the Grafana dashboard asks
only for series the runtime exports, under the labels the PodMonitor gives them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from serverless_runtime.config import Settings
from serverless_runtime.ops.probes import TelemetryCollector
from serverless_runtime.ops.telemetry import Telemetry

from tests.manifests.netpol import (
    DASHBOARD_METRICS_LISTED,
    NAME,
    allowed,
    network_policies,
    pod,
    pod_of,
)
from tests.manifests.rendered import (
    GITOPS,
    NAMESPACES,
    OVERLAYS,
    REPO_ROOT,
    Doc,
    function_runtimes,
    kustomize_build,
    render_overlay,
    resolve_env,
    workloads,
)

COMPONENT = GITOPS / "components" / "pod-monitor"
GRAFANA = REPO_ROOT / "docs" / "grafana" / "serverless-functions.json"
# Prometheus as kube-prometheus-stack runs it (the component's NetworkPolicy says so).
PROMETHEUS = pod("monitoring", {"app.kubernetes.io/name": "prometheus"})


def with_component(tmp_path: Path, overlay: str, component: str = "pod-monitor") -> list[Doc]:
    """The overlay rendered with a component added, as an overlay's `components:` adds it."""
    (tmp_path / "repo").symlink_to(REPO_ROOT)
    (tmp_path / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"namespace: {NAMESPACES[overlay]}\n"
        f"resources:\n  - repo/gitops/overlays/{overlay}\n"
        f"components:\n  - repo/gitops/components/{component}\n"
    )
    return kustomize_build(tmp_path)


def selects(selector: Doc, labels: dict[str, str]) -> bool:
    assert set(selector) == {"matchLabels"}
    return all(labels.get(key) == value for key, value in selector["matchLabels"].items())


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pod_monitor_scrapes_every_function_pod_on_its_metrics_port(
    tmp_path: Path, overlay: str
) -> None:
    docs = with_component(tmp_path, overlay)
    (monitor,) = [doc for doc in docs if doc["kind"] == "PodMonitor"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["namespace"] == NAMESPACES[overlay]
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["path"] == "/metrics"
    runtimes = function_runtimes(docs)
    assert runtimes
    selected = [
        w["metadata"]["name"]
        for w in workloads(docs)
        if selects(monitor["spec"]["selector"], w["spec"]["template"]["metadata"]["labels"])
    ]
    # Every function's pods, and nothing else (not the dashboard, Redis or the collector).
    assert sorted(selected) == sorted(w["metadata"]["name"] for w in runtimes)
    for runtime in runtimes:
        (container,) = [
            c for c in runtime["spec"]["template"]["spec"]["containers"] if c["name"] == "runtime"
        ]
        ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
        # The named port is where the runtime's HTTP server listens, on the pod's address.
        settings = Settings.from_env({"REDIS_OUTPUT_KEY": "x", **resolve_env(container, docs)})
        assert ports[endpoint["port"]] == settings.http_port
        assert settings.http_host in ("0.0.0.0", "::")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pod_monitor_lets_prometheus_through_to_the_metrics_port_only(
    tmp_path: Path, overlay: str
) -> None:
    docs = with_component(tmp_path, overlay)
    policies = network_policies(docs)
    namespace = NAMESPACES[overlay]
    for runtime in function_runtimes(docs):
        target = pod_of(docs, runtime["metadata"]["name"], namespace)
        assert allowed(policies, PROMETHEUS, target, target.ports["http"])
        # Another pod of the monitoring namespace, or another port: still closed.
        other = pod("monitoring", {NAME: "grafana"})
        assert not allowed(policies, other, target, target.ports["http"])
        assert not allowed(policies, PROMETHEUS, target, 6379)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_dashboard_metrics_component_listed_where_the_dashboard_shows_the_figures(
    overlay: str,
) -> None:
    kustomization = yaml.safe_load(
        (REPO_ROOT / "gitops" / "overlays" / overlay / "kustomization.yaml").read_text()
    )
    listed = "../../components/dashboard-metrics" in kustomization.get("components", [])
    assert listed == (overlay in DASHBOARD_METRICS_LISTED)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_dashboard_metrics_component_opens_the_runtimes_port_to_the_dashboard_only(
    tmp_path: Path, overlay: str
) -> None:
    namespace = NAMESPACES[overlay]
    listed = overlay in DASHBOARD_METRICS_LISTED
    rendered = render_overlay(overlay)
    docs = rendered if listed else with_component(tmp_path, overlay, "dashboard-metrics")
    policies = network_policies(docs)
    dashboard = pod_of(docs, "monitoring-dashboard", namespace)
    for runtime in function_runtimes(docs):
        target = pod_of(docs, runtime["metadata"]["name"], namespace)
        port = target.ports["http"]
        # Closed by default: the Functions page then says /metrics does not answer.
        if not listed:
            assert not allowed(network_policies(rendered), dashboard, target, port)
        assert allowed(policies, dashboard, target, port)
        assert not allowed(policies, dashboard, target, 6379)
        for other in workloads(docs):
            name = other["metadata"]["name"]
            if name != "monitoring-dashboard":
                assert not allowed(policies, pod_of(docs, name, namespace), target, port)
        assert not allowed(policies, pod(namespace, {NAME: "intruder"}), target, port)


def exported_series() -> set[str]:
    """Every series name the runtime's /metrics holds once each figure has a value."""
    telemetry = Telemetry(stale_after=10)
    telemetry.invoked("success", 0.01, 1.0)
    telemetry.invoked("timeout", 2.0, None)
    telemetry.reloaded(ok=False, kind="syntax-error")
    registry = CollectorRegistry()
    registry.register(TelemetryCollector(telemetry))
    text = generate_latest(registry).decode()
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}


# PromQL words that are not series: functions, aggregations, modifiers; Grafana's own.
_WORDS = {"sum", "max", "min", "avg", "count", "rate", "increase", "histogram_quantile", "time",
          "by", "without", "label_values", "and", "or", "unless", "on", "ignoring"}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """The series a PromQL expression reads (label matchers, ranges and groupings removed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", text)
    text = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", text)
    text = re.sub(r"label_values\(([^,()]+),[^)]*\)", r"\1", text)
    names = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", text))
    return {name for name in names if name not in _WORDS and not name.startswith("$")}


def grafana_queries(dashboard: Doc) -> list[str]:
    queries = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            queries.append(variable["query"]["query"])
    return queries


def test_grafana_dashboard_reads_only_series_the_runtime_exports() -> None:
    dashboard = json.loads(GRAFANA.read_text())
    queries = grafana_queries(dashboard)
    assert len(queries) >= 12
    used = set().union(*(metric_names(query) for query in queries))
    exported = exported_series()
    assert used <= exported, f"not exported by the runtime: {sorted(used - exported)}"
    # The figures the dashboard is for: calls, errors, durations, input age, leader, reloads.
    assert {
        "serverless_runtime_invocations_total",
        "serverless_runtime_invocation_duration_seconds_bucket",
        "serverless_runtime_input_age_seconds",
        "serverless_runtime_leader",
        "serverless_runtime_reloads_total",
    } <= used


def test_grafana_dashboard_groups_by_the_label_the_pod_monitor_sets() -> None:
    monitor = yaml.safe_load((COMPONENT / "pod-monitor.yaml").read_text())
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    labels = {r["targetLabel"] for r in endpoint["relabelings"]}
    dashboard = json.loads(GRAFANA.read_text())
    for query in grafana_queries(dashboard):
        for grouping in re.findall(r"\bby\s*\(([^)]*)\)", query):
            for label in (part.strip() for part in grouping.split(",")):
                assert label in labels | {"le", "outcome", "result", "kind", "namespace", "pod"}
    assert dashboard["timezone"] == "utc"
    # Every query filters by the dashboard's function variable, named as the PodMonitor's label.
    assert "function" in labels
    assert all('function=~"$function"' in q for q in grafana_queries(dashboard)[:-2])
