"""Pin what an environment runs, as the change a pull request carries (the workflows call it).

    python -m scripts.promote dev --runtime-digest sha256:… --dashboard-digest sha256:… \\
        [--function-digest NAME=sha256:… for each function folder with a requirements.txt]
    python -m scripts.promote prod [--revision SHA] [--allow-rollback]     # or course

dev follows main; its images are the digests of gitops/registry, which `dev` writes (the image
workflow's pull request). prod and course run one commit of this repository, every layer of it:
`prod`/`course` write a commit that dev ran into argocd/environments/<env>/application.yaml, after
the gate (scripts/promotion_checks.py) has checked it, and print the pull request's body: what
moves (commits, images old → new, function versions) and the rendered diff of the environment.
Exit status: 0 done, 1 refused by the gate (one line saying why), 2 bad input.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

import yaml

from scripts.promotion_checks import (
    ArgoCD,
    Cosign,
    GitHub,
    Http,
    Refused,
    Registry,
    Runner,
    digest_problem,
    run_command,
    urllib_http,
    workflow_identity,
)

REPO = Path(__file__).resolve().parent.parent
FUNCTIONS = Path("apps/functions")
OVERLAYS = Path("gitops/overlays")
REGISTRY = Path("gitops/registry")
ENVIRONMENTS = Path("argocd/environments")
REPOSITORY_FILE = Path("argocd/repository/repository.yaml")
IMAGES = ("serverless-runtime", "monitoring-dashboard")
FUNCTION_IMAGE_PREFIX = "serverless-function-"
PROMOTED = ("prod", "course")
# The course's contract runs one function (gitops/overlays/course/function).
COURSE_FUNCTIONS = ("resource-monitor",)
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
SHA = re.compile(r"[0-9a-f]{40}")
NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?")
TARGET_REVISION = re.compile(r"^(\s*targetRevision:\s*)(\S+)[ \t]*$", re.MULTILINE)
# A pull request body holds at most 65536 characters; the diff gets what the rest leaves.
MAX_DIFF_LINES = 400
MAX_DIFF_CHARS = 40_000
MAX_COMMITS = 30


class GitError(Exception):
    """A git command failed (its message is one line)."""


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


# --- dev: the digests of gitops/registry -------------------------------------------------------


def registry_files(root: Path) -> dict[str, Path]:
    """image name -> its file in gitops/registry (an ImageTagTransformer)."""
    files = {}
    for path in sorted((root / REGISTRY).glob("*.yaml")):
        data = _load(path)
        if data.get("kind") == "ImageTagTransformer":
            files[data["imageTag"]["name"]] = path
    return files


def pinned_digests(root: Path) -> dict[str, str]:
    """The digest gitops/registry pins for each of our images."""
    return {
        name: str(_load(path)["imageTag"].get("digest", ""))
        for name, path in registry_files(root).items()
    }


def set_digests(root: Path, digests: Mapping[str, str]) -> None:
    """Pin these images in gitops/registry, editing the `digest:` line so comments stay."""
    files = registry_files(root)
    for name, digest in digests.items():
        if not DIGEST.fullmatch(digest):
            raise ValueError(f"{name}: {digest!r} is not a sha256 digest")
        if name not in files:
            raise ValueError(f"{REGISTRY} names no image {name} (make lock adds function images)")
    for name, digest in digests.items():
        path = files[name]
        text = path.read_text()
        line = re.compile(r"^(  digest:[ \t]*)\S*[ \t]*$", re.MULTILINE)
        if line.search(text):
            text = line.sub(rf"\g<1>{digest}", text, count=1)
        else:
            text = text.rstrip("\n") + f"\n  digest: {digest}\n"
        path.write_text(text)
    pinned = pinned_digests(root)
    if any(pinned[name] != digest for name, digest in digests.items()):
        raise AssertionError(f"{REGISTRY}: the digests did not take")


def pin_dev(root: Path, digests: dict[str, str]) -> str:
    """Pin dev (and so every later revision) to the image workflow's digests; the PR body."""
    expected = {function_image(name) for name in image_functions(root / FUNCTIONS)}
    given = {name for name in digests if name.startswith(FUNCTION_IMAGE_PREFIX)}
    if given != expected:
        raise ValueError(
            "give one --function-digest for each function with a requirements.txt: "
            f"expected {sorted(expected) or 'none'}, got {sorted(given) or 'none'}"
        )
    set_digests(root, digests)
    lines = ["Pins **dev** (gitops/registry) to:", ""]
    lines += [f"- `{name}@{digest}`" for name, digest in digests.items()]
    return "\n".join(lines)


# --- git ----------------------------------------------------------------------------------------


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


