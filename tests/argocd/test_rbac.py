"""Argo CD's own RBAC (argocd-rbac-cm and project roles) and the Kubernetes Role that lets a
namespace-scoped Argo CD manage our namespaces."""

from __future__ import annotations

import pytest

from tests.argocd.manifests import (
    CONTROLLER_VERBS,
    Obj,
    all_applications,
    application_source,
    bootstrap,
    group_kind,
    is_cluster_scoped,
    of_kind,
    projects,
    render,
    resource_name,
    written_applications,
)
from tests.argocd.policy import (
    BUILTIN_ROLES,
    PROJECT_SCOPED,
    Grant,
    Permission,
    parse_csv,
    parse_line,
)

CONTROLLER_SA = ("argocd-application-controller", "argocd")


def rbac_cm() -> Obj:
    (cm,) = [
        c for c in of_kind(bootstrap(), "ConfigMap") if c["metadata"]["name"] == "argocd-rbac-cm"
    ]
    return cm


def global_rules() -> list[Permission | Grant]:
    """Every rule of policy.csv and policy.<name>.csv, which Argo CD concatenates."""
    data = rbac_cm()["data"]
    keys = [
        k for k in data if k == "policy.csv" or (k.startswith("policy.") and k.endswith(".csv"))
    ]
    assert keys, "argocd-rbac-cm sets no policy"
    return [rule for key in keys for rule in parse_csv(data[key])]


def project_rules() -> list[tuple[str, str, Permission | Grant]]:
    """(project, role, rule) for every policy line of every project role."""
    return [
        (name, role["name"], parse_line(line))
        for name, project in projects().items()
        for role in project["spec"].get("roles", [])
        for line in role.get("policies", [])
    ]


def check_object(rule: Permission) -> None:
    """Project-scoped resources name `<existing project>/<app or *>`."""
    if rule.resource not in PROJECT_SCOPED:
        return
    project, sep, app = rule.obj.partition("/")
    assert sep, f"{rule}: object must be <project>/<application>"
    assert project in projects(), f"{rule}: no project {project!r}"
    apps = {a["metadata"]["name"] for a in all_applications() if a["spec"]["project"] == project}
    assert app == "*" or app in apps, f"{rule}: no application {app!r} in {project}"


def test_rbac_default_policy_is_read_only() -> None:
    assert rbac_cm()["data"]["policy.default"] == "role:readonly"


def test_rbac_policy_lines_name_existing_projects_and_roles() -> None:
    rules = global_rules()
    defined_roles = {r.subject for r in rules if isinstance(r, Permission)} | BUILTIN_ROLES
    for rule in rules:
        if isinstance(rule, Permission):
            check_object(rule)
        else:
            assert rule.role in defined_roles, f"{rule}: role {rule.role!r} has no permissions"


def test_rbac_deployer_role_is_scoped_to_the_project() -> None:
    rules = [r for r in global_rules() if isinstance(r, Permission)]
    deployer = [r for r in rules if r.subject == "role:serverless-deployer"]
    assert {(r.resource, r.action) for r in deployer} >= {
        ("applications", "get"),
        ("applications", "sync"),
    }
    assert all(r.obj.startswith("serverless/") for r in deployer)


def test_rbac_every_policy_line_is_commented() -> None:
    # Each rule says why it exists: a comment line sits above every group of rules.
    text = rbac_cm()["data"]["policy.serverless.csv"]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for index, line in enumerate(lines):
        if not line.startswith("#"):
            above = lines[:index]
            assert above and any(prev.startswith("#") for prev in above[-5:]), line


def test_rbac_project_roles_read_only_and_ci() -> None:
    for project in projects().values():
        assert {role["name"] for role in project["spec"]["roles"]} == {"read-only", "ci"}
    actions: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for project_name, role_name, rule in project_rules():
        assert isinstance(rule, Permission)
        actions.setdefault((project_name, role_name), set()).add((rule.resource, rule.action))
    for name in projects():
        assert actions[(name, "ci")] >= {("applications", "get"), ("applications", "sync")}
        assert {action for _, action in actions[(name, "read-only")]} == {"get"}


