"""The boundary on a real cluster (kind + Argo CD, .github/workflows/e2e.yml): the kind cluster
runs dev and nothing else, Argo CD keeps its RBAC and settings from Git, dev's CI token syncs dev
and is refused everything else, and dev's syncs run as an account that can write only dev."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import pytest

from tests.e2e.argocd_api import ArgoCDApi, denied
from tests.e2e.cluster import (
    E2ESettings,
    application,
    exec_in_pod,
    list_objects,
    ready_pods,
    request_refresh,
    sync_and_health,
    wait_until,
)
from tests.e2e.function_change import RBAC_FILE, append_script

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("kube")]

ROOT, PLATFORM = "serverless-root", "serverless-platform"
DEPLOYER = "serverless-deployer"


@pytest.fixture(scope="module")
def admin(core: Any, e2e_settings: E2ESettings) -> ArgoCDApi:
    """An admin session on Argo CD's API (the install's initial admin password)."""
    secret = core.read_namespaced_secret(
        "argocd-initial-admin-secret", e2e_settings.argocd_namespace
    )
    password = base64.b64decode(secret.data["password"]).decode()
    api = ArgoCDApi(e2e_settings.argocd_url)
    wait_until(
        lambda: api.call("GET", "/api/version")[0],
        timeout=60,
        what=f"Argo CD's API at {e2e_settings.argocd_url}",
        accept=lambda status: status == 200,
    )
    return api.login("admin", password)


@pytest.fixture(scope="module")
def dev_ci(admin: ArgoCDApi, e2e_settings: E2ESettings) -> ArgoCDApi:
    """The API as a pipeline holding the dev project's `ci` token."""
    return admin.as_token(admin.project_token(e2e_settings.application, "ci"))


def test_boundary_cluster_runs_dev_only(core: Any, custom: Any, e2e_settings: E2ESettings) -> None:
    from kubernetes.client.exceptions import ApiException

    names = {a["metadata"]["name"] for a in list_objects(custom, e2e_settings, "applications")}
    assert names == {ROOT, PLATFORM, e2e_settings.application}
    projects = {p["metadata"]["name"] for p in list_objects(custom, e2e_settings, "appprojects")}
    assert projects == {"default", ROOT, PLATFORM, e2e_settings.application}
    for other in ("serverless-prod", "serverless-course"):
        with pytest.raises(ApiException) as missing:
            core.read_namespace(other)
        assert missing.value.status == 404, other


@pytest.mark.parametrize("name", [ROOT, PLATFORM])
def test_boundary_admin_applications_synced_and_healthy(
    custom: Any, e2e_settings: E2ESettings, name: str
) -> None:
    wait_until(
        lambda: sync_and_health(application(custom, e2e_settings, name)),
        timeout=300,
        what=f"{name} Synced and Healthy",
        accept=lambda state: state == ("Synced", "Healthy"),
    )


def test_boundary_platform_comes_from_git(
    core: Any, custom: Any, e2e_settings: E2ESettings
) -> None:
    ns = e2e_settings.argocd_namespace
    rbac = core.read_namespaced_config_map("argocd-rbac-cm", ns).data or {}
    assert "policy.serverless.csv" in rbac
    assert "policy.default" not in rbac
    settings = core.read_namespaced_config_map("argocd-cm", ns).data or {}
    assert settings.get("application.sync.impersonation.enabled") == "true"
    # Not enforced: other teams' projects without a service account keep syncing.
    assert settings.get("application.sync.impersonation.enforced") == "false"
    labels = core.read_namespace(e2e_settings.namespace).metadata.labels or {}
    assert labels.get("app.kubernetes.io/part-of") == "serverless"
    assert labels.get("pod-security.kubernetes.io/enforce") == "restricted"
    # The install's `default` project is left as it was made, for other teams.
    group, version = "argoproj.io", "v1alpha1"
    default = custom.get_namespaced_custom_object(group, version, ns, "appprojects", "default")
    assert default["spec"].get("sourceRepos") == ["*"]


