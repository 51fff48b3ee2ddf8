"""Every overlay renders with kustomize v5 and validates strictly, from a Kubernetes a year old up
to the version the e2e cluster runs."""

from __future__ import annotations

import re

import kubernetes_validate
import pytest
import yaml

from tests.manifests.images import INITIAL_DIGEST, OUR_IMAGES, reference_problems, registry_names
from tests.manifests.rendered import NAMESPACES, OVERLAYS, REPO_ROOT, render_overlay, workloads

KUBERNETES_VERSIONS = ("1.30.0", "1.31.0", "1.32.0", "1.33.0", "1.34.0", "1.35.0", "1.36.0")
# The script that brings the e2e cluster up (and a user's): it pins the kind node image.
KIND_UP = REPO_ROOT / "scripts" / "kind-up.sh"
# Kinds without a namespace of their own; none of them may come from an overlay.
CLUSTER_KINDS = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}


def images(overlay: str) -> list[str]:
    return [
        ctr["image"]
        for workload in workloads(render_overlay(overlay))
        for ctr in workload["spec"]["template"]["spec"]["containers"]
    ]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_into_its_namespace(overlay: str) -> None:
    docs = render_overlay(overlay)
    kinds = {doc["kind"] for doc in docs}
    assert {"Deployment", "Service", "ConfigMap"} <= kinds
    # The platform Application creates the namespaces (argocd/platform); an overlay never does.
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


def test_overlay_validation_reaches_the_e2e_kubernetes_version() -> None:
    node_image = re.search(r"kindest/node:v(\d+\.\d+)\.\d+@", KIND_UP.read_text())
    assert node_image is not None, "scripts/kind-up.sh names no kindest/node image"
    assert f"{node_image[1]}.0" in KUBERNETES_VERSIONS


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_images_are_valid_and_pinned_by_digest(overlay: str) -> None:
    found = images(overlay)
    ours = [i for i in found if i.split("@")[0].rsplit("/", 1)[-1] in OUR_IMAGES]
    registry = registry_names()
    names = {i.split("@")[0] for i in ours}
    # Every image of ours comes from the registry; dev runs them all, prod and course the two
    # apps and the function images of the functions promoted to them.
    assert names <= set(registry.values())
    assert {registry["serverless-runtime"], registry["monitoring-dashboard"]} <= names
    if overlay == "dev":
        assert names == set(registry.values())
    assert [p for image in ours for p in reference_problems(image)] == []
    for image in set(found) - set(ours):
        # Third-party images (dev's Redis) carry an explicit tag, never latest.
        name, _, tag = image.rpartition(":")
        assert name and "/" not in tag and tag != "latest", image


def test_overlay_registry_names_each_image_once_under_the_repository_owner() -> None:
    names = registry_names()
    assert set(names) == set(OUR_IMAGES)
    url = yaml.safe_load((REPO_ROOT / "argocd/repository/repository.yaml").read_text())["data"][
        "url"
    ]
    owner = url.removeprefix("https://github.com/").split("/")[0]
    assert {n.rsplit("/", 1)[0] for n in names.values()} == {f"ghcr.io/{owner.lower()}"}
    # Nowhere else: an overlay pins digests only, so a fork changes the owner in one folder.
    for path in sorted((REPO_ROOT / "gitops" / "overlays").rglob("*.yaml")):
        assert "ghcr.io" not in path.read_text(), path


@pytest.mark.parametrize(
    "image",
    [
        "ghcr.io/OWNER/serverless-runtime:0.1.0",  # upper case: InvalidImageName
        "ghcr.io/owner/serverless-runtime@" + INITIAL_DIGEST,  # a placeholder owner
        "ghcr.io/acme/serverless-runtime:0.1.0",  # a tag, not a digest
        "ghcr.io/acme/serverless-runtime@sha256:" + "0" * 64,  # a made-up digest
        "ghcr.io/acme/serverless-runtime@sha256:abc",  # not a digest
        "ghcr.io/acme/Serverless-Runtime@" + INITIAL_DIGEST,
    ],
)
def test_overlay_image_check_rejects(image: str) -> None:
    assert reference_problems(image) != []


def test_overlay_image_check_accepts_a_digest_reference() -> None:
    assert reference_problems("ghcr.io/acme-org/serverless-runtime@" + INITIAL_DIGEST) == []
