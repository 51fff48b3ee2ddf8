"""`kubectl apply -k argocd/` applies a valid, complete set of objects."""

from __future__ import annotations

import kubernetes_validate

from tests.argocd.manifests import ROOT, Obj, bootstrap, group_kind

# The oldest Kubernetes minor we validate against: what a cluster of a year ago still runs.
KUBERNETES_VERSION = "1.30"


def builtin(objs: list[Obj]) -> list[Obj]:
    return [o for o in objs if group_kind(o)[0] != "argoproj.io"]


def test_bootstrap_applies_project_rbac_namespaces_and_root() -> None:
    kinds = sorted((o["kind"], o["metadata"]["name"]) for o in bootstrap())
    assert ("AppProject", "serverless") in kinds
    assert ("Application", ROOT) in kinds
    assert ("ConfigMap", "argocd-rbac-cm") in kinds
    namespaces = {name for kind, name in kinds if kind == "Namespace"}
    assert namespaces == {"serverless-dev", "serverless-prod", "serverless-course"}
    assert [k for k, _ in kinds].count("Role") == len(namespaces)
    assert [k for k, _ in kinds].count("RoleBinding") == len(namespaces)
    # Applications other than the root come from the root, not from the bootstrap.
    assert [name for kind, name in kinds if kind == "Application"] == [ROOT]


def test_bootstrap_builtin_objects_match_the_kubernetes_schema() -> None:
    objects = builtin(bootstrap())
    assert objects
    failures = {}
    for obj in objects:
        name = f"{obj['kind']}/{obj['metadata'].get('namespace', '-')}/{obj['metadata']['name']}"
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            failures[name] = str(error)
    assert failures == {}


def test_bootstrap_rbac_patch_keeps_argocd_labels() -> None:
    # Argo CD reads its settings only from ConfigMaps labelled part-of: argocd, in its namespace.
    (cm,) = [o for o in bootstrap() if o["kind"] == "ConfigMap"]
    assert cm["metadata"]["namespace"] == "argocd"
    assert cm["metadata"]["labels"] == {
        "app.kubernetes.io/name": "argocd-rbac-cm",
        "app.kubernetes.io/part-of": "argocd",
    }
