"""Every overlay renders with kustomize v5 and validates strictly for Kubernetes 1.29 to 1.33."""

from __future__ import annotations

import kubernetes_validate
import pytest

from tests.manifests.rendered import NAMESPACES, OVERLAYS, render_overlay, workloads

KUBERNETES_VERSIONS = ("1.29.0", "1.30.0", "1.31.0", "1.32.0", "1.33.0")
# Kinds without a namespace of their own; none of them may come from an overlay but Namespace.
CLUSTER_KINDS = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_into_its_namespace(overlay: str) -> None:
    docs = render_overlay(overlay)
    kinds = {doc["kind"] for doc in docs}
    assert {"Deployment", "Service", "ConfigMap"} <= kinds
    # Argo CD's CreateNamespace makes the namespace; an overlay that shipped it would fight that.
    assert not kinds & CLUSTER_KINDS
    for doc in docs:
        assert doc["metadata"].get("namespace") == NAMESPACES[overlay], doc["metadata"]["name"]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_validates_strictly(overlay: str, version: str) -> None:
    failures = []
    for doc in render_overlay(overlay):
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            failures.append(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message}")
    assert not failures


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_images_are_pinned(overlay: str) -> None:
    images = [
        ctr["image"]
        for workload in workloads(render_overlay(overlay))
        for ctr in workload["spec"]["template"]["spec"]["containers"]
    ]
    assert images
    for image in images:
        name, _, tag = image.rpartition(":")
        assert name and "/" not in tag, f"{image} has no tag"
        assert tag != "latest", image
    ours = {image.rpartition(":")[0] for image in images} - {"redis"}
    assert {name.rsplit("/", 1)[-1] for name in ours} == {
        "serverless-runtime",
        "monitoring-dashboard",
    }
    if overlay != "dev":
        # dev may run images loaded into kind (no registry); the others pull from the registry
        # the image workflow pushes to.
        assert all(name.startswith("ghcr.io/") for name in ours), ours
