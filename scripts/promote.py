"""Pin what an environment runs, as the change a pull request carries (the image workflows call it).

    python scripts/promote.py dev --runtime-digest sha256:… --dashboard-digest sha256:… \\
        [--function-digest NAME=sha256:… for each function folder with a requirements.txt]
    python scripts/promote.py prod      # or course: what dev runs now, images and functions

dev gets the digests CI just pushed; prod and course get dev's digests and verbatim copies of the
function folders (the versions dev runs), so nothing reaches them that dev has not run. prod gets
every folder of apps/functions and its index (a folder deleted in dev is deleted there); course
gets only the functions the course's contract runs (COURSE_FUNCTIONS). A function with a
requirements.txt runs in its own image, `serverless-function-<name>`, pinned like the others.
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
FUNCTIONS = Path("apps/functions")
OVERLAYS = Path("gitops/overlays")
IMAGES = ("serverless-runtime", "monitoring-dashboard")
FUNCTION_IMAGE_PREFIX = "serverless-function-"
PROMOTED = ("prod", "course")
# The course's contract runs one function (gitops/overlays/course/kustomization.yaml).
COURSE_FUNCTIONS = ("resource-monitor",)
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?")
# What promotion never copies: caches left by running a function's test.
SKIPPED = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".venv")


@dataclass(frozen=True)
class Release:
    """What an environment runs: one digest per image and each function's git blob id."""

    digests: dict[str, str]
    functions: dict[str, str]


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a YAML mapping")
    return data


def function_image(name: str) -> str:
    """The image a function with a requirements.txt runs in."""
    return FUNCTION_IMAGE_PREFIX + name


def function_folders(root: Path) -> list[Path]:
    """The function folders under root (one per function), sorted by name."""
    if not root.is_dir():
        return []
    folders = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))]
    for folder in folders:
        if not NAME.fullmatch(folder.name):
            raise ValueError(
                f"{folder}: a function's folder name must be a DNS label (a-z, 0-9, -)"
            )
    return sorted(folders)


def image_functions(root: Path) -> list[str]:
    """The functions under root that run in an image of their own (they have requirements.txt)."""
    return [f.name for f in function_folders(root) if (f / "requirements.txt").is_file()]


def pinned_digests(kustomization: Path) -> dict[str, str]:
    """The digest each of our images is pinned to in an overlay's `images:` (functions' too)."""
    entries = _load(kustomization).get("images") or []
    found = {
        e["name"]: e.get("digest", "")
        for e in entries
        if e.get("name") in IMAGES or str(e.get("name")).startswith(FUNCTION_IMAGE_PREFIX)
    }
    if not set(IMAGES) <= set(found) or not all(DIGEST.fullmatch(d) for d in found.values()):
        raise ValueError(f"{kustomization}: expected a sha256 digest for each of {IMAGES}")
    return found


def set_digests(kustomization: Path, digests: dict[str, str]) -> None:
    """Pin exactly these images, editing the lines in place so comments and layout stay.

    Our two images' entries are rewritten where they are; function images' entries are removed and
    written again, sorted, after the dashboard's entry (the file's last entry of ours)."""
    text = kustomization.read_text()
    for name, digest in digests.items():
        if not DIGEST.fullmatch(digest):
            raise ValueError(f"{name}: {digest!r} is not a sha256 digest")
    function_entry = re.compile(
        rf"^[ \t]*-[ \t]+name:[ \t]+{FUNCTION_IMAGE_PREFIX}[a-z0-9-]+[ \t]*\n"
        r"[ \t]+digest:[ \t]+sha256:[0-9a-f]{64}[ \t]*\n",
        re.MULTILINE,
    )
    text = function_entry.sub("", text)
    for name in IMAGES:
        entry = re.compile(
            rf"(^([ \t]*)-\s+name:\s+{re.escape(name)}\s*\n\s+digest:\s+)sha256:[0-9a-f]{{64}}\n",
            re.MULTILINE,
        )
        match = entry.search(text)
        if match is None:
            raise ValueError(f"{kustomization}: no `- name: {name}` entry with a digest line")
        added = "".join(
            f"{match[2]}- name: {image}\n{match[2]}  digest: {digests[image]}\n"
            for image in sorted(digests)
            if image.startswith(FUNCTION_IMAGE_PREFIX) and name == IMAGES[-1]
        )
        text = text[: match.start()] + f"{match[1]}{digests[name]}\n{added}" + text[match.end() :]
    kustomization.write_text(text)
    if pinned_digests(kustomization) != digests:
        raise AssertionError(f"{kustomization}: the digests did not take")


