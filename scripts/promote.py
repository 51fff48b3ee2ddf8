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
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from scripts.promotion_body import Promotion, body
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
from scripts.revisions import (
    FUNCTIONS,
    REGISTRY,
    GitError,
    commit_of,
    git,
    is_ancestor,
    load_yaml,
    main_ref,
    snapshot,
)

REPO = Path(__file__).resolve().parent.parent
ENVIRONMENTS = Path("argocd/environments")
REPOSITORY_FILE = Path("argocd/repository/repository.yaml")
IMAGES = ("serverless-runtime", "monitoring-dashboard")
FUNCTION_IMAGE_PREFIX = "serverless-function-"
PROMOTED = ("prod", "course")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
SHA = re.compile(r"[0-9a-f]{40}")
NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?")
TARGET_REVISION = re.compile(r"^(\s*targetRevision:\s*)(\S+)[ \t]*$", re.MULTILINE)


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


# --- dev: the digests of gitops/registry ---------------------------------------------------------


def registry_files(root: Path) -> dict[str, Path]:
    """image name -> its file in gitops/registry (an ImageTagTransformer)."""
    files = {}
    for path in sorted((root / REGISTRY).glob("*.yaml")):
        data = load_yaml(path)
        if data.get("kind") == "ImageTagTransformer":
            files[data["imageTag"]["name"]] = path
    return files


def pinned_digests(root: Path) -> dict[str, str]:
    """The digest gitops/registry pins for each of our images."""
    return {
        name: str(load_yaml(path)["imageTag"].get("digest", ""))
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
    url = str(load_yaml(root / REPOSITORY_FILE)["data"]["url"])
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
    main = main_ref(root)
    if not is_ancestor(root, sha, main):
        raise Refused(
            f"{sha[:12]} is not on main ({main.removeprefix('refs/')}): "
            "only a commit of main can be promoted"
        )
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
