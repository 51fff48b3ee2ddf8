"""Bootstrap one cluster's Argo CD from argocd/clusters/<cluster>, once, after refusing what would
never become Healthy or would break Applications this repository does not own.

    python3 scripts/bootstrap_argocd.py kind [--repo DIR] [--allow-upstream] [--shared-instance]

Refuses, with one line and exit code 2:
- the upstream repository URL in argocd/repository/ (a fork would deploy upstream's `main`),
  unless --allow-upstream (or SERVERLESS_ALLOW_UPSTREAM=1) says so on purpose;
- placeholder image digests (the SHA-256 of empty input, all zeros) or the placeholder Redis in
  what an environment of the cluster renders, at the revision its Application names;
- a cluster without Argo CD's CRDs (install Argo CD first);
- an Argo CD instance that already has Applications this repository does not own, unless
  --shared-instance (or SERVERLESS_SHARED_ARGOCD=1);
- an instance that enforces sync impersonation while argocd/platform/argocd-cm.yaml would turn
  enforcement off for everyone.
Then it runs `kubectl apply -k argocd/clusters/<cluster>` (kubectl from PATH, current context).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
UPSTREAM_URL = "https://github.com/serverless-redis-platform/serverless-redis-platform.git"
REPOSITORY_FILE = "argocd/repository/repository.yaml"
ARGOCD_CM_FILE = "argocd/platform/argocd-cm.yaml"
# The SHA-256 of empty input (what the overlays carry until the first pin) and all zeros.
PLACEHOLDER_DIGESTS = (
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "0" * 64,
)
PLACEHOLDER_DIGEST = re.compile(r"@sha256:(" + "|".join(PLACEHOLDER_DIGESTS) + r")\b")
PLACEHOLDER_REDIS_HOST = "redis.example.com"
# RFC 5737's first documentation range: what prod's Redis egress names until it is set.
PLACEHOLDER_NETWORK = ipaddress.IPv4Network("192.0.2.0/24")
COMMIT = re.compile(r"[0-9a-f]{40}")
ENFORCED = "application.sync.impersonation.enforced"
IMPERSONATION = "application.sync.impersonation.enabled"
ALLOW_UPSTREAM_ENV = "SERVERLESS_ALLOW_UPSTREAM"
SHARED_ENV = "SERVERLESS_SHARED_ARGOCD"

Obj = dict[str, Any]


class Refusal(Exception):
    """Why the bootstrap stops: one line for the user."""


@dataclass(frozen=True)
class Options:
    """What the command line chose."""

    cluster: str
    repo: Path
    allow_upstream: bool
    shared_instance: bool
    check_only: bool


def run(argv: Sequence[str], stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run a command, capturing its output (never raising on a non-zero exit)."""
    return subprocess.run(list(argv), input=stdin, capture_output=True, check=False)


def kubectl(*args: str) -> subprocess.CompletedProcess[bytes]:
    """kubectl from PATH, on the current context."""
    return run(["kubectl", *args])


def render(path: Path) -> tuple[str, list[Obj]]:
    """`kubectl kustomize path`: the text and its objects."""
    result = kubectl("kustomize", str(path))
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip().splitlines()
        raise Refusal(f"`kubectl kustomize {path}` failed: {message[-1] if message else '?'}")
    text = result.stdout.decode()
    return text, [doc for doc in yaml.safe_load_all(text) if isinstance(doc, dict)]


@contextmanager
def tree_at(repo: Path, revision: str) -> Iterator[Path]:
    """The repository's files as Argo CD renders them: the commit a pinned revision names, else
    the working tree (a branch: what will be pushed)."""
    if not COMMIT.fullmatch(revision):
        yield repo
        return
    archive = run(["git", "-C", str(repo), "archive", "--format=tar", revision])
    if archive.returncode != 0:
        raise Refusal(
            f"commit {revision} is not in {repo}: fetch it (an environment runs that revision)"
        )
    with tempfile.TemporaryDirectory(prefix="bootstrap-") as tmp:
        unpacked = run(["tar", "-x", "-C", tmp], stdin=archive.stdout)
        if unpacked.returncode != 0:
            raise Refusal(f"could not unpack commit {revision}: {unpacked.stderr.decode().strip()}")
        yield Path(tmp)


