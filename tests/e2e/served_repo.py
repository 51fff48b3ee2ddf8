"""Make the Git repository the e2e cluster's Argo CD deploys from: this working tree, pointed at
the in-cluster git server and at the images loaded into kind, as one commit on `main`.

The e2e job cannot push to GitHub, so it serves this copy from a git daemon inside the cluster
(tests/e2e/git-server.yaml). Only the files a fork or a deploy changes are changed: the
repository file of argocd/ (the one place that names the URL) and the image names and pins of
gitops/registry (the one place that names the registry and the digests).

    python -m tests.e2e.served_repo --dest DIR --url git://… --image serverless-runtime=NAME:TAG …
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
REPOSITORY_FILE = Path("argocd/repository/repository.yaml")
REGISTRY = Path("gitops/registry")
BRANCH = "main"
# A fixed identity: the commit is made by the test, for the test.
GIT_IDENTITY = ("-c", "user.name=e2e", "-c", "user.email=e2e@localhost")


def git(repo: Path, *args: str) -> str:
    """Run git in repo and return its output; raise with git's message on failure."""
    result = subprocess.run(
        ["git", *GIT_IDENTITY, *args], cwd=repo, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def project_files(source: Path) -> list[Path]:
    """Files of the working tree that Git would commit (tracked or new, never ignored)."""
    listing = git(source, "ls-files", "--cached", "--others", "--exclude-standard", "-z")
    return [Path(name) for name in listing.split("\0") if name and (source / name).is_file()]


def copy_tree(source: Path, dest: Path) -> None:
    """Copy the project's files from source into the empty folder dest."""
    for relative in project_files(source):
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / relative, target)


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a YAML mapping")
    return data


def _dump(path: Path, data: Mapping[str, Any]) -> None:
    path.write_text(yaml.safe_dump(dict(data), sort_keys=False))


def point_repository(tree: Path, url: str, revision: str = BRANCH) -> None:
    """Make every Argo CD object in tree deploy from url at revision."""
    path = tree / REPOSITORY_FILE
    data = _load(path)
    data["data"] = {**data["data"], "url": url, "revision": revision}
    _dump(path, data)


def parse_image(spec: str) -> tuple[str, str, str]:
    """`name=newName:newTag` → (name, newName, newTag); the tag is required."""
    name, sep, reference = spec.partition("=")
    new_name, colon, tag = reference.rpartition(":")
    if not sep or not colon or not name or not new_name or not tag or "/" in tag:
        raise ValueError(f"expected NAME=NEW_NAME:TAG, got {spec!r}")
    return name, new_name, tag


def set_images(tree: Path, images: Mapping[str, tuple[str, str]]) -> list[Path]:
    """Run NEW_NAME:TAG: the registry folder names NEW_NAME and pins TAG instead of a digest (an
    image loaded into kind has no registry digest). Returns the files changed."""
    changed = []
    transformers = {}
    for path in sorted((tree / REGISTRY).glob("*.yaml")):
        data = _load(path)
        if data.get("kind") == "ImageTagTransformer":
            transformers[data["imageTag"]["name"]] = (path, data)
    for name, (new_name, tag) in images.items():
        if name not in transformers:
            raise ValueError(f"{name}: not an image of {REGISTRY}")
        path, data = transformers[name]
        data["imageTag"].pop("digest", None)
        data["imageTag"]["newName"] = new_name
        data["imageTag"]["newTag"] = tag
        _dump(path, data)
        changed.append(path)
    return changed


def commit_all(tree: Path, message: str) -> str:
    """Make tree a fresh repository with everything committed on main; return the commit id."""
    git(tree, "init", "--quiet", "--initial-branch", BRANCH)
    git(tree, "add", "--all")
    git(tree, "commit", "--quiet", "--no-verify", "--message", message)
    return git(tree, "rev-parse", "HEAD").strip()


def prepare(
    dest: Path, url: str, images: Mapping[str, tuple[str, str]], source: Path = REPO
) -> str:
    """Build the served repository in dest (which must not exist); return its commit id."""
    dest.mkdir(parents=True)
    copy_tree(source, dest)
    point_repository(dest, url)
    set_images(dest, images)
    return commit_all(dest, "e2e: serve this tree to the cluster's Argo CD")


def main(argv: Sequence[str] | None = None) -> int:
    """Command line for the e2e workflow."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--dest", type=Path, required=True, help="new folder for the repository")
    parser.add_argument("--url", required=True, help="the URL Argo CD will clone it from")
    parser.add_argument(
        "--image", action="append", default=[], help="NAME=NEW_NAME:TAG in gitops/registry"
    )
    args = parser.parse_args(argv)
    images = {name: (new_name, tag) for name, new_name, tag in map(parse_image, args.image)}
    commit = prepare(args.dest, args.url, images)
    print(commit)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
