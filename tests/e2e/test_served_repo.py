"""The repository the e2e cluster deploys from: this tree, re-pointed in exactly two files."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.served_repo import (
    REGISTRY,
    REPO,
    REPOSITORY_FILE,
    git,
    main,
    parse_image,
    prepare,
)

URL = "git://git-server.gitops-e2e.svc.cluster.local/serverless.git"
# As e2e.yml loads them: the two apps and one image per function with a requirements.txt.
IMAGES = {
    name: (name, "e2e")
    for name in (
        "serverless-runtime",
        "monitoring-dashboard",
        *(
            f"serverless-function-{p.parent.name}"
            for p in (REPO / "apps" / "functions").glob("*/requirements.txt")
        ),
    )
}


def kustomize(path: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed (needed for `kubectl kustomize`)")
    out = subprocess.run(
        [kubectl, "kustomize", str(path)], capture_output=True, text=True, check=True
    )
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("served") / "repo"
    prepare(dest, URL, IMAGES)
    return dest


def test_served_repo_is_one_commit_on_main_with_a_clean_tree(served: Path) -> None:
    assert git(served, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"
    assert git(served, "rev-list", "--count", "HEAD").strip() == "1"
    assert git(served, "status", "--porcelain").strip() == ""


def test_served_repo_changes_only_repository_and_registry(served: Path) -> None:
    changed = sorted(
        str(p.relative_to(served))
        for p in served.rglob("*")
        if p.is_file()
        and ".git" not in p.relative_to(served).parts
        and p.read_bytes() != (REPO / p.relative_to(served)).read_bytes()
    )
    # Every registry file names and pins one image of ours, and each is replaced by a loaded one.
    registry = [
        str(path.relative_to(REPO))
        for path in (REPO / REGISTRY).glob("*.yaml")
        if path.name != "kustomization.yaml"
    ]
    assert len(registry) == len(IMAGES)
    assert changed == sorted([str(REPOSITORY_FILE), *registry])


def test_served_repo_leaves_out_ignored_files(served: Path) -> None:
    assert not (served / ".venv").exists()
    assert (served / "argocd" / "clusters" / "kind" / "kustomization.yaml").is_file()


def test_served_repo_argocd_objects_point_at_the_git_server(served: Path) -> None:
    objects = kustomize(served / "argocd" / "clusters" / "kind")
    apps = [o for o in objects if o["kind"] == "Application"]
    assert {a["metadata"]["name"] for a in apps} == {
        "serverless-root",
        "serverless-platform",
        "serverless-dev",
    }
    assert {a["spec"]["source"]["repoURL"] for a in apps} == {URL}
    assert {a["spec"]["source"]["targetRevision"] for a in apps} == {"main"}
    projects = [o for o in objects if o["kind"] == "AppProject"]
    assert {tuple(p["spec"]["sourceRepos"]) for p in projects} == {(URL,)}


def test_served_repo_dev_overlay_runs_the_loaded_images(served: Path) -> None:
    images = {
        c["image"]
        for d in kustomize(served / "gitops" / "overlays" / "dev")
        if d["kind"] == "Deployment"
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert images == {f"{name}:e2e" for name in IMAGES} | {"redis:8.10"}
    assert "serverless-function-cpu-stats:e2e" in images


def test_served_repo_refuses_an_existing_destination(tmp_path: Path) -> None:
    with pytest.raises(FileExistsError):
        prepare(tmp_path, URL, IMAGES)


def test_served_repo_command_line_prints_the_commit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "repo"
    assert main(["--dest", str(dest), "--url", URL, "--image", "serverless-runtime=r:1"]) == 0
    assert capsys.readouterr().out.strip() == git(dest, "rev-parse", "HEAD").strip()


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            "serverless-runtime=serverless-runtime:e2e",
            ("serverless-runtime", "serverless-runtime", "e2e"),
        ),
        (
            "monitoring-dashboard=localhost:5000/dash:abc",
            ("monitoring-dashboard", "localhost:5000/dash", "abc"),
        ),
    ],
)
def test_served_repo_parse_image(spec: str, expected: tuple[str, str, str]) -> None:
    assert parse_image(spec) == expected


@pytest.mark.parametrize("spec", ["serverless-runtime", "x=y", "x=localhost:5000/y", "=y:1"])
def test_served_repo_parse_image_rejects_missing_parts(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_image(spec)