def check_repository(objects: list[Obj], allow_upstream: bool) -> str:
    """The one repository URL every Application deploys from; refuses upstream's by default."""
    urls = {
        o["spec"]["source"]["repoURL"]
        for o in objects
        if o.get("kind") == "Application" and "source" in o.get("spec", {})
    }
    if len(urls) != 1:
        raise Refusal(f"the Applications name {len(urls)} repositories ({sorted(urls)}), not one")
    url = str(next(iter(urls)))
    if url.rstrip("/").removesuffix(".git").lower() == UPSTREAM_URL.removesuffix(".git") and (
        not allow_upstream
    ):
        raise Refusal(
            f"{REPOSITORY_FILE} names the upstream repository ({url}): point it at your fork "
            f"(argocd/README.md, step 1), or pass --allow-upstream to deploy upstream on purpose"
        )
    return url


def environments(objects: list[Obj]) -> list[Obj]:
    """The Applications that deploy an overlay of gitops/."""
    return [
        o
        for o in objects
        if o.get("kind") == "Application"
        and str(o["spec"]["source"].get("path", "")).startswith("gitops/")
    ]


def placeholders(app: str, revision: str, text: str, objects: list[Obj]) -> None:
    """Refuses an environment whose render still carries a placeholder digest or Redis."""
    where = f"{app} at {revision[:12]}"
    digest = PLACEHOLDER_DIGEST.search(text)
    if digest and COMMIT.fullmatch(revision):
        raise Refusal(
            f"{where} renders the placeholder image digest sha256:{digest[1][:12]}…: once the "
            f"image workflow's pin pull request is merged, run the Promote workflow, merge its "
            f"pull request and fetch it here (argocd/README.md, steps 3 and 7)"
        )
    if digest:
        raise Refusal(
            f"{where} renders the placeholder image digest sha256:{digest[1][:12]}…: run the "
            f"image workflow, merge its pin pull request and pull it into this clone "
            f"(argocd/README.md, step 3)"
        )
    if PLACEHOLDER_REDIS_HOST in text:
        raise Refusal(
            f"{where} still names Redis {PLACEHOLDER_REDIS_HOST}: set REDIS_HOST and the Redis "
            f"egress address in its overlay, create Secret redis-auth (argocd/README.md, step 6)"
        )
    for obj in objects:
        if obj.get("kind") != "NetworkPolicy":
            continue
        for rule in obj["spec"].get("egress", []):
            for peer in rule.get("to", []):
                cidr = peer.get("ipBlock", {}).get("cidr")
                network = ipaddress.ip_network(cidr) if cidr else None
                if isinstance(network, ipaddress.IPv4Network) and network.subnet_of(
                    PLACEHOLDER_NETWORK
                ):
                    raise Refusal(
                        f"{where} allows Redis at the placeholder address {cidr}: set your "
                        f"Redis's address in its network-policy-redis-egress.yaml "
                        f"(argocd/README.md, step 6)"
                    )


def check_environments(repo: Path, objects: list[Obj]) -> None:
    """Render every environment of the cluster at its revision and refuse placeholders."""
    for app in environments(objects):
        source = app["spec"]["source"]
        revision = str(source["targetRevision"])
        with tree_at(repo, revision) as tree:
            text, rendered = render(tree / source["path"])
        placeholders(app["metadata"]["name"], revision, text, rendered)


def live_json(*args: str) -> Obj | None:
    """`kubectl get … -o json`, or None when the object or kind does not exist."""
    result = kubectl("get", *args, "-o", "json")
    if result.returncode != 0:
        return None
    data: Obj = json.loads(result.stdout)
    return data


