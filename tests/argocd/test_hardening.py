"""What this repository sets on an Argo CD instance leaves other teams' projects working, and what
it deploys to prod and course is held against accidents: Pod Security enforced, the promoted
Applications' removal confirmed by hand, CODEOWNERS on what reaches a cluster."""

from __future__ import annotations

from fnmatch import fnmatchcase

import pytest

from tests.argocd.manifests import (
    ADMIN_PROJECTS,
    REPO,
    application,
    clusters,
    environment_names,
    of_kind,
    platform,
    projects,
)

CONFIRMED = ("serverless-prod", "serverless-course")
CODEOWNERS = REPO / ".github" / "CODEOWNERS"
IMPERSONATION = "application.sync.impersonation.enabled"
ENFORCED = "application.sync.impersonation.enforced"


def argocd_cm(cluster: str) -> dict[str, str]:
    (cm,) = [
        c for c in of_kind(platform(cluster), "ConfigMap") if c["metadata"]["name"] == "argocd-cm"
    ]
    data: dict[str, str] = cm["data"]
    return data


@pytest.mark.parametrize("cluster", clusters())
def test_hardening_argocd_settings_leave_other_projects_syncing(cluster: str) -> None:
    # Impersonation is instance-wide. Enforced, it would stop every project that names no account
    # for its destination (another team's, `default`): with enforcement off those sync as before.
    assert argocd_cm(cluster) == {IMPERSONATION: "true", ENFORCED: "false"}


def test_hardening_every_project_of_ours_is_impersonated_anyway() -> None:
    # Enforcement off makes a missing entry fall back to the controller's account: so no
    # environment project may miss one, for any destination it permits. (Impersonation matches the
    # Application's destination: the admin projects' Applications deploy to `argocd`, whose entry
    # names the controller itself, test_project.py.)
    for name, project in projects().items():
        if name in ADMIN_PROJECTS:
            continue
        accounts = project["spec"].get("destinationServiceAccounts", [])
        for destination in project["spec"]["destinations"]:
            assert any(
                fnmatchcase(destination["server"], a["server"])
                and fnmatchcase(destination["namespace"], a["namespace"])
                for a in accounts
            ), f"{name}: {destination} would sync as the application controller"


@pytest.mark.parametrize("name", CONFIRMED)
def test_hardening_promoted_applications_are_pruned_or_deleted_only_when_confirmed(
    name: str,
) -> None:
    # A bad commit to a cluster's root (the environment's folder dropped from its list) must not
    # delete prod: the root's prune of the Application waits for a confirmation.
    options = application(name)["metadata"]["annotations"]["argocd.argoproj.io/sync-options"]
    assert {"Prune=confirm", "Delete=confirm"} <= {o.strip() for o in options.split(",")}


def test_hardening_dev_follows_main_without_confirmation() -> None:
    # dev is rebuilt from Git at will; asking there would only teach people to click "confirm".
    annotations = application("serverless-dev")["metadata"].get("annotations", {})
    assert "confirm" not in annotations.get("argocd.argoproj.io/sync-options", "")


@pytest.mark.parametrize("cluster", clusters())
def test_hardening_environment_namespaces_enforce_restricted_pod_security(cluster: str) -> None:
    namespaces = of_kind(platform(cluster), "Namespace")
    assert namespaces
    for namespace in namespaces:
        labels = namespace["metadata"]["labels"]
        for mode in ("enforce", "warn", "audit"):
            assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted", mode


def codeowners() -> list[tuple[str, list[str]]]:
    """(pattern, owners) for every rule of .github/CODEOWNERS."""
    rules = []
    for line in CODEOWNERS.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            pattern, *owners = line.split()
            rules.append((pattern, owners))
    return rules


def owners_of(path: str) -> list[str]:
    """Who owns a repository path: the last matching rule, as GitHub reads CODEOWNERS."""
    found: list[str] = []
    for pattern, owners in codeowners():
        if pattern.endswith("/"):
            directory = pattern.strip("/")
            matches = path == directory or path.startswith(directory + "/")
        else:
            matches = fnmatchcase(path, pattern.lstrip("/"))
        if matches:
            found = owners
    return found


@pytest.mark.parametrize(
    "path",
    [
        "argocd/environments/prod/application.yaml",
        "argocd/environments/course/application.yaml",
        "argocd/platform/argocd-rbac-cm.yaml",
        "argocd/repository/repository.yaml",
        "gitops/overlays/prod/kustomization.yaml",
        "gitops/overlays/course/kustomization.yaml",
        ".github/workflows/promote.yml",
    ],
)
def test_hardening_codeowners_cover_what_reaches_prod_and_course(path: str) -> None:
    assert (REPO / path).is_file()
    owners = owners_of(path)
    assert owners and all(o.startswith("@") for o in owners), path


def test_hardening_codeowners_rules_name_existing_paths() -> None:
    for pattern, owners in codeowners():
        assert (REPO / pattern.strip("/")).exists(), pattern
        assert owners, pattern


def test_hardening_codeowners_owner_is_the_repository_organisation() -> None:
    # A fork changes the repository file, the registry and this file together.
    url = (REPO / "argocd" / "repository" / "repository.yaml").read_text()
    for _, owners in codeowners():
        for owner in owners:
            organisation = owner.lstrip("@").split("/")[0]
            assert f"github.com/{organisation}/" in url


def test_hardening_environments_are_the_ones_checked() -> None:
    assert set(CONFIRMED) < set(environment_names())
