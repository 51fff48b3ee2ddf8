"""One Application per overlay, each set up for hands-off GitOps, and a root that manages them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.argocd.manifests import (
    ARGOCD,
    REPO,
    ROOT,
    all_applications,
    application,
    application_names,
    bootstrap,
    child_applications,
    child_names,
    load_yaml,
    of_kind,
    render,
)

CHILDREN = child_names()
REPOSITORY = load_yaml(ARGOCD / "repository" / "repository.yaml")["data"]
FINALIZER = "resources-finalizer.argocd.argoproj.io"


def test_applications_one_per_overlay() -> None:
    overlays = sorted(p.name for p in (REPO / "gitops" / "overlays").iterdir() if p.is_dir())
    assert overlays, "gitops/overlays has no overlay"
    paths = sorted(a["spec"]["source"]["path"] for a in child_applications())
    assert paths == [f"gitops/overlays/{name}" for name in overlays]
    assert {a["metadata"]["name"] for a in child_applications()} == {
        f"serverless-{name}" for name in overlays
    }


@pytest.mark.parametrize("name", CHILDREN)
def test_applications_deploy_into_their_own_namespace(name: str) -> None:
    # The overlay sets the same namespace, so nothing lands where the project would refuse it.
    app = application(name)
    assert app["spec"]["destination"]["namespace"] == name
    rendered = render(REPO / app["spec"]["source"]["path"])
    assert {o["metadata"].get("namespace") for o in rendered if o["kind"] != "Namespace"} == {name}


@pytest.mark.parametrize("name", application_names())
def test_applications_use_an_explicit_project(name: str) -> None:
    app = application(name)
    assert app["spec"]["project"] not in ("", "default")
    assert app["metadata"]["namespace"] == "argocd"


@pytest.mark.parametrize("name", application_names())
def test_applications_sync_automatically_with_prune_self_heal_and_retry(name: str) -> None:
    app = application(name)
    policy = app["spec"]["syncPolicy"]
    assert policy["automated"] == {"prune": True, "selfHeal": True}
    retry = policy["retry"]
    assert retry["limit"] >= 3
    assert {"duration", "factor", "maxDuration"} <= set(retry["backoff"])
    assert 1 <= app["spec"]["revisionHistoryLimit"] <= 20


@pytest.mark.parametrize("name", CHILDREN)
def test_applications_create_namespace_and_clean_up_after_themselves(name: str) -> None:
    app = application(name)
    assert "CreateNamespace=true" in app["spec"]["syncPolicy"]["syncOptions"]
    assert FINALIZER in app["metadata"]["finalizers"]


def test_applications_root_does_not_cascade_deletion() -> None:
    # Deleting the root must not take every environment down with it.
    root = application(ROOT)
    assert FINALIZER not in root["metadata"].get("finalizers", [])


@pytest.mark.parametrize("name", application_names())
def test_applications_tell_the_ui_what_they_are(name: str) -> None:
    app = application(name)
    info = {entry["name"]: entry["value"] for entry in app["spec"]["info"]}
    assert info.get("About")
    if app["metadata"]["name"] != ROOT:
        assert ":310" in info["Dashboard"]


@pytest.mark.parametrize("name", CHILDREN)
def test_applications_dashboard_link_matches_the_node_port(name: str) -> None:
    # The Argo CD UI links to the dashboard through the Service's external-link annotation.
    app = application(name)
    services = [
        s
        for s in of_kind(render(REPO / app["spec"]["source"]["path"]), "Service")
        if s["spec"].get("type") == "NodePort"
    ]
    assert len(services) == 1
    (service,) = services
    link = service["metadata"]["annotations"]["link.argocd.argoproj.io/external-link"]
    (port,) = [p["nodePort"] for p in service["spec"]["ports"]]
    assert link.endswith(f":{port}")
    info = {entry["name"]: entry["value"] for entry in app["spec"]["info"]}
    assert f":{port}" in info["Dashboard"]


def test_applications_repository_is_named_in_one_file_only() -> None:
    url = REPOSITORY["url"]
    files = [
        p.relative_to(REPO).as_posix()
        for folder in ("argocd", "gitops", "apps", ".github")
        for p in sorted((REPO / folder).rglob("*"))
        if p.is_file() and p.suffix in (".yaml", ".yml", ".json") and url in p.read_text()
    ]
    assert files == ["argocd/repository/repository.yaml"]


def test_applications_and_project_follow_the_repository_file() -> None:
    for app in all_applications():
        assert app["spec"]["source"]["repoURL"] == REPOSITORY["url"]
        assert app["spec"]["source"]["targetRevision"] == REPOSITORY["revision"]
    (project,) = of_kind(bootstrap(), "AppProject")
    assert project["spec"]["sourceRepos"] == [REPOSITORY["url"]]


def test_applications_repository_file_is_not_applied() -> None:
    # local-config: the ConfigMap that carries the URL never reaches the cluster.
    names = {o["metadata"]["name"] for o in bootstrap()}
    names |= {o["metadata"]["name"] for o in render(ARGOCD / "apps")}
    assert "gitops-repository" not in names


def test_applications_source_paths_exist() -> None:
    for app in all_applications():
        assert (REPO / Path(app["spec"]["source"]["path"]) / "kustomization.yaml").is_file()
