"""Render the Argo CD objects and the overlays they deploy, the way Argo CD itself does."""

from __future__ import annotations

import functools
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ARGOCD = REPO / "argocd"
SCHEMAS = Path(__file__).parent / "schemas"
ROOT = "serverless-root"

# Verbs Argo CD's controller uses on what it manages: read and watch for its cache and diff,
# the rest to apply, prune and replace.
CONTROLLER_VERBS = frozenset({"get", "list", "watch", "create", "update", "patch", "delete"})

# Built-in kinds without a namespace. Anything else an overlay renders is treated as namespaced.
CLUSTER_SCOPED = frozenset(
    {
        ("", "Namespace"),
        ("", "Node"),
        ("", "PersistentVolume"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
        ("storage.k8s.io", "StorageClass"),
        ("scheduling.k8s.io", "PriorityClass"),
        ("networking.k8s.io", "IngressClass"),
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
        ("apiregistration.k8s.io", "APIService"),
    }
)

Obj = dict[str, Any]


def kubectl() -> str:
    """Path of kubectl, or skip: kustomize rendering is what these tests are about."""
    path = shutil.which("kubectl")
    if path is None:
        pytest.skip(
            "kubectl is not installed (needed for `kubectl kustomize`)", allow_module_level=True
        )
    return path


@functools.cache
def _render(path: Path) -> tuple[Obj, ...]:
    result = subprocess.run(
        [kubectl(), "kustomize", str(path)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise AssertionError(f"`kubectl kustomize {path}` failed:\n{result.stderr}")
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def render(path: Path) -> list[Obj]:
    """Objects `kubectl kustomize path` renders (cached per path: the tree does not change)."""
    return list(_render(path.resolve()))


def group_kind(obj: Obj) -> tuple[str, str]:
    """(API group, kind) of an object; the core group is ""."""
    api_version = str(obj["apiVersion"])
    group = api_version.split("/")[0] if "/" in api_version else ""
    return group, str(obj["kind"])


def is_cluster_scoped(obj: Obj) -> bool:
    """Whether the object's kind lives outside namespaces."""
    return group_kind(obj) in CLUSTER_SCOPED


def resource_name(kind: str) -> str:
    """The plural resource name of a kind, as Kubernetes guesses it (UnsafeGuessKindToResource)."""
    lower = kind.lower()
    if lower == "endpoints":
        return lower
    if lower.endswith("s"):
        return lower + "es"
    if lower.endswith("y"):
        return lower[:-1] + "ies"
    return lower + "s"


def of_kind(objs: Iterable[Obj], kind: str) -> list[Obj]:
    """The objects of one kind."""
    return [obj for obj in objs if obj.get("kind") == kind]


CLUSTERS_DIR = ARGOCD / "clusters"
PLATFORM = "serverless-platform"
ADMIN_PROJECTS = frozenset({ROOT, PLATFORM})


def clusters() -> list[str]:
    """The clusters argocd/clusters/ describes (found without kubectl, for parametrizing)."""
    return sorted(p.name for p in CLUSTERS_DIR.iterdir() if (p / "kustomization.yaml").is_file())


def bootstrap(cluster: str) -> list[Obj]:
    """What `kubectl apply -k argocd/clusters/<cluster>` applies, and the root then keeps."""
    return render(CLUSTERS_DIR / cluster)


def root_application(cluster: str) -> Obj:
    """The app-of-apps of one cluster."""
    roots = [a for a in of_kind(bootstrap(cluster), "Application") if a["metadata"]["name"] == ROOT]
    assert len(roots) == 1, f"argocd/clusters/{cluster} must render exactly one {ROOT}"
    return roots[0]


def root_renders(cluster: str) -> list[Obj]:
    """What the cluster's root Application renders from its own source path."""
    return render(REPO / root_application(cluster)["spec"]["source"]["path"])


def platform(cluster: str) -> list[Obj]:
    """What the cluster's platform Application renders."""
    (app,) = [
        a for a in of_kind(bootstrap(cluster), "Application") if a["metadata"]["name"] == PLATFORM
    ]
    return render(REPO / app["spec"]["source"]["path"])


def applications(cluster: str) -> list[Obj]:
    """Every Application of one cluster: root, platform and environments."""
    return of_kind(bootstrap(cluster), "Application")


def environment_applications(cluster: str) -> list[Obj]:
    """The Applications that deploy an environment (an overlay of gitops/)."""
    return [a for a in applications(cluster) if a["metadata"]["name"] not in ADMIN_PROJECTS]


def all_applications() -> list[Obj]:
    """The Applications of every cluster (each name once)."""
    found: dict[str, Obj] = {}
    for cluster in clusters():
        for app in applications(cluster):
            found.setdefault(app["metadata"]["name"], app)
    return list(found.values())


def projects() -> dict[str, Obj]:
    """The AppProjects of every cluster, by name."""
    return {
        p["metadata"]["name"]: p
        for cluster in clusters()
        for p in of_kind(bootstrap(cluster), "AppProject")
    }


def project_of(app: Obj) -> Obj:
    """The AppProject an Application belongs to."""
    name = app["spec"]["project"]
    found = projects().get(name)
    assert found is not None, (
        f"{app['metadata']['name']}: project {name!r} is not defined in argocd/"
    )
    return found


def application_source(app: Obj) -> Path:
    """The repository folder an Application deploys."""
    return REPO / str(app["spec"]["source"]["path"])


def written_applications() -> list[Obj]:
    """The Application objects as written in argocd/ (before kustomize), found without kubectl.

    Tests are parametrized from these, so a manifest that fails to render fails its tests
    instead of stopping the collection of every test."""
    return [
        doc
        for path in sorted(ARGOCD.rglob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if isinstance(doc, dict) and doc.get("kind") == "Application"
    ]


def application_names() -> list[str]:
    """Names of the root, the platform and every environment Application."""
    return sorted(str(a["metadata"]["name"]) for a in written_applications())


def environment_names() -> list[str]:
    """Names of the Applications that deploy an environment."""
    return [name for name in application_names() if name not in ADMIN_PROJECTS]


def application(name: str) -> Obj:
    """One rendered Application by name (the same on every cluster that has it)."""
    found = [a for a in all_applications() if a["metadata"]["name"] == name]
    assert len(found) == 1, f"{name}: expected one rendered Application, found {len(found)}"
    return found[0]


def load_yaml(path: Path) -> Obj:
    """One YAML document from a file."""
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data
