"""A promotion on the e2e's kind cluster: a second environment pinned to a commit of the served
repository (as prod is pinned by scripts/promote.py) keeps rendering that commit while a later
commit on main reaches dev, and renders the later one only once it is promoted.

The static tests at the end run everywhere: the objects validate against Argo CD's schemas and the
environment's folder renders the function file and nothing else."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from tests.argocd.manifests import SCHEMAS
from tests.e2e.cluster import (
    E2ESettings,
    application,
    exec_in_pod,
    ready_pods,
    request_refresh,
    sync_and_health,
    wait_until,
)
from tests.e2e.function_change import BARE_REPOSITORY, FUNCTION_PATH, append_script
from tests.e2e.promotion import (
    APPLICATION,
    CODE_KEY,
    CODE_PREFIX,
    NAMESPACE,
    PATH,
    code_versions,
    deployer,
    namespace,
    project,
)
from tests.e2e.promotion import (
    application as promoted_application,
)
from tests.e2e.served_repo import REPO
from tests.manifests.rendered import kustomize_build

ARGOCD = ("argoproj.io", "v1alpha1")
REFRESH = "argocd.argoproj.io/refresh"


def _create(create: Any, patch: Any, body: dict[str, Any], *args: Any) -> None:
    """Create an object, or bring a leftover of an earlier run to the same spec."""
    from kubernetes.client.exceptions import ApiException

    try:
        create(*args, body)
    except ApiException as error:
        if error.status != 409:
            raise
        patch(*args, body["metadata"]["name"], body)


def _custom(custom: Any, plural: str, body: dict[str, Any]) -> None:
    group, version = ARGOCD
    _create(
        custom.create_namespaced_custom_object,
        custom.patch_namespaced_custom_object,
        body,
        group,
        version,
        "argocd",
        plural,
    )


def _git_pod(core: Any, settings: E2ESettings) -> str:
    pods = ready_pods(core, settings.git_namespace, settings.git_selector)
    assert pods, "the git server is not ready"
    return str(pods[0])


def _served_main(core: Any, settings: E2ESettings) -> str:
    """The commit main points to in the served repository."""
    code, out, err = exec_in_pod(
        core,
        settings.git_namespace,
        _git_pod(core, settings),
        ["git", f"--git-dir={BARE_REPOSITORY}", "rev-parse", "main"],
    )
    assert code == 0, err
    return out.strip()


def _revision(custom: Any, settings: E2ESettings, name: str) -> str:
    app = application(custom, settings, name) or {}
    return str(((app.get("status") or {}).get("sync") or {}).get("revision", ""))


def _versions(core: Any, name: str) -> list[str]:
    return code_versions(core.list_namespaced_config_map(name).items)


@pytest.fixture
def promoted(core: Any, custom: Any, kube: Any, e2e_settings: E2ESettings) -> Iterator[str]:
    """The second environment, pinned to the served repository's main of now; its commit id."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    dev = application(custom, e2e_settings, e2e_settings.application)
    assert dev is not None, "dev's Application does not exist"
    repo_url = dev["spec"]["source"]["repoURL"]
    pinned = _served_main(core, e2e_settings)
    rbac = client.RbacAuthorizationV1Api(kube)
    _create(core.create_namespace, core.patch_namespace, namespace())
    account, role, binding = deployer()
    _create(
        core.create_namespaced_service_account,
        core.patch_namespaced_service_account,
        account,
        NAMESPACE,
    )
    _create(rbac.create_namespaced_role, rbac.patch_namespaced_role, role, NAMESPACE)
    _create(
        rbac.create_namespaced_role_binding, rbac.patch_namespaced_role_binding, binding, NAMESPACE
    )
    _custom(custom, "appprojects", project(repo_url))
    _custom(custom, "applications", promoted_application(repo_url, pinned))
    yield pinned
    # Its Application goes first (its finalizer deletes the ConfigMaps as the deployer, so the
    # project and the account must outlive it), then the rest: a second run of the e2e finds the
    # cluster as the root left it (test_boundary.py).
    group, version = ARGOCD
    try:
        custom.delete_namespaced_custom_object(
            group, version, "argocd", "applications", APPLICATION
        )
    except ApiException as error:
        if error.status != 404:
            raise
    wait_until(
        lambda: application(custom, e2e_settings, APPLICATION),
        timeout=120,
        what=f"{APPLICATION} and what it deployed to be deleted",
        accept=lambda app: app is None,
    )
    for delete in (
        lambda: custom.delete_namespaced_custom_object(
            group, version, "argocd", "appprojects", APPLICATION
        ),
        lambda: core.delete_namespace(NAMESPACE),
    ):
        try:
            delete()
        except ApiException as error:
            if error.status != 404:
                raise


