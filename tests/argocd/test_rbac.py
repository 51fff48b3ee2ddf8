"""Argo CD's RBAC (argocd-rbac-cm and project roles), evaluated: every line names something that
exists, and no role can sync an environment it should not. Plus the Kubernetes Role each
environment's syncs run as."""

from __future__ import annotations

import pytest

from tests.argocd.manifests import (
    ADMIN_PROJECTS,
    CONTROLLER_VERBS,
    Obj,
    all_applications,
    application_source,
    clusters,
    environment_applications,
    group_kind,
    is_cluster_scoped,
    of_kind,
    platform,
    projects,
    render,
    resource_name,
)
from tests.argocd.policy import (
    BUILTIN_ROLES,
    PROJECT_SCOPED,
    Grant,
    Permission,
    allowed,
    parse_csv,
    parse_line,
)

CLUSTERS = clusters()
# Kinds the deployer writes by name only, and may never list or read beyond what its overlay
# renders: Secrets. Kubernetes RBAC cannot limit `create` to a name; every other verb is limited.
BY_NAME = frozenset({("", "Secret")})
BY_NAME_VERBS = frozenset({"get", "update", "patch", "delete"})
DEV, PROD, COURSE = "serverless-dev", "serverless-prod", "serverless-course"
# Who may sync which environment: the whole point of the RBAC. A new subject fails the test until
# it is added here on purpose.
MAY_SYNC = {
    "role:serverless-viewer": set(),
    "role:serverless-dev-deployer": {DEV},
    "role:serverless-release-manager": {PROD, COURSE},
    "serverless-developers": {DEV},
    "serverless-release-managers": {PROD, COURSE},
    f"proj:{DEV}:ci": {DEV},
    f"proj:{DEV}:read-only": set(),
    f"proj:{PROD}:read-only": set(),
    f"proj:{COURSE}:read-only": set(),
}


def rbac_cm(cluster: str) -> Obj:
    (cm,) = [
        c
        for c in of_kind(platform(cluster), "ConfigMap")
        if c["metadata"]["name"] == "argocd-rbac-cm"
    ]
    return cm


def global_rules(cluster: str = "kind") -> list[Permission | Grant]:
    """Every rule of policy.csv and policy.<name>.csv, which Argo CD concatenates."""
    data = rbac_cm(cluster)["data"]
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


def all_rules() -> list[Permission | Grant]:
    return global_rules() + [rule for _, _, rule in project_rules()]


def subjects() -> set[str]:
    return {rule.subject for rule in all_rules()}


def app_objects() -> list[str]:
    """`<project>/<app>` of every Application, plus a not-yet-existing one in every project."""
    return [f"{a['spec']['project']}/{a['metadata']['name']}" for a in all_applications()] + [
        f"{name}/new-app" for name in projects()
    ]


def syncable(rules: list[Permission | Grant], subject: str) -> set[str]:
    """The projects in which subject may sync some Application."""
    return {
        obj.split("/")[0]
        for obj in app_objects()
        if allowed(rules, subject, "applications", "sync", obj)
    }


def test_rbac_leaves_the_default_policy_alone() -> None:
    # Argo CD 3's empty default gives a logged-in user nothing; role:readonly would widen it.
    for cluster in CLUSTERS:
        assert "policy.default" not in rbac_cm(cluster)["data"]


@pytest.mark.parametrize("subject", sorted(MAY_SYNC))
def test_rbac_subject_syncs_exactly_its_environments(subject: str) -> None:
    assert syncable(all_rules(), subject) == MAY_SYNC[subject]


def test_rbac_every_subject_is_accounted_for() -> None:
    groups = {
        r.subject
        for r in global_rules()
        if isinstance(r, Grant) and not r.subject.startswith("role:")
    }
    assert subjects() | groups == set(MAY_SYNC)


def test_rbac_nobody_syncs_or_changes_an_admin_application() -> None:
    for subject in MAY_SYNC:
        for obj in app_objects():
            if obj.split("/")[0] in ADMIN_PROJECTS | {"default"}:
                for action in ("get", "sync", "update", "delete", "override", "action/x"):
                    assert not allowed(all_rules(), subject, "applications", action, obj), (
                        subject,
                        action,
                        obj,
                    )


