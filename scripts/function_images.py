"""Give every function folder with a requirements.txt its own image in the manifests.

    python scripts/function_images.py [--root DIR]

`make lock` runs it after compiling the functions' requirements, so adding dependencies to a
function is: write requirements.in, `make lock`, commit. For each such folder it makes sure that
1. its deployment.yaml runs `serverless-function-<name>`,
2. gitops/registry names where that image is pulled from (same registry and owner as the runtime),
3. gitops/registry pins it, with the initial digest until the image workflow's pull request
   replaces it (every environment takes its digests from there, at the revision it runs).
It only adds what is missing (comments and other lines are kept) and prints what it changed.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The SHA-256 of empty input: a valid digest no registry serves, replaced by the first real pin.
INITIAL_DIGEST = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
RUNTIME_IMAGE_LINE = re.compile(r"^(\s*image:\s*)serverless-runtime\s*$", re.MULTILINE)
NEW_NAME = re.compile(r"^\s*newName:\s*(\S+)/serverless-runtime\s*$", re.MULTILINE)
DIGEST_LINE = re.compile(r"^  digest:", re.MULTILINE)

REGISTRY_FILE = """\
# The {name} function image (the runtime image plus its requirements.txt): where it is pulled
# from, and the digest every environment runs at this revision (the image workflow's pull request).
apiVersion: builtin
kind: ImageTagTransformer
metadata:
  name: serverless-function-{name}-registry
imageTag:
  name: serverless-function-{name}
  newName: {owner}/serverless-function-{name}
"""


def image_name(function: str) -> str:
    """The image a function with requirements runs in."""
    return f"serverless-function-{function}"


def functions_with_requirements(root: Path) -> list[str]:
    """The function folders that hold a requirements.txt, by name."""
    return sorted(p.parent.name for p in (root / "apps/functions").glob("*/requirements.txt"))


def use_image(root: Path, function: str) -> bool:
    """Point the folder's Deployment at its own image; True if the file changed."""
    path = root / "apps/functions" / function / "deployment.yaml"
    text = path.read_text()
    changed = RUNTIME_IMAGE_LINE.sub(rf"\g<1>{image_name(function)}", text)
    if changed == text:
        return False
    path.write_text(changed)
    return True


def name_in_registry(root: Path, function: str) -> bool:
    """Add the image's registry file and list it; True if anything changed."""
    registry = root / "gitops/registry"
    path = registry / f"{image_name(function)}.yaml"
    changed = False
    if not path.exists():
        owner = NEW_NAME.search((registry / "runtime.yaml").read_text())
        if owner is None:
            raise SystemExit(f"{registry / 'runtime.yaml'}: no newName for serverless-runtime")
        path.write_text(REGISTRY_FILE.format(name=function, owner=owner[1]))
        changed = True
    index = registry / "kustomization.yaml"
    text = index.read_text()
    line = f"  - {path.name}\n"
    if line not in text:
        index.write_text(text.rstrip("\n") + "\n" + line)
        changed = True
    return changed


def pin_in_registry(root: Path, function: str) -> bool:
    """Pin the image with the initial digest if gitops/registry pins none; True if changed."""
    path = root / "gitops/registry" / f"{image_name(function)}.yaml"
    text = path.read_text()
    if DIGEST_LINE.search(text):
        return False
    path.write_text(text.rstrip("\n") + f"\n  digest: {INITIAL_DIGEST}\n")
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--root", type=Path, default=ROOT, help="the repository (default: this)")
    args = parser.parse_args(argv)
    for function in functions_with_requirements(args.root):
        steps = {
            "deployment.yaml runs its image": use_image(args.root, function),
            "gitops/registry names it": name_in_registry(args.root, function),
            "gitops/registry pins it (initial digest)": pin_in_registry(args.root, function),
        }
        for step, changed in steps.items():
            if changed:
                print(f"{function}: {step}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