def check_instance(objects: list[Obj], url: str, repo: Path, shared: bool) -> None:
    """Refuse a cluster without Argo CD, an instance shared without saying so, and a setting
    that would loosen the instance's enforced impersonation."""
    if live_json("crd", "applications.argoproj.io") is None:
        raise Refusal(
            "Argo CD is not installed on this cluster (no applications.argoproj.io CRD): "
            "install it first (argocd/README.md, step 5)"
        )
    ours = {o["metadata"]["name"] for o in objects if o.get("kind") == "Application"}
    found = live_json("applications.argoproj.io", "--all-namespaces") or {"items": []}
    foreign = sorted(
        f"{a['metadata'].get('namespace', '?')}/{a['metadata']['name']}"
        for a in found["items"]
        if not owned(a, ours, url)
    )
    if foreign and not shared:
        listed = ", ".join(foreign[:3]) + (", …" if len(foreign) > 3 else "")
        raise Refusal(
            f"this Argo CD already runs {len(foreign)} Application(s) this repository does not "
            f"own ({listed}): use a dedicated instance, or pass --shared-instance "
            f'(argocd/README.md, "Sharing an Argo CD instance")'
        )
    live = (live_json("configmap", "argocd-cm", "--namespace", "argocd") or {}).get("data") or {}
    wanted = yaml.safe_load((repo / ARGOCD_CM_FILE).read_text())["data"]
    if (
        live.get(IMPERSONATION) == "true"
        and live.get(ENFORCED, "true") != "false"
        and wanted.get(ENFORCED) == "false"
    ):
        raise Refusal(
            f"this Argo CD enforces sync impersonation and {ARGOCD_CM_FILE} would turn "
            f'enforcement off for every project: set {ENFORCED}: "true" there first'
        )


def owned(app: Obj, ours: set[str], url: str) -> bool:
    """Whether a live Application is one of this repository's (by name, in Argo CD's namespace,
    from this repository)."""
    source = app.get("spec", {}).get("source") or {}
    return (
        app["metadata"]["name"] in ours
        and app["metadata"].get("namespace") == "argocd"
        and source.get("repoURL") == url
    )


def bootstrap(options: Options) -> str:
    """Every check, then the apply; returns what to do next."""
    folder = options.repo / "argocd" / "clusters" / options.cluster
    if not (folder / "kustomization.yaml").is_file():
        raise Refusal(f"no cluster folder argocd/clusters/{options.cluster} in {options.repo}")
    _, objects = render(folder)
    url = check_repository(objects, options.allow_upstream)
    check_environments(options.repo, objects)
    check_instance(objects, url, options.repo, options.shared_instance)
    if options.check_only:
        return f"argocd/clusters/{options.cluster}: every check passed (nothing applied)"
    applied = kubectl("apply", "-k", str(folder))
    if applied.returncode != 0:
        raise Refusal(f"kubectl apply -k {folder} failed: {applied.stderr.decode().strip()}")
    names = sorted(o["metadata"]["name"] for o in objects if o.get("kind") == "Application")
    return (
        f"argocd/clusters/{options.cluster} applied: {', '.join(names)} now sync from {url}; "
        f"watch them with `kubectl -n argocd get applications`"
    )


def flag(environ: dict[str, str], name: str) -> bool:
    """An opt-in from the environment (1, true, yes)."""
    return environ.get(name, "").strip().lower() in ("1", "true", "yes")


def parse(argv: Sequence[str] | None, environ: dict[str, str]) -> Options:
    """The command line, with the environment's opt-ins."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("cluster", help="a folder of argocd/clusters (kind, prod, course)")
    parser.add_argument("--repo", type=Path, default=REPO, help="the repository (default: this)")
    parser.add_argument(
        "--allow-upstream", action="store_true", help="deploy the upstream repository on purpose"
    )
    parser.add_argument(
        "--shared-instance",
        action="store_true",
        help="bootstrap an Argo CD that already runs other Applications",
    )
    parser.add_argument("--check-only", action="store_true", help="check, apply nothing")
    args = parser.parse_args(argv)
    return Options(
        cluster=args.cluster,
        repo=args.repo.resolve(),
        allow_upstream=args.allow_upstream or flag(environ, ALLOW_UPSTREAM_ENV),
        shared_instance=args.shared_instance or flag(environ, SHARED_ENV),
        check_only=args.check_only,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: 0 when applied (or checked), 2 with one line when refused."""
    options = parse(argv, dict(os.environ))
    try:
        message = bootstrap(options)
    except Refusal as refusal:
        print(f"bootstrap_argocd: refused: {refusal}", file=sys.stderr)
        return 2
    print(message)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