def test_rbac_evaluator_catches_a_wide_rule() -> None:
    # The check above can fail: a rule on */* would let dev's CI sync prod.
    wide = [*all_rules(), parse_line(f"p, proj:{DEV}:ci, applications, sync, */*, allow")]
    assert syncable(wide, f"proj:{DEV}:ci") >= {PROD, COURSE}
    denied = [
        *all_rules(),
        parse_line(f"p, role:serverless-dev-deployer, applications, sync, {DEV}/*, deny"),
    ]
    assert syncable(denied, "serverless-developers") == set()


def check_object(rule: Permission) -> None:
    """Project-scoped resources name `<existing project>/<existing app or *>`."""
    if rule.resource not in PROJECT_SCOPED:
        return
    project, sep, app = rule.obj.partition("/")
    assert sep, f"{rule}: object must be <project>/<application>"
    assert project in projects(), f"{rule}: no project {project!r}"
    apps = {a["metadata"]["name"] for a in all_applications() if a["spec"]["project"] == project}
    assert app == "*" or app in apps, f"{rule}: no application {app!r} in {project}"


def test_rbac_policy_lines_name_existing_projects_and_roles() -> None:
    rules = global_rules()
    defined_roles = {r.subject for r in rules if isinstance(r, Permission)} | BUILTIN_ROLES
    for rule in rules:
        if isinstance(rule, Permission):
            check_object(rule)
            assert rule.subject.startswith("role:serverless-"), rule
        else:
            assert rule.role in defined_roles, f"{rule}: role {rule.role!r} has no permissions"


def test_rbac_is_the_same_on_every_cluster() -> None:
    assert all(rbac_cm(c)["data"] == rbac_cm("kind")["data"] for c in CLUSTERS)


def test_rbac_every_policy_line_is_commented() -> None:
    # Each rule says why it exists: a comment line sits above every group of rules.
    text = rbac_cm("kind")["data"]["policy.serverless.csv"]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for index, line in enumerate(lines):
        if not line.startswith("#"):
            assert any(prev.startswith("#") for prev in lines[max(0, index - 6) : index]), line


def test_rbac_project_role_policies_stay_inside_their_project() -> None:
    # Argo CD rejects a project role whose policy names another subject or project.
    for project, role, rule in project_rules():
        assert isinstance(rule, Permission)
        assert rule.subject == f"proj:{project}:{role}"
        assert rule.obj.split("/")[0] == project
        check_object(rule)


def test_rbac_only_dev_has_a_ci_role() -> None:
    roles = {(project, role) for project, role, _ in project_rules()}
    assert {(p, r) for p, r in roles if r == "ci"} == {(DEV, "ci")}


@pytest.mark.parametrize(
    "line",
    [
        "p, role:x, applications, get",  # too few fields
        "p, role:x, application, get, serverless-dev/*, allow",  # unknown resource
        "p, role:x, applications, deploy, serverless-dev/*, allow",  # unknown action
        "p, role:x, applications, get, serverless-dev/*, maybe",  # unknown effect
        "x, role:x, role:y",
    ],
)
def test_rbac_parser_rejects_malformed_lines(line: str) -> None:
    with pytest.raises(ValueError):
        parse_line(line)


def deployer_role(cluster: str, namespace: str) -> Obj:
    roles = [
        r for r in of_kind(platform(cluster), "Role") if r["metadata"]["namespace"] == namespace
    ]
    assert len(roles) == 1, f"expected one Role in {namespace}"
    return roles[0]


def environments() -> list[tuple[str, Obj]]:
    return [(c, app) for c in CLUSTERS for app in environment_applications(c)]


ENVIRONMENTS = [(c, a["metadata"]["name"]) for c, a in environments()]


def rendered_kinds(app_name: str) -> set[tuple[str, str]]:
    (app,) = [a for _, a in environments() if a["metadata"]["name"] == app_name]
    return {group_kind(o) for o in render(application_source(app)) if not is_cluster_scoped(o)}


def rendered_names(app_name: str, group: str, kind: str) -> set[str]:
    (app,) = [a for _, a in environments() if a["metadata"]["name"] == app_name]
    return {
        str(o["metadata"]["name"])
        for o in render(application_source(app))
        if group_kind(o) == (group, kind)
    }


