"""Render the Kustomize overlays with the machine's kubectl and look objects up in the result."""

from __future__ import annotations

import base64
import copy
import functools
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
GITOPS = REPO_ROOT / "gitops"
FUNCTIONS_DIR = REPO_ROOT / "apps" / "functions"
FUNCTION_DIR = FUNCTIONS_DIR / "resource-monitor"
COURSE_DEPLOYMENT = REPO_ROOT / "tests" / "fixtures" / "course-deployment.yaml"

OVERLAYS = ("dev", "prod", "course")
NAMESPACES = {"dev": "serverless-dev", "prod": "serverless-prod", "course": "serverless-course"}
OUTPUT_KEYS = {
    "dev": "resource-monitor",
    "prod": "resource-monitor",
    "course": "resource-monitor-course",
}
# The Deployment that runs resource-monitor (the dashboard's function) in each overlay: the
# function's own name, except in course, which keeps the course deployment's contract.
RUNTIMES = {"dev": "resource-monitor", "prod": "resource-monitor", "course": "serverless-runtime"}
# Every function's Deployment carries this label (gitops/components/function-pod selects by it).
RUNTIME_LABEL = ("app.kubernetes.io/name", "serverless-runtime")
# Kustomize's generator suffix: a dash and ten characters of the content hash.
_HASH_SUFFIX = re.compile(r"-[a-z0-9]{10}$")

Doc = dict[str, Any]


class MissingReference(LookupError):
    """A pod refers to a ConfigMap, Secret or key that the rendered objects do not hold."""


def kubectl() -> str:
    """Path of kubectl (its built-in kustomize renders the overlays), or skip the test."""
    path = shutil.which("kubectl")
    if path is None:
        pytest.skip("kubectl is not installed: it renders the Kustomize overlays (kustomize v5)")
    return path


def kustomize_build(directory: Path) -> list[Doc]:
    """`kubectl kustomize DIRECTORY`, parsed into a list of objects."""
    result = subprocess.run(
        [kubectl(), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if result.returncode != 0:
        raise AssertionError(f"kustomize build {directory} failed:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@functools.cache
def _render_overlay(name: str) -> tuple[Doc, ...]:
    return tuple(kustomize_build(GITOPS / "overlays" / name))


def render_overlay(name: str) -> list[Doc]:
    """The rendered objects of one overlay (rendered once per session; a copy to change freely)."""
    return copy.deepcopy(list(_render_overlay(name)))


def course_deployment() -> list[Doc]:
    """The course's deployment file, as the course hands it out."""
    return [doc for doc in yaml.safe_load_all(COURSE_DEPLOYMENT.read_text()) if doc]


def find(docs: list[Doc], kind: str, name: str) -> Doc:
    """The object of this kind whose name is NAME, else a generated NAME-<hash>."""
    exact = _by_exact_name(docs, kind, name)
    if exact is not None:
        return exact
    for doc in docs:
        if doc["kind"] == kind and _base_name(doc["metadata"]["name"]) == name:
            return doc
    raise MissingReference(f"no {kind} named {name!r}")


def _base_name(name: str) -> str:
    return _HASH_SUFFIX.sub("", name)


def _by_exact_name(docs: list[Doc], kind: str, name: str) -> Doc | None:
    # Pods refer to the rendered (hash-suffixed) names, exactly as the API server sees them.
    return next(
        (d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name),
        None,
    )


def workloads(docs: list[Doc]) -> Iterator[Doc]:
    """Every object that carries a pod template."""
    for doc in docs:
        if doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"):
            yield doc


def function_runtimes(docs: list[Doc]) -> list[Doc]:
    """Every Deployment that runs a function (labelled as the runtime)."""
    key, value = RUNTIME_LABEL
    return [
        d
        for d in docs
        if d["kind"] == "Deployment" and d["metadata"].get("labels", {}).get(key) == value
    ]


def pod_spec(workload: Doc) -> Doc:
    """The pod spec of a workload's template."""
    spec: Doc = workload["spec"]["template"]["spec"]
    return spec


def container(workload: Doc, name: str | None = None) -> Doc:
    """The named container of a workload (or its only one)."""
    containers: list[Doc] = pod_spec(workload)["containers"]
    if name is None:
        assert len(containers) == 1, "name the container: the pod has several"
        return containers[0]
    return next(c for c in containers if c["name"] == name)


def _configmap_data(cm: Doc) -> dict[str, bytes]:
    data = {key: value.encode() for key, value in (cm.get("data") or {}).items()}
    for key, value in (cm.get("binaryData") or {}).items():
        data[key] = base64.b64decode(value)
    return data


def _secret_data(secret: Doc) -> dict[str, bytes]:
    data = {key: base64.b64decode(value) for key, value in (secret.get("data") or {}).items()}
    for key, value in (secret.get("stringData") or {}).items():
        data[key] = value.encode()
    return data


def _source_data(docs: list[Doc], ref: Doc, kind: str) -> dict[str, bytes] | None:
    """The data of the ConfigMap/Secret a reference names; None for an absent optional one."""
    found = _by_exact_name(docs, kind, ref["name"])
    if found is None:
        if ref.get("optional", False):
            return None
        raise MissingReference(f"{kind} {ref['name']!r} is not among the rendered objects")
    return _configmap_data(found) if kind == "ConfigMap" else _secret_data(found)


def resolve_env(ctr: Doc, docs: list[Doc]) -> dict[str, str]:
    """The environment the kubelet would give this container: envFrom first, then env on top."""
    env: dict[str, str] = {}
    for source in ctr.get("envFrom", []):
        prefix = source.get("prefix", "")
        if "configMapRef" in source:
            data = _source_data(docs, source["configMapRef"], "ConfigMap")
        elif "secretRef" in source:
            data = _source_data(docs, source["secretRef"], "Secret")
        else:
            raise NotImplementedError(f"envFrom source {source}")
        for key, value in (data or {}).items():
            env[prefix + key] = value.decode()
    for var in ctr.get("env", []):
        if "valueFrom" not in var:
            env[var["name"]] = var.get("value", "")
            continue
        value_from = var["valueFrom"]
        if "configMapKeyRef" in value_from:
            ref, kind = value_from["configMapKeyRef"], "ConfigMap"
        elif "secretKeyRef" in value_from:
            ref, kind = value_from["secretKeyRef"], "Secret"
        else:
            raise NotImplementedError(f"env source {value_from}")
        data = _source_data(docs, ref, kind)
        if data is None:
            continue
        if ref["key"] not in data:
            if ref.get("optional", False):
                continue
            raise MissingReference(f"{kind} {ref['name']!r} has no key {ref['key']!r}")
        env[var["name"]] = data[ref["key"]].decode()
    return env


def configmap_volume_files(volume: Doc, docs: list[Doc]) -> dict[str, tuple[bytes, int]]:
    """The files a ConfigMap volume projects: path in the volume -> (content, mode)."""
    source = volume["configMap"]
    found = _by_exact_name(docs, "ConfigMap", source["name"])
    if found is None:
        if source.get("optional", False):
            return {}
        raise MissingReference(f"ConfigMap {source['name']!r} is not among the rendered objects")
    data = _configmap_data(found)
    default_mode = int(source.get("defaultMode", 0o644))
    items = source.get("items")
    if items is None:
        return {key: (value, default_mode) for key, value in data.items()}
    files = {}
    for item in items:
        if item["key"] not in data:
            raise MissingReference(f"ConfigMap {source['name']!r} has no key {item['key']!r}")
        files[item["path"]] = (data[item["key"]], int(item.get("mode", default_mode)))
    return files