def git_blob_id(path: Path) -> str:
    """The id git gives the file's content (`git rev-parse HEAD:path` once committed)."""
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def function_versions(root: Path, names: Sequence[str] | None = None) -> dict[str, str]:
    """name -> git blob id of its usermodule.py (or function.zip), for the folders under root."""
    versions = {}
    for folder in function_folders(root):
        if names is not None and folder.name not in names:
            continue
        code = folder / "usermodule.py"
        if not code.is_file():
            code = folder / "function.zip"
        versions[folder.name] = git_blob_id(code) if code.is_file() else "(no code)"
    return versions


def copy_functions(source: Path, dest: Path, names: Sequence[str] | None = None) -> None:
    """Make dest hold verbatim copies of source's function folders (those named, or all of them
    with the index), and nothing else: a folder deleted in source is deleted in dest."""
    wanted = [f for f in function_folders(source) if names is None or f.name in names]
    if names is not None and {f.name for f in wanted} != set(names):
        raise ValueError(f"{source}: expected the function folders {sorted(names)}")
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    if names is None:
        shutil.copyfile(source / "kustomization.yaml", dest / "kustomization.yaml")
    for folder in wanted:
        shutil.copytree(folder, dest / folder.name, ignore=SKIPPED)


def promote(root: Path, env: str, digests: dict[str, str] | None = None) -> Release:
    """Pin env: dev to the given digests; prod and course to what dev runs now."""
    overlay = root / OVERLAYS / env / "kustomization.yaml"
    functions = root / FUNCTIONS
    if env == "dev":
        if digests is None:
            raise ValueError("dev needs --runtime-digest and --dashboard-digest")
        expected = {function_image(name) for name in image_functions(functions)}
        given = {name for name in digests if name.startswith(FUNCTION_IMAGE_PREFIX)}
        if given != expected:
            raise ValueError(
                "give one --function-digest for each function with a requirements.txt: "
                f"expected {sorted(expected) or 'none'}, got {sorted(given) or 'none'}"
            )
        set_digests(overlay, digests)
        return Release(digests, function_versions(functions))
    if env not in PROMOTED:
        raise ValueError(f"unknown environment {env!r}")
    if digests is not None:
        raise ValueError(f"{env} runs what dev runs: give no digests")
    dev = pinned_digests(root / OVERLAYS / "dev" / "kustomization.yaml")
    names = COURSE_FUNCTIONS if env == "course" else None
    needed = {
        function_image(name)
        for name in image_functions(functions)
        if names is None or name in names
    }
    missing = needed - set(dev)
    if missing:
        raise ValueError(f"dev pins no digest for {sorted(missing)}: pin dev first")
    pins = {name: digest for name, digest in dev.items() if name in IMAGES or name in needed}
    dest = overlay.parent / "functions"
    copy_functions(functions, dest, names)
    set_digests(overlay, pins)
    return Release(pins, function_versions(dest))


def summary(env: str, release: Release) -> str:
    """The pull request's body: what the environment will run."""
    lines = [f"Pins **{env}** to:", ""]
    lines += [f"- `{name}@{digest}`" for name, digest in release.digests.items()]
    lines += [
        f"- function `{FUNCTIONS}/{name}` (code at git blob `{blob}`)"
        for name, blob in release.functions.items()
    ]
    return "\n".join(lines)


def _function_digest(raw: str) -> tuple[str, str]:
    name, _, digest = raw.partition("=")
    if not NAME.fullmatch(name) or not DIGEST.fullmatch(digest):
        raise argparse.ArgumentTypeError(f"{raw!r} is not NAME=sha256:<64 hex digits>")
    return function_image(name), digest


def main(argv: Sequence[str] | None = None) -> int:
    """Command line for the image and promotion workflows."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("env", choices=("dev", *PROMOTED))
    parser.add_argument("--runtime-digest")
    parser.add_argument("--dashboard-digest")
    parser.add_argument(
        "--function-digest",
        action="append",
        default=[],
        type=_function_digest,
        metavar="NAME=DIGEST",
        help="the image of function NAME (one per folder with requirements.txt; dev only)",
    )
    parser.add_argument("--root", type=Path, default=REPO, help="repository root")
    args = parser.parse_args(argv)
    given = (args.runtime_digest, args.dashboard_digest)
    if any(given) and not all(given):
        parser.error("give both digests or neither")
    if args.function_digest and not all(given):
        parser.error("--function-digest goes with --runtime-digest and --dashboard-digest")
    digests = dict(zip(IMAGES, given, strict=True)) if all(given) else None
    if digests is not None:
        digests.update(args.function_digest)
    try:
        release = promote(args.root, args.env, digests)
    except ValueError as error:
        print(f"promote: {error}", file=sys.stderr)
        return 2
    print(summary(args.env, release))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
