"""The e2e's test-only second environment: everything Argo CD needs to run tests/e2e/promoted at a
pinned commit of the served repository, as prod runs gitops/overlays/prod at the commit its
promotion wrote (argocd/environments/prod/application.yaml). Built here, not in argocd/, because no
real cluster runs it: the kind cluster's root stays dev only."""

from __future__ import annotations

from typing import Any

NAMESPACE = "serverless-promoted"
APPLICATION = "serverless-promoted"
PATH = "tests/e2e/promoted"
DEPLOYER = "serverless-deployer"
IN_CLUSTER = "https://kubernetes.default.svc"
CODE_KEY = "usermodule.py"
CODE_PREFIX = "resource-monitor-code-"
LABELS = {"app.kubernetes.io/part-of": "serverless-e2e"}

Obj = dict[str, Any]


def namespace() -> Obj:
    """The environment's namespace, held to the restricted Pod Security profile like ours."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": NAMESPACE,
            "labels": {**LABELS, "pod-security.kubernetes.io/enforce": "restricted"},
        },
    }


def deployer() -> list[Obj]:
    """The account its syncs run as (impersonation) and what it may write: ConfigMaps only."""
    meta = {"name": DEPLOYER, "namespace": NAMESPACE, "labels": LABELS}
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": meta,
            "automountServiceAccountToken": False,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta,
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["configmaps"],
                    "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
                }
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": DEPLOYER},
            "subjects": [{"kind": "ServiceAccount", "name": DEPLOYER, "namespace": NAMESPACE}],
        },
    ]


def project(repo_url: str) -> Obj:
    """Its AppProject: the served repository, its namespace, ConfigMaps, synced as its deployer."""
    destination = {"server": IN_CLUSTER, "namespace": NAMESPACE}
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AppProject",
        "metadata": {"name": APPLICATION, "namespace": "argocd", "labels": LABELS},
        "spec": {
            "description": "e2e only: an environment pinned to a commit, as prod is.",
            "sourceRepos": [repo_url],
            "destinations": [destination],
            "destinationServiceAccounts": [{**destination, "defaultServiceAccount": DEPLOYER}],
            "clusterResourceWhitelist": [],
            "namespaceResourceWhitelist": [{"group": "", "kind": "ConfigMap"}],
        },
    }


def application(repo_url: str, revision: str) -> Obj:
    """Its Application, pinned to one commit (a promotion writes the same field for prod)."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {
            "name": APPLICATION,
            "namespace": "argocd",
            "labels": LABELS,
            # Deleting it (the test's cleanup) deletes what it deployed.
            "finalizers": ["resources-finalizer.argocd.argoproj.io"],
        },
        "spec": {
            "project": APPLICATION,
            "source": {"repoURL": repo_url, "targetRevision": revision, "path": PATH},
            "destination": {"server": IN_CLUSTER, "namespace": NAMESPACE},
            "syncPolicy": {
                "automated": {"prune": True, "selfHeal": True},
                "retry": {
                    "limit": 5,
                    "backoff": {"duration": "5s", "factor": 2, "maxDuration": "1m"},
                },
            },
        },
    }


def code_versions(config_maps: list[Any]) -> list[str]:
    """The function files in an environment's resource-monitor code ConfigMaps (V1ConfigMap)."""
    return [
        (cm.data or {}).get(CODE_KEY, "")
        for cm in config_maps
        if cm.metadata.name.startswith(CODE_PREFIX) and cm.metadata.deletion_timestamp is None
    ]
