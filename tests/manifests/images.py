"""What a valid, pinned image reference of ours looks like, and where the registry is named."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
REGISTRY = REPO_ROOT / "gitops" / "registry"
FUNCTIONS = REPO_ROOT / "apps" / "functions"
# The two app images, and one image per function folder with a requirements.txt.
FUNCTION_IMAGES = sorted(
    f"serverless-function-{p.parent.name}" for p in FUNCTIONS.glob("*/requirements.txt")
)
OUR_IMAGES = ("serverless-runtime", "monitoring-dashboard", *FUNCTION_IMAGES)

# The distribution reference grammar, lower case only: [host[:port]/]path[:tag][@digest].
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_HOST = rf"(?:{_LABEL}(?:\.{_LABEL})*(?::\d+)?/)?"
REFERENCE = re.compile(
    rf"(?P<name>{_HOST}{_COMPONENT}(?:/{_COMPONENT})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[0-9a-f]{64}))?"
)
# Words a template leaves behind; a digest of one repeated character is one too.
PLACEHOLDERS = re.compile(r"owner|example|changeme|placeholder|your|todo|xxx", re.IGNORECASE)
INITIAL_DIGEST = "sha256:" + "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def reference_problems(image: str) -> list[str]:
    """Why an image reference of ours would not run as intended (empty when it is fine)."""
    match = REFERENCE.fullmatch(image)
    if match is None:
        return [f"{image!r} is not a valid (lower-case) image reference"]
    problems = []
    if PLACEHOLDERS.search(match["name"]):
        problems.append(f"{image!r} names a placeholder")
    digest = match["digest"]
    if digest is None:
        problems.append(f"{image!r} is not pinned by digest")
    elif len(set(digest.removeprefix("sha256:"))) == 1:
        problems.append(f"{image!r} has a made-up digest")
    if match["tag"] == "latest":
        problems.append(f"{image!r} uses :latest")
    return problems


def registry_names() -> dict[str, str]:
    """image name -> the name gitops/registry rewrites it to."""
    names = {}
    for path in sorted(REGISTRY.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        if doc.get("kind") == "ImageTagTransformer":
            names[doc["imageTag"]["name"]] = doc["imageTag"]["newName"]
    return names
