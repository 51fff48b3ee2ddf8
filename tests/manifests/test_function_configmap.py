"""The function's ConfigMap is generated from the function file (dev) or its promoted copy (prod,
course), and rolls the runtime on change."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.manifests.rendered import (
    FUNCTION_DIR,
    GITOPS,
    OVERLAYS,
    REPO_ROOT,
    Doc,
    container,
    find,
    kustomize_build,
    pod_spec,
    render_overlay,
)


def _function_volume_source(docs: list[Doc]) -> str:
    runtime = find(docs, "Deployment", "serverless-runtime")
    mount = container(runtime, "runtime")["volumeMounts"][0]
    volume = next(v for v in pod_spec(runtime)["volumes"] if v["name"] == mount["name"])
    name: str = volume["configMap"]["name"]
    return name


# dev runs the function as it is on the branch; prod and course the copy promoted to them.
SOURCES = {
    "dev": FUNCTION_DIR,
    "prod": GITOPS / "overlays" / "prod" / "function",
    "course": GITOPS / "overlays" / "course" / "function",
}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_function_configmap_carries_the_file_byte_for_byte(overlay: str) -> None:
    docs = render_overlay(overlay)
    configmap = find(docs, "ConfigMap", "pyfile")
    assert configmap["data"]["pyfile"].encode() == (SOURCES[overlay] / "usermodule.py").read_bytes()
    # Hash-suffixed, and the runtime mounts exactly that generation.
    assert configmap["metadata"]["name"] != "pyfile"
    assert _function_volume_source(docs) == configmap["metadata"]["name"]


def test_function_change_rolls_the_runtime_deployment(tmp_path: Path) -> None:
    # A copy of the tree the overlays need, with the function edited.
    for part in ("gitops", "apps/functions/resource-monitor"):
        shutil.copytree(REPO_ROOT / part, tmp_path / part)
    before = kustomize_build(GITOPS / "overlays" / "dev")
    edited = tmp_path / "apps/functions/resource-monitor/usermodule.py"
    edited.write_text(edited.read_text() + "\n# a new version of the function\n")

    after = kustomize_build(tmp_path / "gitops/overlays/dev")

    old_name = find(before, "ConfigMap", "pyfile")["metadata"]["name"]
    new_name = find(after, "ConfigMap", "pyfile")["metadata"]["name"]
    assert new_name != old_name
    # The pod template names the new ConfigMap, so the Deployment rolls out new pods.
    assert _function_volume_source(after) == new_name
    assert find(after, "ConfigMap", "pyfile")["data"]["pyfile"] == edited.read_text()