# --- what an environment runs at a revision ------------------------------------------------------


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
        names = list(_load(index).get("components") or []) if index.is_file() else []
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
            str(_load(p)["imageTag"]["newName"])
            for p in (tree / REGISTRY).glob("*.yaml")
            if _load(p).get("kind") == "ImageTagTransformer"
        }
        functions = _functions(root, sha, tree, env)
    references = _our_images(rendered, registry)
    images = {name: ref.partition("@")[2] for name, ref in references.items()}
    return Snapshot(sha, rendered, images, references, functions)


# --- the promotion -------------------------------------------------------------------------------


@dataclass
class Gate:
    """Who the gate asks: GitHub, the registry, cosign, Argo CD (None: not configured)."""

    github: GitHub
    registry: Registry
    cosign: Cosign
    argocd: ArgoCD | None
    dev_minutes: int
    now: datetime


@dataclass
class Promotion:
    """What a promotion moves, for the pull request."""

    env: str
    old: Snapshot | None
    new: Snapshot
    commits: list[str]
    checks: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def application_file(root: Path, env: str) -> Path:
    """The Application that names the commit env runs."""
    return root / ENVIRONMENTS / env / "application.yaml"


def pinned_revision(root: Path, env: str) -> str:
    """The targetRevision env's Application names now."""
    match = TARGET_REVISION.search(application_file(root, env).read_text())
    if match is None:
        raise ValueError(f"{application_file(root, env)}: no targetRevision line")
    return match[2]


def write_revision(root: Path, env: str, sha: str) -> None:
    """Point env's Application at sha, editing only the targetRevision line."""
    path = application_file(root, env)
    path.write_text(TARGET_REVISION.sub(rf"\g<1>{sha}", path.read_text(), count=1))


def repository(root: Path) -> str:
    """`owner/name` of the GitHub repository Argo CD deploys from (argocd/repository)."""
    url = str(_load(root / REPOSITORY_FILE)["data"]["url"])
    match = re.fullmatch(r"https://github\.com/([^/]+/[^/]+?)(\.git)?", url)
    if match is None:
        raise ValueError(f"{REPOSITORY_FILE}: {url} is not a GitHub repository URL")
    return match[1]


def promote(
    root: Path, env: str, revision: str | None, allow_rollback: bool, gate: Gate
) -> Promotion:
    """Check revision through the gate and pin env to it; Refused or GitError if it may not."""
    if revision is None:
        revision = gate.argocd.current() if gate.argocd else gate.github.newest_passed()
    sha = commit_of(root, revision)
    if not is_ancestor(root, sha, main_ref(root)):
        raise Refused(f"{sha[:12]} is not on main: only a commit of main can be promoted")
    current = pinned_revision(root, env)
    old: str | None = None
    if SHA.fullmatch(current):
        old = commit_of(root, current)
        if not is_ancestor(root, old, sha) and not allow_rollback:
            raise Refused(
                f"{sha[:12]} is not a descendant of {env}'s {old[:12]}: "
                "a rollback needs --allow-rollback"
            )
    new = snapshot(root, env, sha)
    for name, digest in sorted(new.images.items()):
        problem = digest_problem(digest)
        if problem:
            raise Refused(f"{name} at {sha[:12]}: {problem} ({REGISTRY})")
    promotion = Promotion(env, snapshot(root, env, old) if old else None, new, [])
    if old:
        log = git(root, "log", "--format=%h %s", "--no-merges", f"{old}..{sha}")
        promotion.commits = log.splitlines()
    promotion.checks.append(gate.github.ci_passed(sha))
    for name, reference in sorted(new.references.items()):
        gate.registry.serves(reference)
        gate.cosign.verified(reference)
        promotion.checks.append(f"`{name}` published, signed, SBOM and provenance attested")
    if gate.argocd is None:
        promotion.warnings.append(
            "WARNING: ARGOCD_SERVER / ARGOCD_AUTH_TOKEN not set: not checked that dev ran "
            f"{sha[:12]} Synced and Healthy for {gate.dev_minutes} min"
        )
    else:
        promotion.checks.append(gate.argocd.ran(sha, gate.dev_minutes, gate.now))
    write_revision(root, env, sha)
    return promotion


def _rendered_diff(promotion: Promotion) -> list[str]:
    old = promotion.old.rendered if promotion.old else ""
    label = promotion.old.sha[:12] if promotion.old else "nothing"
    diff = list(
        difflib.unified_diff(
            old.splitlines(),
            promotion.new.rendered.splitlines(),
            f"{promotion.env}@{label}",
            f"{promotion.env}@{promotion.new.sha[:12]}",
            lineterm="",
        )
    )
    kept: list[str] = []
    size = 0
    for line in diff:
        if len(kept) >= MAX_DIFF_LINES or size + len(line) > MAX_DIFF_CHARS:
            break
        kept.append(line)
        size += len(line) + 1
    if len(kept) < len(diff):
        kept.append(
            f"… {len(diff) - len(kept)} more lines: render both commits to see them "
            f"(`kubectl kustomize {OVERLAYS}/{promotion.env}` in each)"
        )
    return kept or ["(no change in what the environment renders)"]


