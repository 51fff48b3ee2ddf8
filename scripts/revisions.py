"""What an environment runs at a commit: the commit's tree (git archive), rendered by kustomize,
our images and their digests in it, and its functions' versions. Read only; git and kustomize are
run as commands."""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import yaml

FUNCTIONS = Path("apps/functions")
OVERLAYS = Path("gitops/overlays")
REGISTRY = Path("gitops/registry")
# The course's contract runs one function (gitops/overlays/course/function).
COURSE_FUNCTIONS = ("resource-monitor",)


class GitError(Exception):
    """A git command failed (its message is one line)."""


def load_yaml(path: Path) -> dict[str, Any]:
    """A YAML file that holds a mapping."""
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a YAML mapping")
    return data


def git(root: Path, *args: str) -> str:
    """Run git in root; GitError with git's last line on failure."""
    result = subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=False, timeout=120
    )
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["failed"])[-1]
        raise GitError(f"git {' '.join(args)}: {last}")
    return result.stdout


def commit_of(root: Path, revision: str) -> str:
    """The full id of a commit of this clone, or GitError."""
    try:
        return git(root, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}").strip()
    except GitError:
        raise GitError(
            f"{revision} is not a commit of this clone (fetch main with its full history)"
        ) from None


def is_ancestor(root: Path, older: str, newer: str) -> bool:
    """Whether older is newer or one of its ancestors."""
    result = subprocess.run(
        ["git", "merge-base", "--is-ancestor", older, newer], cwd=root, check=False, timeout=60
    )
    return result.returncode == 0


def main_ref(root: Path) -> str:
    """The main branch as this clone knows it: origin's when there is one."""
    for ref in ("refs/remotes/origin/main", "refs/heads/main"):
        if (
            subprocess.run(
                ["git", "show-ref", "--verify", "--quiet", ref], cwd=root, check=False
            ).returncode
            == 0
        ):
            return ref
    raise GitError("this clone has no main branch (fetch origin/main)")


def extract(root: Path, sha: str, dest: Path) -> Path:
    """The tree of commit sha, written into dest (git archive)."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", sha], cwd=root, capture_output=True, check=False
    )
    if archive.returncode != 0:
        last = (archive.stderr.decode().strip().splitlines() or ["failed"])[-1]
        raise GitError(f"git archive {sha}: {last}")
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def kustomize(directory: Path) -> str:
    """The rendered manifests of a kustomization (kustomize, else kubectl's built-in one)."""
    if shutil.which("kustomize"):
        argv = ["kustomize", "build", str(directory)]
    elif shutil.which("kubectl"):
        argv = ["kubectl", "kustomize", str(directory)]
    else:
        raise GitError("neither kustomize nor kubectl is installed: cannot render")
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise GitError(f"rendering {directory} failed: {last}")
    return result.stdout


@dataclass(frozen=True)
class Snapshot:
    """One environment at one revision: its render, our images in it, its functions' versions."""

    sha: str
    rendered: str
    images: dict[str, str]  # image name (path without registry) -> digest
    references: dict[str, str]  # image name -> full reference as rendered
    functions: dict[str, str]  # function name -> "tree <id>, last changed by <commit subject>"


def _our_images(rendered: str, registry_names: set[str]) -> dict[str, str]:
    """image name -> reference, for the images gitops/registry names (pinned or not)."""
    found = {}
    for doc in yaml.safe_load_all(rendered):
        if not doc or doc.get("kind") != "Deployment":
            continue
        for ctr in doc["spec"]["template"]["spec"]["containers"]:
            image = str(ctr["image"])
            name = image.partition("@")[0]
            if ":" in name.rsplit("/", 1)[-1]:
                name = name.rpartition(":")[0]
            if name in registry_names:
                found[name.rsplit("/", 1)[-1]] = image
    return found


def _functions(root: Path, sha: str, tree: Path, env: str) -> dict[str, str]:
    if env == "course":
        names: list[str] = list(COURSE_FUNCTIONS)
    else:
        index = tree / FUNCTIONS / "kustomization.yaml"
        names = list(load_yaml(index).get("components") or []) if index.is_file() else []
    versions = {}
    for name in sorted(names):
        path = f"{FUNCTIONS}/{name}"
        folder = git(root, "rev-parse", f"{sha}:{path}").strip()
        last = git(root, "log", "-1", "--format=%h %s", sha, "--", path).strip()
        versions[name] = f"tree `{folder[:12]}`, last changed by {last}"
    return versions


def snapshot(root: Path, env: str, sha: str) -> Snapshot:
    """Render env as it is at commit sha."""
    with tempfile.TemporaryDirectory(prefix=f"promote-{env}-") as temp:
        tree = extract(root, sha, Path(temp))
        overlay = tree / OVERLAYS / env
        if not (overlay / "kustomization.yaml").is_file():
            raise GitError(f"{sha[:12]} has no {OVERLAYS}/{env}")
        rendered = kustomize(overlay)
        registry = {
            str(load_yaml(p)["imageTag"]["newName"])
            for p in (tree / REGISTRY).glob("*.yaml")
            if load_yaml(p).get("kind") == "ImageTagTransformer"
        }
        functions = _functions(root, sha, tree, env)
    references = _our_images(rendered, registry)
    images = {name: ref.partition("@")[2] for name, ref in references.items()}
    return Snapshot(sha, rendered, images, references, functions)