@pytest.mark.e2e
@pytest.mark.timeout(1800)
def test_promotion_pinned_environment_keeps_its_commit_until_promoted(
    core: Any, custom: Any, e2e_settings: E2ESettings, promoted: str
) -> None:
    pinned = promoted
    wait_until(
        lambda: (
            _revision(custom, e2e_settings, APPLICATION),
            sync_and_health(application(custom, e2e_settings, APPLICATION))[0],
        ),
        timeout=300,
        what=f"{APPLICATION} Synced at the pinned commit {pinned}",
        accept=lambda state: state == (pinned, "Synced"),
    )
    wait_until(
        lambda: _versions(core, NAMESPACE),
        timeout=120,
        what=f"the function's code in {NAMESPACE}",
    )

    # A commit on main after the promotion: the function file changes.
    marker = f"# e2e promotion marker {uuid.uuid4().hex[:12]}"
    code, out, err = exec_in_pod(
        core,
        e2e_settings.git_namespace,
        _git_pod(core, e2e_settings),
        ["sh", "-c", append_script(f"\n{marker}\n", FUNCTION_PATH, "e2e: after the promotion")],
    )
    assert code == 0, err
    later = out.strip().splitlines()[-1]
    assert later != pinned

    # dev follows main: it gets the commit.
    request_refresh(custom, e2e_settings, e2e_settings.application)
    wait_until(
        lambda: _revision(custom, e2e_settings, e2e_settings.application),
        timeout=300,
        what=f"dev to sync {later}",
        accept=lambda revision: revision == later,
    )
    wait_until(
        lambda: _versions(core, e2e_settings.namespace),
        timeout=120,
        what="dev's function code with the marker",
        accept=lambda versions: any(marker in v for v in versions),
    )

    # The pinned environment looked at Git again (the refresh is done once Argo CD removes the
    # annotation) and still runs the pinned commit, without the marker.
    request_refresh(custom, e2e_settings, APPLICATION)
    wait_until(
        lambda: (
            (application(custom, e2e_settings, APPLICATION) or {})
            .get("metadata", {})
            .get("annotations", {})
        ),
        timeout=120,
        what=f"Argo CD to refresh {APPLICATION}",
        accept=lambda annotations: REFRESH not in annotations,
    )
    assert _revision(custom, e2e_settings, APPLICATION) == pinned
    assert sync_and_health(application(custom, e2e_settings, APPLICATION))[0] == "Synced"
    versions = _versions(core, NAMESPACE)
    assert versions and not any(marker in v for v in versions)

    # The promotion: the pin moves to the later commit, and the environment renders it.
    group, version = ARGOCD
    custom.patch_namespaced_custom_object(
        group,
        version,
        "argocd",
        "applications",
        APPLICATION,
        {"spec": {"source": {"targetRevision": later}}},
    )
    wait_until(
        lambda: _revision(custom, e2e_settings, APPLICATION),
        timeout=300,
        what=f"{APPLICATION} to sync the promoted commit {later}",
        accept=lambda revision: revision == later,
    )
    wait_until(
        lambda: _versions(core, NAMESPACE),
        timeout=120,
        what=f"only the promoted function code in {NAMESPACE}",
        accept=lambda versions: bool(versions) and all(marker in v for v in versions),
    )


def test_promotion_environment_renders_the_function_code_only() -> None:
    # What it renders says which commit it runs: the function file, in its namespace, no pod.
    rendered = kustomize_build(REPO / PATH)
    assert {d["kind"] for d in rendered} == {"ConfigMap"}
    assert {d["metadata"]["namespace"] for d in rendered} == {NAMESPACE}
    (code,) = [d for d in rendered if d["metadata"]["name"].startswith(CODE_PREFIX)]
    assert code["data"][CODE_KEY] == (REPO / FUNCTION_PATH).read_text()


@pytest.mark.parametrize(
    ("kind", "schema"),
    [("AppProject", "appproject_v1alpha1.json"), ("Application", "application_v1alpha1.json")],
)
def test_promotion_objects_match_argocd_schemas(kind: str, schema: str) -> None:
    url = "git://git-server.gitops-e2e.svc.cluster.local/serverless.git"
    obj = project(url) if kind == "AppProject" else promoted_application(url, "a" * 40)
    validator = jsonschema.Draft7Validator(json.loads((SCHEMAS / schema).read_text()))
    assert [e.message for e in validator.iter_errors(obj)] == []


def test_promotion_environment_syncs_as_its_deployer_with_exactly_what_it_renders() -> None:
    # Impersonated like ours: its project names its deployer, whose Role writes only ConfigMaps.
    url = "git://example/serverless.git"
    spec = project(url)["spec"]
    (account,) = spec["destinationServiceAccounts"]
    assert account["defaultServiceAccount"] == "serverless-deployer"
    assert {(e["group"], e["kind"]) for e in spec["namespaceResourceWhitelist"]} == {
        (d["apiVersion"].rpartition("/")[0], d["kind"]) for d in kustomize_build(REPO / PATH)
    }
    _, role, _ = deployer()
    assert [r["resources"] for r in role["rules"]] == [["configmaps"]]
    assert promoted_application(url, "b" * 40)["spec"]["source"]["targetRevision"] == "b" * 40