def body(promotion: Promotion) -> str:
    """The pull request's body: the revision, the checks, what moves, the rendered diff."""
    env, new, old = promotion.env, promotion.new, promotion.old
    lines = [
        f"Promotes **{env}** to `{new.sha}`"
        + (f" (from `{old.sha}`)." if old else " (its first pinned commit)."),
        "",
        "### Gate",
        "",
    ]
    lines += [f"- {w}" for w in promotion.warnings] + [f"- {c}" for c in promotion.checks]
    if old:
        lines += ["", f"### Commits ({len(promotion.commits)})", ""]
        lines += [f"- {c}" for c in promotion.commits[:MAX_COMMITS]]
        if len(promotion.commits) > MAX_COMMITS:
            lines.append(f"- … and {len(promotion.commits) - MAX_COMMITS} more")
    lines += ["", "### Images", "", "| image | old digest | new digest |", "|---|---|---|"]
    before = old.images if old else {}
    for name in sorted(set(before) | set(new.images)):
        was, now = before.get(name, "—"), new.images.get(name, "—")
        lines.append(f"| `{name}` | `{was}` | `{now}`{'' if was != now else ' (unchanged)'} |")
    lines += ["", "### Functions", "", "| function | old | new |", "|---|---|---|"]
    was_f = old.functions if old else {}
    for name in sorted(set(was_f) | set(new.functions)):
        was, now = was_f.get(name, "—"), new.functions.get(name, "—")
        lines.append(f"| `{name}` | {was} | {now if now != was else 'unchanged'} |")
    lines += ["", f"### Rendered diff of {env}", "", "```diff", *_rendered_diff(promotion), "```"]
    return "\n".join(lines)


# --- command line --------------------------------------------------------------------------------


def _function_digest(raw: str) -> tuple[str, str]:
    name, _, digest = raw.partition("=")
    if not NAME.fullmatch(name) or not DIGEST.fullmatch(digest):
        raise argparse.ArgumentTypeError(f"{raw!r} is not NAME=sha256:<64 hex digits>")
    return function_image(name), digest


def _parser() -> argparse.ArgumentParser:
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
    parser.add_argument("--revision", help="the commit to promote (default: the one dev runs)")
    parser.add_argument(
        "--allow-rollback", action="store_true", help="allow a commit older than the pinned one"
    )
    parser.add_argument(
        "--dev-minutes", type=int, default=10, help="how long dev must have run the commit"
    )
    parser.add_argument("--root", type=Path, default=REPO, help="repository root")
    return parser


def _gate(args: argparse.Namespace, http: Http, run: Runner, environ: Mapping[str, str]) -> Gate:
    repo = environ.get("GITHUB_REPOSITORY") or repository(args.root)
    server, token = environ.get("ARGOCD_SERVER", ""), environ.get("ARGOCD_AUTH_TOKEN", "")
    return Gate(
        github=GitHub(http, repo, environ.get("GITHUB_TOKEN", "")),
        registry=Registry(http),
        cosign=Cosign(run, workflow_identity(repo)),
        argocd=ArgoCD(http, server, token) if server and token else None,
        dev_minutes=args.dev_minutes,
        now=datetime.now(UTC),
    )


def main(
    argv: Sequence[str] | None = None,
    *,
    http: Http = urllib_http,
    run: Runner = run_command,
    environ: Mapping[str, str] = os.environ,
) -> int:
    """Command line for the image and promotion workflows."""
    parser = _parser()
    args = parser.parse_args(argv)
    given = (args.runtime_digest, args.dashboard_digest)
    if args.env != "dev":
        if any(given) or args.function_digest:
            parser.error(f"{args.env} runs a commit dev ran: give no digests")
        try:
            promotion = promote(
                args.root,
                args.env,
                args.revision,
                args.allow_rollback,
                _gate(args, http, run, environ),
            )
        except Refused as refusal:
            print(f"promote: refused: {refusal}", file=sys.stderr)
            return 1
        except (GitError, ValueError) as error:
            print(f"promote: {error}", file=sys.stderr)
            return 2
        for warning in promotion.warnings:
            print(f"promote: {warning}", file=sys.stderr)
        print(body(promotion))
        return 0
    if not all(given):
        parser.error("dev needs --runtime-digest and --dashboard-digest")
    digests = dict(zip(IMAGES, given, strict=True))
    digests.update(args.function_digest)
    try:
        print(pin_dev(args.root, digests))
    except ValueError as error:
        print(f"promote: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