def test_boundary_rbac_change_in_git_reaches_argocd(
    core: Any, custom: Any, e2e_settings: E2ESettings
) -> None:
    # After the one-time bootstrap, a commit is all it takes to change Argo CD's RBAC.
    marker = f"# e2e {uuid.uuid4().hex[:12]}"
    git_pod, *_ = wait_until(
        lambda: ready_pods(core, e2e_settings.git_namespace, e2e_settings.git_selector),
        timeout=60,
        what="the git server",
    )
    script = append_script(f"    {marker}\n", RBAC_FILE, "e2e: a comment in the RBAC policy")
    code, _, err = exec_in_pod(core, e2e_settings.git_namespace, git_pod, ["sh", "-c", script])
    assert code == 0, err
    request_refresh(custom, e2e_settings, PLATFORM)
    wait_until(
        lambda: (
            core.read_namespaced_config_map("argocd-rbac-cm", e2e_settings.argocd_namespace).data
            or {}
        ).get("policy.serverless.csv", ""),
        timeout=300,
        what=f"argocd-rbac-cm to carry {marker!r}",
        accept=lambda policy: marker in policy,
    )


def test_boundary_dev_ci_token_syncs_dev(dev_ci: ArgoCDApi, e2e_settings: E2ESettings) -> None:
    def attempt() -> tuple[int, Any]:
        status, body = dev_ci.sync(e2e_settings.application)
        # Refused would be final; "another operation is in progress" is worth a retry.
        assert not denied(status, body), body
        return status, body

    wait_until(
        attempt,
        timeout=180,
        what=f"dev's ci token to start a sync of {e2e_settings.application}",
        accept=lambda answer: answer[0] == 200,
        interval=10,
    )


@pytest.mark.parametrize("name", [ROOT, PLATFORM, "serverless-prod", "serverless-course"])
def test_boundary_dev_ci_token_is_refused_elsewhere(dev_ci: ArgoCDApi, name: str) -> None:
    # Existing admin Applications and environments this cluster does not even run: the same answer.
    for status, body in (dev_ci.sync(name), dev_ci.get(name)):
        assert denied(status, body), (name, status, body)


def test_boundary_dev_ci_token_cannot_make_other_tokens(
    dev_ci: ArgoCDApi, e2e_settings: E2ESettings
) -> None:
    status, body = dev_ci.call(
        "POST", f"/api/v1/projects/{e2e_settings.application}/roles/ci/token", {}
    )
    assert denied(status, body), (status, body)


def can(authz: Any, namespace: str, verb: str, group: str, resource: str, account_ns: str) -> bool:
    """Whether account_ns's deployer may verb resource in namespace, by Kubernetes RBAC."""
    from kubernetes import client

    review = client.V1SubjectAccessReview(
        spec=client.V1SubjectAccessReviewSpec(
            user=f"system:serviceaccount:{account_ns}:{DEPLOYER}",
            groups=[
                "system:serviceaccounts",
                f"system:serviceaccounts:{account_ns}",
                "system:authenticated",
            ],
            resource_attributes=client.V1ResourceAttributes(
                namespace=namespace, verb=verb, group=group, resource=resource
            ),
        )
    )
    return bool(authz.create_subject_access_review(review).status.allowed)


@pytest.mark.parametrize(
    ("namespace", "verb", "group", "resource", "expected"),
    [
        ("serverless-dev", "create", "apps", "deployments", True),
        ("serverless-dev", "delete", "", "configmaps", True),
        ("serverless-dev", "get", "", "secrets", False),
        ("serverless-dev", "create", "rbac.authorization.k8s.io", "roles", False),
        ("argocd", "update", "", "configmaps", False),
        ("argocd", "create", "argoproj.io", "applications", False),
        ("", "create", "", "namespaces", False),
    ],
)
def test_boundary_dev_syncs_run_as_an_account_held_to_dev(
    kube: Any, namespace: str, verb: str, group: str, resource: str, expected: bool
) -> None:
    from kubernetes import client

    authz = client.AuthorizationV1Api(kube)
    assert can(authz, namespace, verb, group, resource, "serverless-dev") is expected
