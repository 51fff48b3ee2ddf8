"""`kubectl apply -k argocd/clusters/<name>` bootstraps one cluster once; from then on its root
Application renders the same folder, and its platform Application the cluster's platform folder, so
projects, RBAC, namespaces and roots all follow Git."""

from __future__ import annotations

import re

import kubernetes_validate
import pytest

from tests.argocd.manifests import (
    CLUSTERS_DIR,
    PLATFORM,
    REPO,
    ROOT,
    Obj,
    bootstrap,
    clusters,
    environment_applications,
    group_kind,
    of_kind,
    platform,
    root_application,
    root_renders,
)

CLUSTERS = clusters()
# A cluster of a year ago, and the version the e2e's kind node runs.
KUBERNETES_VERSIONS = ("1.30", "1.36")
# The script that makes the e2e cluster (and a user's): it pins the kind node image.
KIND_UP = REPO / "scripts" / "kind-up.sh"


def names(objs: list[Obj], kind: str) -> set[str]:
    return {o["metadata"]["name"] for o in of_kind(objs, kind)}


def environments(cluster: str) -> set[str]:
    return {a["metadata"]["name"] for a in environment_applications(cluster)}


@pytest.mark.parametrize("cluster", CLUSTERS)
def test_bootstrap_applies_only_argocd_objects(cluster: str) -> None:
    # Everything the bootstrap applies is something the admin-only root project may manage.
    objs = bootstrap(cluster)
    assert {group_kind(o) for o in objs} == {
        ("argoproj.io", "Application"),
        ("argoproj.io", "AppProject"),
    }
    assert {o["metadata"]["namespace"] for o in objs} == {"argocd"}


@pytest.mark.parametrize("cluster", CLUSTERS)
def test_bootstrap_runs_exactly_one_environment_per_cluster(cluster: str) -> None:
    objs = bootstrap(cluster)
    (env,) = environments(cluster)
    assert names(objs, "Application") == {ROOT, PLATFORM, env}
    # Argo CD's own `default` project is not among them: it stays as the install made it.
    assert names(objs, "AppProject") == {ROOT, PLATFORM, env}


def test_bootstrap_kind_runs_dev_only() -> None:
    assert environments("kind") == {"serverless-dev"}


def test_bootstrap_every_environment_has_a_cluster() -> None:
    overlays = {p.name for p in (REPO / "gitops" / "overlays").iterdir() if p.is_dir()}
    run = {env for cluster in CLUSTERS for env in environments(cluster)}
    assert run == {f"serverless-{name}" for name in overlays}


@pytest.mark.parametrize("cluster", CLUSTERS)
def test_bootstrap_root_renders_its_own_cluster_folder(cluster: str) -> None:
    # Self-managed: the root's source is what the bootstrap applied, so Git is what stays.
    root = root_application(cluster)
    assert root["spec"]["source"]["path"] == f"argocd/clusters/{cluster}"
    key = {(o["kind"], o["metadata"]["name"]) for o in bootstrap(cluster)}
    assert {(o["kind"], o["metadata"]["name"]) for o in root_renders(cluster)} == key
    (app,) = [
        a for a in of_kind(bootstrap(cluster), "Application") if a["metadata"]["name"] == PLATFORM
    ]
    assert app["spec"]["source"]["path"] == f"argocd/clusters/{cluster}/platform"


@pytest.mark.parametrize("cluster", CLUSTERS)
def test_bootstrap_platform_keeps_rbac_settings_and_the_cluster_namespaces(cluster: str) -> None:
    objs = platform(cluster)
    assert names(objs, "ConfigMap") == {"argocd-rbac-cm", "argocd-cm"}
    # Exactly the namespaces of the environments this cluster runs, each with its deployer.
    namespaces = names(objs, "Namespace")
    assert namespaces == environments(cluster)
    for kind in ("ServiceAccount", "Role", "RoleBinding"):
        assert {o["metadata"]["namespace"] for o in of_kind(objs, kind)} == namespaces, kind


@pytest.mark.parametrize("cluster", CLUSTERS)
def test_bootstrap_platform_never_deletes_namespaces_or_argocd_settings(cluster: str) -> None:
    for obj in platform(cluster):
        if obj["kind"] in ("Namespace", "ConfigMap"):
            options = obj["metadata"].get("annotations", {}).get("argocd.argoproj.io/sync-options")
            assert options is not None and {"Prune=false", "Delete=false"} <= set(
                options.split(",")
            ), obj["metadata"]["name"]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("cluster", CLUSTERS)
def test_bootstrap_platform_objects_match_the_kubernetes_schema(cluster: str, version: str) -> None:
    failures = {}
    for obj in platform(cluster):
        name = f"{obj['kind']}/{obj['metadata'].get('namespace', '-')}/{obj['metadata']['name']}"
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            failures[name] = str(error)
    assert failures == {}


def test_bootstrap_validation_reaches_the_e2e_kubernetes_version() -> None:
    node = re.search(r"kindest/node:v(\d+\.\d+)\.\d+@", KIND_UP.read_text())
    assert node is not None and node[1] in KUBERNETES_VERSIONS


@pytest.mark.parametrize("cluster", CLUSTERS)
def test_bootstrap_argocd_configmaps_keep_argocd_labels(cluster: str) -> None:
    # Argo CD reads its settings only from ConfigMaps labelled part-of: argocd, in its namespace.
    for cm in of_kind(platform(cluster), "ConfigMap"):
        assert cm["metadata"]["namespace"] == "argocd"
        assert cm["metadata"]["labels"] == {
            "app.kubernetes.io/name": cm["metadata"]["name"],
            "app.kubernetes.io/part-of": "argocd",
        }


def test_bootstrap_cluster_folders_are_named_like_their_cluster() -> None:
    assert sorted(p.name for p in CLUSTERS_DIR.iterdir() if p.is_dir()) == CLUSTERS
    assert "kind" in CLUSTERS
