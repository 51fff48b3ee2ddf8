"""The AppProject permits exactly what the Applications deploy: the cause of "permission denied"
is a mismatch between the two, so every Application is checked against its project here."""

from __future__ import annotations

from fnmatch import fnmatchcase

import pytest

from tests.argocd.manifests import (
    ROOT,
    Obj,
    application,
    application_names,
    application_source,
    group_kind,
    is_cluster_scoped,
    project_of,
    projects,
    render,
    written_applications,
)

APP_NAMES = application_names()
CREATE_NAMESPACE = sorted(
    a["metadata"]["name"]
    for a in written_applications()
    if "CreateNamespace=true" in a["spec"].get("syncPolicy", {}).get("syncOptions", [])
)


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


def kind_whitelisted(entries: list[dict[str, str]], group: str, kind: str) -> bool:
    """Whether a group/kind whitelist (globs allowed) contains the kind."""
    return any(fnmatchcase(group, e["group"]) and fnmatchcase(kind, e["kind"]) for e in entries)


def test_project_sources_are_this_repository_only() -> None:
    for project in projects().values():
        repos = project["spec"]["sourceRepos"]
        assert len(repos) == 1
        assert "*" not in repos[0]


@pytest.mark.parametrize("name", APP_NAMES)
def test_project_permits_application_destination(name: str) -> None:
    app = application(name)
    project = project_of(app)
    dest = app["spec"]["destination"]
    assert destination_permitted(project, dest["server"], dest["namespace"]), dest


@pytest.mark.parametrize("name", APP_NAMES)
def test_project_permits_application_repository(name: str) -> None:
    app = application(name)
    assert glob_permits(project_of(app)["spec"]["sourceRepos"], app["spec"]["source"]["repoURL"])


@pytest.mark.parametrize("name", APP_NAMES)
def test_project_whitelists_every_kind_the_application_renders(name: str) -> None:
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
        if not kind_whitelisted(whitelist, group, kind):
            missing.add(f"{group or 'core'}/{kind}")
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


@pytest.mark.parametrize("name", CREATE_NAMESPACE)
def test_project_whitelists_namespace_when_application_creates_it(name: str) -> None:
    app = application(name)
    cluster_whitelist = project_of(app)["spec"].get("clusterResourceWhitelist", [])
    assert kind_whitelisted(cluster_whitelist, "", "Namespace")


def test_project_cluster_whitelist_is_namespace_only() -> None:
    for project in projects().values():
        assert project["spec"]["clusterResourceWhitelist"] == [{"group": "", "kind": "Namespace"}]


def test_project_namespace_whitelist_is_exactly_what_is_deployed() -> None:
    # No kind is allowed "just in case": each entry is rendered by some Application's source.
    rendered = {
        group_kind(obj)
        for name in APP_NAMES
        for obj in render(application_source(application(name)))
        if not is_cluster_scoped(obj)
    }
    for project in projects().values():
        listed = {(e["group"], e["kind"]) for e in project["spec"]["namespaceResourceWhitelist"]}
        assert listed == rendered


def test_project_root_creates_every_child_application_in_its_own_namespace() -> None:
    root = application(ROOT)
    children = render(application_source(root))
    assert {c["metadata"]["name"] for c in children} == set(APP_NAMES) - {ROOT}
    assert {c["metadata"]["namespace"] for c in children} == {
        root["spec"]["destination"]["namespace"]
    }
