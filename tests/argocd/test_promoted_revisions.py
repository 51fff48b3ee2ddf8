"""prod and course run one commit of this repository, every layer of it: their Applications, as
each cluster's root renders them, name a commit (never a branch) that this clone holds, on main's
history, and at which their overlay renders; what the working tree holds does not change it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from scripts import revisions
from tests.argocd.manifests import ARGOCD, REPO, render

OVERLAYS = Path("gitops/overlays")
PROMOTED = {"prod": "serverless-prod", "course": "serverless-course"}


def pinned(env: str) -> str:
    """The commit env's Application names, as its cluster's root renders it."""
    (app,) = [
        o
        for o in render(ARGOCD / "clusters" / env)
        if o["kind"] == "Application" and o["metadata"]["name"] == PROMOTED[env]
    ]
    revision: str = app["spec"]["source"]["targetRevision"]
    return revision


def have_commit(sha: str) -> bool:
    result = subprocess.run(
        ["git", "cat-file", "-e", f"{sha}^{{commit}}"], cwd=REPO, capture_output=True, check=False
    )
    return result.returncode == 0


@pytest.mark.parametrize("env", sorted(PROMOTED))
def test_promoted_application_names_a_commit_of_this_repository(env: str) -> None:
    sha = pinned(env)
    assert re.fullmatch(r"[0-9a-f]{40}", sha), f"{env} follows {sha!r}, not a commit"
    assert have_commit(sha), (
        f"{env} is pinned to {sha}, which this clone does not hold: clone with full history "
        "(git fetch --unshallow), or the pin names a commit of another repository"
    )
    ancestry = subprocess.run(
        ["git", "merge-base", "--is-ancestor", sha, "HEAD"], cwd=REPO, check=False
    )
    assert ancestry.returncode == 0, f"{env}'s {sha[:12]} is not in this branch's history"


@pytest.mark.parametrize("env", sorted(PROMOTED))
def test_promoted_environment_renders_its_pinned_commit_not_the_working_tree(
    env: str, tmp_path: Path
) -> None:
    sha = pinned(env)
    if not have_commit(sha):
        pytest.fail(f"{env}'s pinned {sha} is missing from this clone (see the test above)")
    at_pin = revisions.kustomize(revisions.extract(REPO, sha, tmp_path / "pin") / OVERLAYS / env)
    assert "kind: Deployment" in at_pin
    # A change to the shared layers in the working tree (an unpromoted merge into main): it
    # changes what the tree renders for env, and not what env's commit renders.
    work = tmp_path / "work"
    for part in ("gitops", "apps/functions"):
        shutil.copytree(REPO / part, work / part, ignore=shutil.ignore_patterns("__py*"))
    before = revisions.kustomize(work / OVERLAYS / env)
    for path, old in (
        ("gitops/base/dashboard-deployment.yaml", "/healthz"),
        ("gitops/components/function-pod/pod.yaml", "/readyz"),
    ):
        text = (work / path).read_text()
        assert old in text, path
        (work / path).write_text(text.replace(old, f"{old}-unpromoted"))
    assert revisions.kustomize(work / OVERLAYS / env) != before
    again = revisions.extract(REPO, sha, tmp_path / "again")
    assert revisions.kustomize(again / OVERLAYS / env) == at_pin
    assert "-unpromoted" not in at_pin
