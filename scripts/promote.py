"""Pin what an environment runs, as the change a pull request carries (the image workflows call it).

    python scripts/promote.py dev --runtime-digest sha256:… --dashboard-digest sha256:…
    python scripts/promote.py prod      # or course: what dev runs now, images and function

dev gets the digests CI just pushed; prod and course get dev's digests and a verbatim copy of the
function folder (the function version dev runs), so nothing reaches them that dev has not run.
It prints a Markdown summary for the pull request; `git diff` shows whether anything changed.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
FUNCTION = Path("apps/functions/resource-monitor")
OVERLAYS = Path("gitops/overlays")
IMAGES = ("serverless-runtime", "monitoring-dashboard")
PROMOTED = ("prod", "course")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class Release:
    """What an environment runs: one digest per image and the function's git blob id."""

    digests: dict[str, str]
    function: str | None


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a YAML mapping")
    return data


def pinned_digests(kustomization: Path) -> dict[str, str]:
    """The digest each of our images is pinned to in an overlay's `images:`."""
    entries = _load(kustomization).get("images") or []
    found = {e["name"]: e.get("digest", "") for e in entries if e.get("name") in IMAGES}
    if set(found) != set(IMAGES) or not all(DIGEST.fullmatch(d) for d in found.values()):
        raise ValueError(f"{kustomization}: expected a sha256 digest for each of {IMAGES}")
    return found


def set_digests(kustomization: Path, digests: dict[str, str]) -> None:
    """Rewrite the digest lines in place, so the file's comments and layout stay as reviewed."""
    text = kustomization.read_text()
    for name, digest in digests.items():
        if not DIGEST.fullmatch(digest):
            raise ValueError(f"{name}: {digest!r} is not a sha256 digest")
        entry = re.compile(
            rf"(^\s*-\s+name:\s+{re.escape(name)}\s*\n\s+digest:\s+)sha256:[0-9a-f]{{64}}$",
            re.MULTILINE,
        )
        text, count = entry.subn(rf"\g<1>{digest}", text)
        if count != 1:
            raise ValueError(f"{kustomization}: no `- name: {name}` entry with a digest line")
    kustomization.write_text(text)
    if pinned_digests(kustomization) != digests:
        raise AssertionError(f"{kustomization}: the digests did not take")


def git_blob_id(path: Path) -> str:
    """The id git gives the file's content (`git rev-parse HEAD:path` once committed)."""
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def function_files(folder: Path) -> list[str]:
    """The Component's kustomization.yaml and every file its generators read."""
    component = _load(folder / "kustomization.yaml")
    files = ["kustomization.yaml"]
    for generator in component.get("configMapGenerator") or []:
        files += [str(entry).split("=", 1)[-1] for entry in generator.get("files") or []]
    return files


def copy_function(root: Path, dest: Path) -> None:
    """Make dest a verbatim copy of the function folder's Component and its files."""
    source = root / FUNCTION
    names = function_files(source)
    dest.mkdir(parents=True, exist_ok=True)
    for stale in dest.iterdir():
        if stale.name not in names:
            stale.unlink()
    for name in names:
        shutil.copyfile(source / name, dest / name)


def module_file(folder: Path) -> Path:
    """The function file a Component generates its ConfigMap from."""
    return folder / function_files(folder)[1]


def promote(root: Path, env: str, digests: dict[str, str] | None = None) -> Release:
    """Pin env: dev to the given digests; prod and course to what dev runs now."""
    overlay = root / OVERLAYS / env / "kustomization.yaml"
    if env == "dev":
        if digests is None:
            raise ValueError("dev needs --runtime-digest and --dashboard-digest")
        set_digests(overlay, digests)
        return Release(digests, git_blob_id(module_file(root / FUNCTION)))
    if env not in PROMOTED:
        raise ValueError(f"unknown environment {env!r}")
    if digests is not None:
        raise ValueError(f"{env} runs what dev runs: give no digests")
    dev = pinned_digests(root / OVERLAYS / "dev" / "kustomization.yaml")
    set_digests(overlay, dev)
    copy_function(root, overlay.parent / "function")
    return Release(dev, git_blob_id(module_file(overlay.parent / "function")))


def summary(env: str, release: Release) -> str:
    """The pull request's body: what the environment will run."""
    lines = [f"Pins **{env}** to:", ""]
    lines += [f"- `{name}@{digest}`" for name, digest in release.digests.items()]
    lines.append(f"- function `{FUNCTION}/usermodule.py` at git blob `{release.function}`")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line for the image and promotion workflows."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("env", choices=("dev", *PROMOTED))
    parser.add_argument("--runtime-digest")
    parser.add_argument("--dashboard-digest")
    parser.add_argument("--root", type=Path, default=REPO, help="repository root")
    args = parser.parse_args(argv)
    given = (args.runtime_digest, args.dashboard_digest)
    if any(given) and not all(given):
        parser.error("give both digests or neither")
    digests = dict(zip(IMAGES, given, strict=True)) if all(given) else None
    try:
        release = promote(args.root, args.env, digests)
    except ValueError as error:
        print(f"promote: {error}", file=sys.stderr)
        return 2
    print(summary(args.env, release))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
