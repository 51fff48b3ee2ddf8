"""scripts/pull-request.sh, run against a local "origin" and a stand-in for the gh CLI: it pushes
a branch that is not main, with only gitops/ changes, and opens or updates one pull request."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.workflows.workflows import REPO

SCRIPT = REPO / "scripts" / "pull-request.sh"
FAKE_GH = """#!/bin/sh
echo "$*" >> "$GH_LOG"
if [ "$1 $2" = "pr list" ]; then cat "$GH_OPEN"; fi
"""


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@localhost", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    origin = tmp_path / "origin.git"
    work = tmp_path / "work"
    (work / "gitops").mkdir(parents=True)
    (work / "gitops" / "pins.yaml").write_text("digest: a\n")
    (work / "README.md").write_text("x\n")
    git(tmp_path, "init", "--quiet", "--initial-branch", "main", str(work))
    git(work, "add", "--all")
    git(work, "commit", "--quiet", "--message", "start")
    git(tmp_path, "clone", "--quiet", "--bare", str(work), str(origin))
    git(work, "remote", "add", "origin", str(origin))
    return work


def run(
    clone: Path, tmp_path: Path, open_pr: str = "", paths: tuple[str, ...] = ()
) -> tuple[int, list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "gh").write_text(FAKE_GH)
    (bin_dir / "gh").chmod(0o755)
    (tmp_path / "open").write_text(open_pr)
    log = tmp_path / "gh.log"
    body = tmp_path / "body.md"
    body.write_text("Pins dev\n")
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "GH_TOKEN": "not-a-token",
        "GH_LOG": str(log),
        "GH_OPEN": str(tmp_path / "open"),
    }
    result = subprocess.run(
        [str(SCRIPT), "deploy/dev", "main", "deploy(dev): images", str(body), *paths],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.returncode, log.read_text().splitlines() if log.exists() else []


def test_pull_request_opens_one_for_a_gitops_change(clone: Path, tmp_path: Path) -> None:
    (clone / "gitops" / "pins.yaml").write_text("digest: b\n")
    (clone / "README.md").write_text("not part of the pin\n")
    _, calls = run(clone, tmp_path)
    origin = tmp_path / "origin.git"
    assert git(origin, "rev-parse", "main") == git(clone, "rev-parse", "main")
    changed = git(origin, "diff", "--name-only", "main", "deploy/dev").split()
    assert changed == ["gitops/pins.yaml"]
    assert calls[-1].startswith(
        "pr create --head deploy/dev --base main --title deploy(dev): images"
    )


def test_pull_request_updates_the_open_one(clone: Path, tmp_path: Path) -> None:
    (clone / "gitops" / "pins.yaml").write_text("digest: c\n")
    _, calls = run(clone, tmp_path, open_pr="7\n")
    assert calls[-1].startswith("pr edit 7 --title")


def test_pull_request_does_nothing_when_gitops_is_unchanged(clone: Path, tmp_path: Path) -> None:
    (clone / "README.md").write_text("only this\n")
    _, calls = run(clone, tmp_path)
    assert calls == []
    assert "deploy/dev" not in git(tmp_path / "origin.git", "branch", "--list")


def test_pull_request_carries_only_the_paths_it_is_given(clone: Path, tmp_path: Path) -> None:
    # The promotion changes the environment's Application, never gitops/ or anything else.
    app = clone / "argocd" / "environments" / "prod" / "application.yaml"
    app.parent.mkdir(parents=True)
    app.write_text("targetRevision: abc\n")
    (clone / "gitops" / "pins.yaml").write_text("digest: d\n")
    _, calls = run(clone, tmp_path, paths=("argocd/environments/prod",))
    changed = git(tmp_path / "origin.git", "diff", "--name-only", "main", "deploy/dev").split()
    assert changed == ["argocd/environments/prod/application.yaml"]
    assert calls[-1].startswith("pr create --head deploy/dev")
