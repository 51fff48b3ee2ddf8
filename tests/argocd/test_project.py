"""The AppProjects: the boundary Argo CD enforces. Each Application is checked against its project
(a mismatch is what "permission denied" / "not permitted in project" means), and each project
against the rule it exists for: only admin projects reach Argo CD's namespace."""

from __future__ import annotations

from fnmatch import fnmatchcase

import pytest

from tests.argocd.manifests import (
    ADMIN_PROJECTS,
    PLATFORM,
    ROOT,
    Obj,
    application,
    application_names,
    application_source,
    environment_names,
    group_kind,
    is_cluster_scoped,
    project_of,
    projects,
    render,
)

APP_NAMES = application_names()
ENVIRONMENTS = environment_names()
IN_CLUSTER = "https://kubernetes.default.svc"


def glob_permits(patterns: list[str], value: str) -> bool:
    """Argo CD's matching for project lists: globs, `!` entries deny."""
    if any(p.startswith("!") and fnmatchcase(value, p[1:]) for p in patterns):
        return False
    return any(not p.startswith("!") and fnmatchcase(value, p) for p in patterns)


def destination_permitted(project: Obj, server: str, namespace: str) -> bool:
    """Whether the project lets an Application deploy to namespace on server."""
    return any(
        fnmatchcase(server, d.get("server", "")) and fnmatchcase(namespace, d["namespace"])
        for d in project["spec"].get("destinations", [])
    )


def kind_whitelisted(entries: list[dict[str, str]], group: str, kind: str, name: str) -> bool:
    """Whether a group/kind(/name) whitelist (globs allowed) contains the object."""
    return any(
        fnmatchcase(group, e["group"])
        and fnmatchcase(kind, e["kind"])
        and fnmatchcase(name, e.get("name", "*"))
        for e in entries
    )


def environment_projects() -> dict[str, Obj]:
    return {n: p for n, p in projects().items() if n not in ADMIN_PROJECTS | {"default"}}


def test_project_sources_are_this_repository_only() -> None:
    for name, project in projects().items():
        repos = project["spec"]["sourceRepos"]
        assert len(repos) == (0 if name == "default" else 1), name
        assert all("*" not in repo for repo in repos)


def test_project_no_project_but_the_admin_ones_can_target_argocd() -> None:
    # Argo CD's docs: a project that can deploy into Argo CD's namespace is effectively admin.
    reach = {
        name
        for name, project in projects().items()
        for server in (IN_CLUSTER, "https://any.example")
        if destination_permitted(project, server, "argocd")
    }
    assert reach == ADMIN_PROJECTS


def test_project_the_check_would_see_a_wildcard_destination() -> None:
    wildcard = {"spec": {"destinations": [{"server": "*", "namespace": "*"}]}}
    assert destination_permitted(wildcard, IN_CLUSTER, "argocd")


def test_project_root_writes_only_argocd_kinds_in_argocd() -> None:
    spec = projects()[ROOT]["spec"]
    assert spec["destinations"] == [{"server": IN_CLUSTER, "namespace": "argocd"}]
    assert spec["clusterResourceWhitelist"] == []
    assert {(e["group"], e["kind"]) for e in spec["namespaceResourceWhitelist"]} == {
        ("argoproj.io", "Application"),
        ("argoproj.io", "AppProject"),
    }


def test_project_platform_writes_settings_namespaces_and_deployers_only() -> None:
    spec = projects()[PLATFORM]["spec"]
    assert {(e["group"], e["kind"]) for e in spec["namespaceResourceWhitelist"]} == {
        ("", "ConfigMap"),
        ("", "ServiceAccount"),
        ("rbac.authorization.k8s.io", "Role"),
        ("rbac.authorization.k8s.io", "RoleBinding"),
    }
    # Namespaces by name: the environments' and nothing else.
    assert {(e["kind"], e.get("name")) for e in spec["clusterResourceWhitelist"]} == {
        ("Namespace", name) for name in environment_projects()
    }