def granted(rules: list[Obj], group: str, kind: str, name: str | None) -> set[str]:
    """The verbs rules grant on one object of a kind (name=None: a request without a name, such
    as list, watch or create, which a rule limited to resourceNames never grants)."""
    verbs: set[str] = set()
    for rule in rules:
        if group not in rule["apiGroups"] or resource_name(kind) not in rule["resources"]:
            continue
        names = rule.get("resourceNames")
        if not names or (name is not None and name in names):
            verbs |= set(rule["verbs"])
    return verbs


@pytest.mark.parametrize(("cluster", "namespace"), ENVIRONMENTS)
def test_rbac_deployer_may_write_every_rendered_kind(cluster: str, namespace: str) -> None:
    rules = deployer_role(cluster, namespace)["rules"]
    missing = []
    for group, kind in sorted(rendered_kinds(namespace)):
        if (group, kind) in BY_NAME:
            # Applied and pruned by name; created without one.
            for name in sorted(rendered_names(namespace, group, kind)):
                lacking = (BY_NAME_VERBS | {"create"}) - granted(rules, group, kind, name)
                if lacking:
                    missing.append(f"{group or 'core'}/{resource_name(kind)}/{name}: {lacking}")
            continue
        verbs = granted(rules, group, kind, None)
        if not verbs >= CONTROLLER_VERBS:
            missing.append(
                f"{group or 'core'}/{resource_name(kind)}: {sorted(CONTROLLER_VERBS - verbs)}"
            )
    assert missing == []


@pytest.mark.parametrize(("cluster", "namespace"), ENVIRONMENTS)
def test_rbac_deployer_reads_no_secret_it_does_not_render(cluster: str, namespace: str) -> None:
    # As the e2e asks the API server: no `get secrets` without a name, no list, no watch; only the
    # Secrets the overlay renders, by name (dev's Redis password). prod and course render none.
    rules = deployer_role(cluster, namespace)["rules"]
    assert granted(rules, "", "Secret", None) <= {"create"}
    for rule in rules:
        if "secrets" in rule["resources"] and rule.get("resourceNames"):
            assert set(rule["resourceNames"]) <= rendered_names(namespace, "", "Secret")
    assert granted(rules, "", "Secret", "some-other-secret") <= {"create"}
    if not rendered_names(namespace, "", "Secret"):
        assert granted(rules, "", "Secret", None) == set()


@pytest.mark.parametrize(("cluster", "namespace"), ENVIRONMENTS)
def test_rbac_deployer_may_do_nothing_else(cluster: str, namespace: str) -> None:
    allowed_resources = {(g, resource_name(k)) for g, k in rendered_kinds(namespace)}
    for rule in deployer_role(cluster, namespace)["rules"]:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"]
        granted = {(g, r) for g in rule["apiGroups"] for r in rule["resources"]}
        assert granted <= allowed_resources, granted - allowed_resources


@pytest.mark.parametrize(("cluster", "namespace"), ENVIRONMENTS)
def test_rbac_deployer_is_the_account_the_project_syncs_as(cluster: str, namespace: str) -> None:
    (entry,) = projects()[namespace]["spec"]["destinationServiceAccounts"]
    account = entry["defaultServiceAccount"]
    objs = platform(cluster)
    assert [
        s["metadata"]["name"]
        for s in of_kind(objs, "ServiceAccount")
        if s["metadata"]["namespace"] == namespace
    ] == [account]
    role = deployer_role(cluster, namespace)
    bindings = [
        b
        for b in of_kind(objs, "RoleBinding")
        if b["metadata"]["namespace"] == namespace
        and b["roleRef"]
        == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": role["metadata"]["name"],
        }
    ]
    assert len(bindings) == 1
    assert [
        (s["kind"], s["name"], s.get("namespace", namespace)) for s in bindings[0]["subjects"]
    ] == [("ServiceAccount", account, namespace)]


def test_rbac_resource_name_follows_kubernetes_pluralisation() -> None:
    assert [resource_name(k) for k in ("Deployment", "Ingress", "NetworkPolicy", "Endpoints")] == [
        "deployments",
        "ingresses",
        "networkpolicies",
        "endpoints",
    ]
