"""One Application per environment, each set up for hands-off GitOps, and per cluster a root and
a platform Application that manage the rest."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.argocd.manifests import (
    ADMIN_PROJECTS,
    ARGOCD,
    PLATFORM,
    REPO,
    ROOT,
    all_applications,
    application,
    application_names,
    clusters,
    environment_names,
    load_yaml,
    of_kind,
    projects,
    render,
)

ENVIRONMENTS = environment_names()
REPOSITORY = load_yaml(ARGOCD / "repository" / "repository.yaml")["data"]
FINALIZER = "resources-finalizer.argocd.argoproj.io"


def test_applications_one_per_overlay() -> None:
    overlays = sorted(p.name for p in (REPO / "gitops" / "overlays").iterdir() if p.is_dir())
    assert overlays, "gitops/overlays has no overlay"
    assert sorted(f"serverless-{name}" for name in overlays) == ENVIRONMENTS
    for name in overlays:
        assert (
            application(f"serverless-{name}")["spec"]["source"]["path"] == f"gitops/overlays/{name}"
        )


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_applications_deploy_into_their_own_namespace(name: str) -> None:
    # The overlay sets the same namespace, so nothing lands where the project would refuse it.
    app = application(name)
    assert app["spec"]["destination"]["namespace"] == name
    rendered = render(REPO / app["spec"]["source"]["path"])
    assert {o["metadata"].get("namespace") for o in rendered} == {name}


@pytest.mark.parametrize("name", application_names())
def test_applications_use_an_explicit_project(name: str) -> None:
    app = application(name)
    assert app["spec"]["project"] not in ("", "default")
    assert app["metadata"]["namespace"] == "argocd"
    # Each Application has a project of its own name: the root's, the platform's, an environment's.
    assert app["spec"]["project"] == name


@pytest.mark.parametrize("name", application_names())
def test_applications_sync_automatically_with_prune_self_heal_and_retry(name: str) -> None:
    app = application(name)
    policy = app["spec"]["syncPolicy"]
    assert policy["automated"] == {"prune": True, "selfHeal": True}
    retry = policy["retry"]
    assert retry["limit"] >= 3
    assert {"duration", "factor", "maxDuration"} <= set(retry["backoff"])
    assert 1 <= app["spec"]["revisionHistoryLimit"] <= 20


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_applications_leave_namespaces_to_the_platform_and_clean_up(name: str) -> None:
    # CreateNamespace would need a cluster-scoped right the environment's project does not have.
    app = application(name)
    assert not any(
        o.startswith("CreateNamespace") for o in app["spec"]["syncPolicy"]["syncOptions"]
    )
    assert FINALIZER in app["metadata"]["finalizers"]


@pytest.mark.parametrize("name", sorted(ADMIN_PROJECTS))
def test_applications_admin_ones_do_not_cascade_deletion(name: str) -> None:
    # Deleting the root or the platform must not take the environments or the RBAC with it.
    assert FINALIZER not in application(name)["metadata"].get("finalizers", [])


def test_applications_use_no_sync_waves_without_an_application_health_check() -> None:
    # A wave orders Applications only when argocd-cm has a health check for Application; that is an
    # instance-wide setting (argocd/README.md, "Sharing an Argo CD instance"), so neither is used:
    # the environments' retries outlast the platform's first sync.
    waves = {
        a["metadata"]["name"]
        for a in all_applications()
        if "argocd.argoproj.io/sync-wave" in a["metadata"].get("annotations", {})
    }
    settings = load_yaml(ARGOCD / "platform" / "argocd-cm.yaml")["data"]
    health = "resource.customizations.health.argoproj.io_Application"
    assert waves == set() or health in settings


def test_applications_environments_outlast_the_platform_first_sync() -> None:
    # Without a wave, an environment may sync before its namespace and deployer exist; its retries
    # (backing off up to maxDuration) must last longer than the platform's own.
    platform_retry = application(PLATFORM)["spec"]["syncPolicy"]["retry"]
    for name in ENVIRONMENTS:
        retry = application(name)["spec"]["syncPolicy"]["retry"]
        assert retry["limit"] > platform_retry["limit"], name


@pytest.mark.parametrize("name", application_names())
def test_applications_tell_the_ui_what_they_are(name: str) -> None:
    info = {entry["name"]: entry["value"] for entry in application(name)["spec"]["info"]}
    assert info.get("About")
    if name in ENVIRONMENTS:
        assert ":310" in info["Dashboard"] or "NodePort 310" in info["Dashboard"]


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_applications_dashboard_info_matches_the_node_port(name: str) -> None:
    app = application(name)
    services = [
        s
        for s in of_kind(render(REPO / app["spec"]["source"]["path"]), "Service")
        if s["spec"].get("type") == "NodePort"
    ]
    assert len(services) == 1
    (service,) = services
    (port,) = [p["nodePort"] for p in service["spec"]["ports"]]
    info = {entry["name"]: entry["value"] for entry in app["spec"]["info"]}
    assert str(port) in info["Dashboard"]
    link = service["metadata"].get("annotations", {}).get("link.argocd.argoproj.io/external-link")
    # A localhost link is right only where kind publishes the port: the dev environment.
    if link is not None:
        assert name == "serverless-dev" and link == f"http://localhost:{port}"
        assert "localhost" in info["Dashboard"]
    else:
        assert "localhost" not in info["Dashboard"]


def test_applications_repository_is_named_in_one_file_only() -> None:
    url = REPOSITORY["url"]
    files = [
        p.relative_to(REPO).as_posix()
        for folder in ("argocd", "gitops", "apps", ".github")
        for p in sorted((REPO / folder).rglob("*"))
        if p.is_file() and p.suffix in (".yaml", ".yml", ".json") and url in p.read_text()
    ]
    assert files == ["argocd/repository/repository.yaml"]


def test_applications_repository_is_a_real_lowercase_https_url() -> None:
    url = REPOSITORY["url"]
    assert url.startswith("https://github.com/") and url.endswith(".git")
    assert url == url.lower()
    assert "owner" not in url.lower().split("/")[3], "the placeholder owner is still there"


def test_applications_and_projects_follow_the_repository_file() -> None:
    for app in all_applications():
        assert app["spec"]["source"]["repoURL"] == REPOSITORY["url"]
        labels = app["metadata"].get("labels", {})
        if labels.get("serverless-redis-platform/promotion") == "revision":
            # prod and course run the commit they were promoted to (test_promoted_revisions.py).
            assert re.fullmatch(r"[0-9a-f]{40}", app["spec"]["source"]["targetRevision"])
        else:
            assert app["spec"]["source"]["targetRevision"] == REPOSITORY["revision"]
    for name, project in projects().items():
        assert project["spec"]["sourceRepos"] == ([] if name == "default" else [REPOSITORY["url"]])


@pytest.mark.parametrize("cluster", clusters())
def test_applications_local_config_is_not_applied(cluster: str) -> None:
    # local-config: the ConfigMaps that carry the URL and the cluster name never reach it.
    names = {o["metadata"]["name"] for o in render(ARGOCD / "clusters" / cluster)}
    assert not names & {"gitops-repository", "argocd-cluster"}


def test_applications_source_paths_exist() -> None:
    for app in all_applications():
        assert (REPO / Path(app["spec"]["source"]["path"]) / "kustomization.yaml").is_file()
    assert {ROOT, PLATFORM} <= set(application_names())
