"""Give every function folder with a requirements.txt its own image in the manifests.

    python scripts/function_images.py [--root DIR]

`make lock` runs it after compiling the functions' requirements, so adding dependencies to a
function is: write requirements.in, `make lock`, commit. For each such folder it makes sure that
1. its deployment.yaml runs `serverless-function-<name>`,
2. gitops/registry names where that image is pulled from (same registry and owner as the runtime),
3. dev pins it, with the initial digest until the image workflow's pull request replaces it.
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
DASHBOARD_PIN = re.compile(r"^  - name: monitoring-dashboard\n    digest: \S+\n", re.MULTILINE)

REGISTRY_FILE = """\
# Where the {name} function image (the runtime image plus its requirements.txt) is pulled from;
# the digest an overlay pins is kept.
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


def pin_in_dev(root: Path, function: str) -> bool:
    """Pin the image in dev with the initial digest if dev does not pin it; True if changed."""
    path = root / "gitops/overlays/dev/kustomization.yaml"
    text = path.read_text()
    if f"  - name: {image_name(function)}\n" in text:
        return False
    anchor = DASHBOARD_PIN.search(text)
    if anchor is None:
        raise SystemExit(f"{path}: no pin of monitoring-dashboard to add the function's after")
    pin = f"  - name: {image_name(function)}\n    digest: {INITIAL_DIGEST}\n"
    path.write_text(text[: anchor.end()] + pin + text[anchor.end() :])
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--root", type=Path, default=ROOT, help="the repository (default: this)")
    args = parser.parse_args(argv)
    for function in functions_with_requirements(args.root):
        steps = {
            "deployment.yaml runs its image": use_image(args.root, function),
            "gitops/registry names it": name_in_registry(args.root, function),
            "dev pins it (initial digest)": pin_in_dev(args.root, function),
        }
        for step, changed in steps.items():
            if changed:
                print(f"{function}: {step}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
