"""scripts/promote.py: dev gets the digests CI pushed; prod and course get exactly what dev runs,
images and function, in a change a pull request carries."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.manifests.images import INITIAL_DIGEST
from tests.manifests.rendered import REPO_ROOT, Doc, find, kustomize_build

SCRIPT = REPO_ROOT / "scripts" / "promote.py"
RUNTIME = "sha256:" + "1a" * 32
DASHBOARD = "sha256:" + "2b" * 32


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of what the overlays render from."""
    for part in ("gitops", "apps/functions/resource-monitor"):
        shutil.copytree(REPO_ROOT / part, tmp_path / part)
    return tmp_path


def promote(tree: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--root", str(tree)],
        capture_output=True,
        text=True,
        check=False,
    )


def images(docs: list[Doc]) -> set[str]:
    return {
        c["image"]
        for d in docs
        if d["kind"] == "Deployment"
        for c in d["spec"]["template"]["spec"]["containers"]
        if c["name"] != "redis"
    }


def function_text(docs: list[Doc]) -> str:
    text: str = find(docs, "ConfigMap", "pyfile")["data"]["pyfile"]
    return text


def test_promotion_dev_pins_the_new_digests_and_keeps_comments(tree: Path) -> None:
    overlay = tree / "gitops/overlays/dev/kustomization.yaml"
    comments = [line for line in overlay.read_text().splitlines() if line.lstrip().startswith("#")]
    result = promote(tree, "dev", "--runtime-digest", RUNTIME, "--dashboard-digest", DASHBOARD)
    assert result.returncode == 0, result.stderr
    rendered = images(kustomize_build(tree / "gitops/overlays/dev"))
    assert {i.rsplit("/", 1)[-1] for i in rendered} == {
        f"serverless-runtime@{RUNTIME}",
        f"monitoring-dashboard@{DASHBOARD}",
    }
    assert [
        line for line in overlay.read_text().splitlines() if line.lstrip().startswith("#")
    ] == comments
    assert RUNTIME in result.stdout and DASHBOARD in result.stdout


def test_promotion_prod_gets_dev_images_and_function_only_when_promoted(tree: Path) -> None:
    function = tree / "apps/functions/resource-monitor/usermodule.py"
    assert promote(tree, "dev", "--runtime-digest", RUNTIME, "--dashboard-digest", DASHBOARD)
    function.write_text(function.read_text() + "\n# version 2\n")
    before = kustomize_build(tree / "gitops/overlays/prod")
    # The edit reached dev at once, and prod not yet: neither its function nor its images.
    assert function_text(kustomize_build(tree / "gitops/overlays/dev")).endswith("# version 2\n")
    assert not function_text(before).endswith("# version 2\n")
    assert all(i.endswith(INITIAL_DIGEST) for i in images(before))

    result = promote(tree, "prod")
    assert result.returncode == 0, result.stderr
    after = kustomize_build(tree / "gitops/overlays/prod")
    assert function_text(after) == function.read_text()
    assert images(after) == images(kustomize_build(tree / "gitops/overlays/dev"))
    # The course environment is promoted on its own.
    assert not function_text(kustomize_build(tree / "gitops/overlays/course")).endswith(
        "# version 2\n"
    )
    blob = subprocess.run(
        ["git", "hash-object", str(function)], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert f"git blob `{blob}`" in result.stdout


@pytest.mark.parametrize("env", ["prod", "course"])
def test_promotion_copies_are_complete_function_components(env: str) -> None:
    # In the repository: each promoted copy generates `pyfile` from the module beside it, as the
    # function's own Component does (the copy may lag behind it: that is what promotion is for).
    copy = REPO_ROOT / "gitops/overlays" / env / "function"
    assert sorted(p.name for p in copy.iterdir()) == ["kustomization.yaml", "usermodule.py"]
    component = yaml.safe_load((copy / "kustomization.yaml").read_text())
    assert component["kind"] == "Component"
    (generator,) = component["configMapGenerator"]
    assert generator["name"] == "pyfile"
    assert generator["files"] == ["pyfile=usermodule.py"]


@pytest.mark.parametrize(
    "args",
    [
        ["dev"],
        ["dev", "--runtime-digest", "sha256:abc", "--dashboard-digest", DASHBOARD],
        ["prod", "--runtime-digest", RUNTIME, "--dashboard-digest", DASHBOARD],
        ["dev", "--runtime-digest", RUNTIME],
    ],
)
def test_promotion_refuses_incomplete_or_invalid_input(tree: Path, args: list[str]) -> None:
    overlay = tree / "gitops/overlays" / args[0] / "kustomization.yaml"
    before = overlay.read_text()
    result = promote(tree, *args)
    assert result.returncode == 2
    assert overlay.read_text() == before