def test_rbac_project_role_policies_stay_inside_their_project() -> None:
    # Argo CD rejects a project role whose policy names another subject or project.
    for project, role, rule in project_rules():
        assert isinstance(rule, Permission)
        assert rule.subject == f"proj:{project}:{role}"
        assert rule.obj.split("/")[0] == project
        check_object(rule)


@pytest.mark.parametrize(
    "line",
    [
        "p, role:x, applications, get",  # too few fields
        "p, role:x, application, get, serverless/*, allow",  # unknown resource
        "p, role:x, applications, deploy, serverless/*, allow",  # unknown action
        "p, role:x, applications, get, serverless/*, maybe",  # unknown effect
        "x, role:x, role:y",
    ],
)
def test_rbac_parser_rejects_malformed_lines(line: str) -> None:
    with pytest.raises(ValueError):
        parse_line(line)


def target_namespaces() -> list[str]:
    """Where the Applications deploy, other than Argo CD's own namespace (as written)."""
    return sorted(
        {a["spec"]["destination"]["namespace"] for a in written_applications()} - {"argocd"}
    )


def rendered_kinds() -> set[tuple[str, str]]:
    """(group, kind) of every namespaced object the overlays render."""
    return {
        group_kind(obj)
        for app in all_applications()
        if app["spec"]["destination"]["namespace"] != "argocd"
        for obj in render(application_source(app))
        if not is_cluster_scoped(obj)
    }


def role_in(namespace: str) -> Obj:
    roles = [r for r in of_kind(bootstrap(), "Role") if r["metadata"]["namespace"] == namespace]
    assert len(roles) == 1, f"expected one Role in {namespace}"
    return roles[0]


@pytest.mark.parametrize("namespace", target_namespaces())
def test_rbac_role_grants_controller_verbs_on_every_rendered_kind(namespace: str) -> None:
    rules = role_in(namespace)["rules"]
    missing = []
    for group, kind in sorted(rendered_kinds()):
        verbs: set[str] = set()
        for rule in rules:
            if group in rule["apiGroups"] and resource_name(kind) in rule["resources"]:
                verbs |= set(rule["verbs"])
        if not verbs >= CONTROLLER_VERBS:
            missing.append(
                f"{group or 'core'}/{resource_name(kind)}: {sorted(CONTROLLER_VERBS - verbs)}"
            )
    assert missing == []


@pytest.mark.parametrize("namespace", target_namespaces())
def test_rbac_role_writes_nothing_beyond_the_rendered_kinds(namespace: str) -> None:
    allowed = {(g, resource_name(k)) for g, k in rendered_kinds()}
    for rule in role_in(namespace)["rules"]:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"]
        if set(rule["verbs"]) & {"create", "update", "patch", "delete"}:
            granted = {(g, r) for g in rule["apiGroups"] for r in rule["resources"]}
            assert granted <= allowed, granted - allowed


@pytest.mark.parametrize("namespace", target_namespaces())
def test_rbac_role_is_bound_to_the_application_controller(namespace: str) -> None:
    role = role_in(namespace)
    bindings = [
        b
        for b in of_kind(bootstrap(), "RoleBinding")
        if b["metadata"]["namespace"] == namespace
        and b["roleRef"]
        == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": role["metadata"]["name"],
        }
    ]
    assert len(bindings) == 1
    subjects = {
        (s["name"], s["namespace"])
        for s in bindings[0]["subjects"]
        if s["kind"] == "ServiceAccount"
    }
    assert subjects == {CONTROLLER_SA}


def test_rbac_resource_name_follows_kubernetes_pluralisation() -> None:
    assert [resource_name(k) for k in ("Deployment", "Ingress", "NetworkPolicy", "Endpoints")] == [
        "deployments",
        "ingresses",
        "networkpolicies",
        "endpoints",
    ]