def test_project_admin_projects_have_no_roles() -> None:
    # Only Argo CD admins may sync them: no project role, and no global rule names them
    # (tests/argocd/test_rbac.py).
    for name in ADMIN_PROJECTS:
        assert projects()[name]["spec"].get("roles", []) == [], name


def test_project_default_is_left_as_the_install_made_it() -> None:
    # Other teams on a shared instance may use `default`; emptying it would stop their apps. Ours
    # never name it (test_project_permits_application_destination).
    assert "default" not in projects()


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_project_environment_reaches_its_namespace_only(name: str) -> None:
    app = application(name)
    project = project_of(app)
    assert project["metadata"]["name"] == name
    assert project["spec"]["destinations"] == [{"server": IN_CLUSTER, "namespace": name}]
    assert project["spec"]["clusterResourceWhitelist"] == []
    assert "sourceNamespaces" not in project["spec"]


@pytest.mark.parametrize("name", APP_NAMES)
def test_project_permits_application_destination(name: str) -> None:
    app = application(name)
    dest = app["spec"]["destination"]
    assert app["spec"]["project"] not in ("", "default")
    assert destination_permitted(project_of(app), dest["server"], dest["namespace"]), dest


@pytest.mark.parametrize("name", APP_NAMES)
def test_project_permits_application_repository(name: str) -> None:
    app = application(name)
    assert glob_permits(project_of(app)["spec"]["sourceRepos"], app["spec"]["source"]["repoURL"])


@pytest.mark.parametrize("name", APP_NAMES)
def test_project_whitelists_every_object_the_application_renders(name: str) -> None:
    app = application(name)
    spec = project_of(app)["spec"]
    rendered = render(application_source(app))
    assert rendered, f"{app['spec']['source']['path']} renders nothing"
    missing = set()
    for obj in rendered:
        group, kind = group_kind(obj)
        whitelist = (
            spec.get("clusterResourceWhitelist", [])
            if is_cluster_scoped(obj)
            else spec.get("namespaceResourceWhitelist", [])
        )
        if not kind_whitelisted(whitelist, group, kind, obj["metadata"]["name"]):
            missing.add(f"{group or 'core'}/{kind}/{obj['metadata']['name']}")
    assert missing == set(), "rendered but not whitelisted in the project"


@pytest.mark.parametrize("name", APP_NAMES)
def test_project_permits_every_namespace_the_application_writes(name: str) -> None:
    # A resource with its own metadata.namespace is checked against the destinations too.
    app = application(name)
    project = project_of(app)
    dest = app["spec"]["destination"]
    namespaces = {
        obj.get("metadata", {}).get("namespace") or dest["namespace"]
        for obj in render(application_source(app))
        if not is_cluster_scoped(obj)
    }
    denied = {ns for ns in namespaces if not destination_permitted(project, dest["server"], ns)}
    assert denied == set()


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_project_namespace_whitelist_is_exactly_what_the_environment_renders(name: str) -> None:
    # No kind is allowed "just in case": each entry is rendered by the environment's overlay.
    app = application(name)
    rendered = {group_kind(o) for o in render(application_source(app)) if not is_cluster_scoped(o)}
    listed = {
        (e["group"], e["kind"]) for e in project_of(app)["spec"]["namespaceResourceWhitelist"]
    }
    assert listed == rendered


@pytest.mark.parametrize("name", sorted(set(APP_NAMES)))
def test_project_names_a_sync_account_for_the_application_destination(name: str) -> None:
    # With impersonation on (argocd/platform/argocd-cm.yaml), a sync without one fails.
    app = application(name)
    dest = app["spec"]["destination"]
    accounts = [
        entry["defaultServiceAccount"]
        for entry in project_of(app)["spec"]["destinationServiceAccounts"]
        if fnmatchcase(dest["server"], entry["server"])
        and fnmatchcase(dest["namespace"], entry["namespace"])
    ]
    assert accounts, f"{name}: no destinationServiceAccounts entry for {dest}"
    expected = (
        "argocd:argocd-application-controller"
        if app["spec"]["project"] in ADMIN_PROJECTS
        else "serverless-deployer"
    )
    assert accounts[0] == expected
