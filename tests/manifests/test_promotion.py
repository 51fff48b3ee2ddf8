"""scripts/promote.py: dev gets the digests CI pushed; prod and course get exactly what dev runs,
images and functions, in a change a pull request carries."""

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
FUNCTION = "sha256:" + "3c" * 32  # every function image gets this one here


def dev_pins(tree: Path) -> list[str]:
    """promote.py dev's arguments: the two app digests and one per function with requirements."""
    functions = sorted(p.parent.name for p in (tree / "apps/functions").glob("*/requirements.txt"))
    pins = [arg for name in functions for arg in ("--function-digest", f"{name}={FUNCTION}")]
    return ["dev", "--runtime-digest", RUNTIME, "--dashboard-digest", DASHBOARD, *pins]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of what the overlays render from."""
    for part in ("gitops", "apps/functions"):
        shutil.copytree(REPO_ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("__py*"))
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
    """resource-monitor's code as deployed (course keeps the course's ConfigMap `pyfile`)."""
    try:
        text: str = find(docs, "ConfigMap", "resource-monitor-code")["data"]["usermodule.py"]
    except LookupError:
        text = find(docs, "ConfigMap", "pyfile")["data"]["pyfile"]
    return text


def test_promotion_dev_pins_the_new_digests_and_keeps_comments(tree: Path) -> None:
    overlay = tree / "gitops/overlays/dev/kustomization.yaml"
    comments = [line for line in overlay.read_text().splitlines() if line.lstrip().startswith("#")]
    result = promote(tree, *dev_pins(tree))
    assert result.returncode == 0, result.stderr
    rendered = images(kustomize_build(tree / "gitops/overlays/dev"))
    assert {i.rsplit("/", 1)[-1] for i in rendered} == {
        f"serverless-runtime@{RUNTIME}",
        f"monitoring-dashboard@{DASHBOARD}",
        f"serverless-function-cpu-stats@{FUNCTION}",
    }
    assert [
        line for line in overlay.read_text().splitlines() if line.lstrip().startswith("#")
    ] == comments
    assert RUNTIME in result.stdout and DASHBOARD in result.stdout


def test_promotion_prod_gets_dev_images_and_function_only_when_promoted(tree: Path) -> None:
    function = tree / "apps/functions/resource-monitor/usermodule.py"
    assert promote(tree, *dev_pins(tree)).returncode == 0
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
    assert "apps/functions/resource-monitor" in result.stdout


@pytest.mark.parametrize("env", ["prod", "course"])
def test_promotion_copies_are_complete_function_folders(env: str) -> None:
    # In the repository: each promoted copy is a whole function folder in the format dev deploys
    # (prod with its index). The copies may lag behind apps/functions, even in which folders
    # exist: that is what promotion is for.
    copies = REPO_ROOT / "gitops/overlays" / env / "functions"
    names = sorted(p.name for p in copies.iterdir() if p.is_dir())
    if env == "course":
        assert names == ["resource-monitor"]
    else:
        index = yaml.safe_load((copies / "kustomization.yaml").read_text())
        assert index["kind"] == "Component"
        assert sorted(index["components"]) == names
    for name in names:
        copy = copies / name
        for file in ("kustomization.yaml", "deployment.yaml", "function.env", "usermodule.py"):
            assert (copy / file).is_file(), (name, file)
        component = yaml.safe_load((copy / "kustomization.yaml").read_text())
        assert component["kind"] == "Component"
        assert "../" not in (copy / "kustomization.yaml").read_text(), "no path out of the folder"
        deployment = yaml.safe_load((copy / "deployment.yaml").read_text())
        assert deployment["metadata"]["name"] == name


def test_promotion_copies_every_folder_verbatim_and_removes_deleted_ones(tree: Path) -> None:
    source = tree / "apps/functions"
    extra = source / "extra-fn"
    shutil.copytree(source / "resource-monitor", extra)
    for name in ("kustomization.yaml", "deployment.yaml"):
        path = extra / name
        path.write_text(path.read_text().replace("resource-monitor", "extra-fn"))
    (extra / "__pycache__").mkdir()
    (extra / "__pycache__" / "x.pyc").write_bytes(b"cache")
    index = source / "kustomization.yaml"
    index.write_text(index.read_text() + "  - extra-fn\n")
    assert promote(tree, "prod").returncode == 0
    copies = tree / "gitops/overlays/prod/functions"
    for folder in (source / "resource-monitor", extra):
        files = sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file())
        files = [f for f in files if "__pycache__" not in f.parts]
        copied = sorted(
            p.relative_to(copies / folder.name) for p in (copies / folder.name).rglob("*")
        )
        assert copied == files
        for file in files:
            assert (copies / folder.name / file).read_bytes() == (folder / file).read_bytes()
    assert (copies / "kustomization.yaml").read_text() == index.read_text()
    names = {d["metadata"]["name"] for d in kustomize_build(tree / "gitops/overlays/prod")}
    assert {"resource-monitor", "extra-fn"} <= names
    # Deleted in dev, deleted in prod by the next promotion.
    shutil.rmtree(extra)
    index.write_text(index.read_text().replace("  - extra-fn\n", ""))
    assert promote(tree, "prod").returncode == 0
    assert not (copies / "extra-fn").exists()
    names = {d["metadata"]["name"] for d in kustomize_build(tree / "gitops/overlays/prod")}
    assert "extra-fn" not in names and "resource-monitor" in names


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
