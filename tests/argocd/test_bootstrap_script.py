"""scripts/bootstrap_argocd.py refuses, with one line, every bootstrap that would never become
Healthy or would break someone else's Applications, and applies the cluster folder otherwise.

It runs as a user runs it, against a copy of this repository, with a fake `kubectl` first on PATH:
the fake renders with the real kubectl's kustomize, answers `get` from a JSON file standing for the
cluster, and logs every call."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts.bootstrap_argocd import PLACEHOLDER_DIGESTS, UPSTREAM_URL
from tests.e2e.served_repo import REGISTRY, commit_all, copy_tree, git, point_repository

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "bootstrap_argocd.py"
FORK = "https://github.com/a-fork/serverless-redis-platform.git"

FAKE_KUBECTL = """#!{python}
# A cluster in a JSON file: kustomize is the real kubectl's, get answers from the file, every call
# is logged. Set up by tests/argocd/test_bootstrap_script.py.
import json, os, subprocess, sys
args = sys.argv[1:]
with open(os.environ["FAKE_KUBECTL_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
if args[0] == "kustomize":
    os.execv(os.environ["REAL_KUBECTL"], ["kubectl", *args])
state = json.load(open(os.environ["FAKE_KUBECTL_STATE"]))
if args[0] == "get":
    key = " ".join(a for a in args[1:] if not a.startswith("-") and a not in ("json", "argocd"))
    if key in state:
        print(json.dumps(state[key]))
        sys.exit(0)
    print(f"Error from server (NotFound): {{key}}", file=sys.stderr)
    sys.exit(1)
if args[0] == "apply":
    sys.exit(0)
sys.exit(f"fake kubectl: unexpected {{args}}")
"""


def digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        pytest.skip("kubectl is not installed (the bootstrap renders with `kubectl kustomize`)")
    return path


def set_yaml(path: Path, change: Any) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def publish(tree: Path) -> None:
    """What the pin pull request does: real digests in gitops/registry."""
    for path in sorted((tree / REGISTRY).glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        if data.get("kind") == "ImageTagTransformer":
            name = data["imageTag"]["name"]
            set_yaml(path, lambda d, n=name: d["imageTag"].update(digest=digest(n)))


def set_prod_redis(tree: Path) -> None:
    """What step 6 of the fork path does for prod: its Redis's name and address."""
    overlay = tree / "gitops" / "overlays" / "prod"
    text = (overlay / "kustomization.yaml").read_text()
    (overlay / "kustomization.yaml").write_text(
        text.replace("redis.example.com", "redis.prod.internal")
    )
    policy = overlay / "network-policy-redis-egress.yaml"
    policy.write_text(policy.read_text().replace("192.0.2.10/32", "10.20.0.5/32"))


def pin(tree: Path, env: str, revision: str) -> None:
    """What a promotion merges: the environment's Application names the revision."""
    app = tree / "argocd" / "environments" / env / "application.yaml"
    set_yaml(app, lambda d: d["spec"]["source"].update(targetRevision=revision))


@pytest.fixture
def fork(tmp_path: Path) -> Path:
    """A fork set up as argocd/README.md says: its URL, published digests, prod's Redis, and prod
    and course pinned to the commit that has them."""
    tree = tmp_path / "fork"
    tree.mkdir()
    copy_tree(REPO, tree)
    point_repository(tree, FORK)
    publish(tree)
    set_prod_redis(tree)
    commit = commit_all(tree, "a fork, set up")
    for env in ("prod", "course"):
        pin(tree, env, commit)
    return tree


class Cluster:
    """The fake cluster the script talks to, and what it was asked."""

    def __init__(self, tmp_path: Path) -> None:
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        script = self.bin / "kubectl"
        script.write_text(FAKE_KUBECTL.format(python=sys.executable))
        script.chmod(0o755)
        self.state_file = tmp_path / "cluster.json"
        self.log = tmp_path / "kubectl.log"
        self.log.touch()
        self.state: dict[str, Any] = {
            "crd applications.argoproj.io": {"kind": "CustomResourceDefinition"},
            "applications.argoproj.io": {"items": []},
            "configmap argocd-cm": {"data": {}},
        }
        self.real = kubectl()

    def run(self, *args: str, repo: Path, env: dict[str, str] | None = None) -> Any:
        self.state_file.write_text(json.dumps(self.state))
        return subprocess.run(
            [sys.executable, str(SCRIPT), *args, "--repo", str(repo)],
            capture_output=True,
            text=True,
            check=False,
            env={
                "PATH": f"{self.bin}:/usr/bin:/bin",
                "HOME": str(self.bin.parent),
                "FAKE_KUBECTL_STATE": str(self.state_file),
                "FAKE_KUBECTL_LOG": str(self.log),
                "REAL_KUBECTL": self.real,
                **(env or {}),
            },
        )

    def calls(self) -> list[list[str]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def applied(self) -> list[list[str]]:
        return [c for c in self.calls() if c[0] == "apply"]


@pytest.fixture
def cluster(tmp_path: Path) -> Cluster:
    return Cluster(tmp_path)


def refusal(result: Any) -> str:
    """The one line a refused bootstrap prints."""
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("bootstrap_argocd: refused: ")
    return str(lines[0])


@pytest.mark.parametrize("cluster_name", ["kind", "prod", "course"])
def test_bootstrap_script_applies_a_fork_set_up_as_the_readme_says(
    cluster: Cluster, fork: Path, cluster_name: str
) -> None:
    result = cluster.run(cluster_name, repo=fork)
    assert result.returncode == 0, result.stderr
    assert cluster.applied() == [["apply", "-k", str(fork / "argocd" / "clusters" / cluster_name)]]
    assert FORK in result.stdout


def test_bootstrap_script_refuses_the_upstream_repository(cluster: Cluster, tmp_path: Path) -> None:
    # A fork that skipped step 1 would deploy upstream's main. A copy of this repository named
    # upstream's URL, not this repository itself: a fork that did step 1 runs this test too.
    skipped = tmp_path / "skipped-step-1"
    skipped.mkdir()
    copy_tree(REPO, skipped)
    point_repository(skipped, UPSTREAM_URL)
    line = refusal(cluster.run("kind", repo=skipped))
    assert "argocd/repository/repository.yaml names the upstream repository" in line
    assert UPSTREAM_URL in line and "--allow-upstream" in line
    assert cluster.applied() == []


def test_bootstrap_script_deploys_upstream_only_when_told(cluster: Cluster, fork: Path) -> None:
    point_repository(fork, UPSTREAM_URL)
    assert "upstream" in refusal(cluster.run("kind", repo=fork))
    assert cluster.run("kind", "--allow-upstream", repo=fork).returncode == 0
    assert cluster.run("kind", repo=fork, env={"SERVERLESS_ALLOW_UPSTREAM": "1"}).returncode == 0


@pytest.mark.parametrize("placeholder", PLACEHOLDER_DIGESTS)
def test_bootstrap_script_refuses_placeholder_digests(
    cluster: Cluster, fork: Path, placeholder: str
) -> None:
    # dev follows the branch: its render is the working tree's.
    runtime = fork / REGISTRY / "runtime.yaml"
    set_yaml(runtime, lambda d: d["imageTag"].update(digest=f"sha256:{placeholder}"))
    line = refusal(cluster.run("kind", repo=fork))
    assert "serverless-dev at main renders the placeholder image digest" in line
    assert "pin pull request" in line and "pull it into this clone" in line
    assert "Promote" not in line
    assert cluster.applied() == []


def test_bootstrap_script_renders_prod_at_its_pinned_revision(cluster: Cluster, fork: Path) -> None:
    # The working tree is fine, but prod runs an older commit that still has the placeholders:
    # what prod would render is that commit, so the bootstrap refuses.
    old = fork.parent / "old"
    old.mkdir()
    copy_tree(REPO, old)
    point_repository(old, FORK)
    placeholder_commit = commit_all(old, "not published yet")
    git(fork, "fetch", "--quiet", str(old), f"{placeholder_commit}:refs/heads/old")
    pin(fork, "prod", placeholder_commit)
    line = refusal(cluster.run("prod", repo=fork))
    assert f"serverless-prod at {placeholder_commit[:12]} renders the placeholder" in line
    # A pinned commit moves by promotion, not by the next pin pull request.
    assert "run the Promote workflow" in line
    # Pinned to a commit the repository does not have: refused, not rendered from the tree.
    pin(fork, "prod", "1" * 40)
    assert "is not in" in refusal(cluster.run("prod", repo=fork))


def test_bootstrap_script_refuses_the_placeholder_redis(cluster: Cluster, fork: Path) -> None:
    (fork / "gitops/overlays/prod/network-policy-redis-egress.yaml").write_text(
        (REPO / "gitops/overlays/prod/network-policy-redis-egress.yaml").read_text()
    )
    commit = commit_all_again(fork, "egress not set")
    pin(fork, "prod", commit)
    line = refusal(cluster.run("prod", repo=fork))
    assert "placeholder address 192.0.2.10/32" in line
    kustomization = fork / "gitops/overlays/prod/kustomization.yaml"
    kustomization.write_text((REPO / "gitops/overlays/prod/kustomization.yaml").read_text())
    pin(fork, "prod", commit_all_again(fork, "host not set"))
    assert "still names Redis redis.example.com" in refusal(cluster.run("prod", repo=fork))


def commit_all_again(tree: Path, message: str) -> str:
    """Commit every change of an existing repository; its commit id."""
    git(tree, "add", "--all")
    git(tree, "commit", "--quiet", "--no-verify", "--message", message)
    return git(tree, "rev-parse", "HEAD").strip()


def test_bootstrap_script_refuses_a_cluster_without_argocd(cluster: Cluster, fork: Path) -> None:
    del cluster.state["crd applications.argoproj.io"]
    line = refusal(cluster.run("kind", repo=fork))
    assert "Argo CD is not installed" in line and "install it first" in line


def foreign(name: str, namespace: str = "argocd", url: str = "https://x.example/a.git") -> Any:
    return {
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"source": {"repoURL": url}},
    }


def test_bootstrap_script_refuses_an_instance_running_others_applications(
    cluster: Cluster, fork: Path
) -> None:
    cluster.state["applications.argoproj.io"]["items"] = [
        foreign("guestbook"),
        foreign("payments", namespace="team-b"),
        # Our name, someone else's repository: not ours either.
        foreign("serverless-dev"),
    ]
    line = refusal(cluster.run("kind", repo=fork))
    assert "already runs 3 Application(s) this repository does not own" in line
    assert "argocd/guestbook" in line and "team-b/payments" in line
    assert "--shared-instance" in line
    assert cluster.applied() == []
    # Told so, it goes ahead: the settings leave those Applications working (argocd/README.md).
    assert cluster.run("kind", "--shared-instance", repo=fork).returncode == 0
    assert cluster.run("kind", repo=fork, env={"SERVERLESS_SHARED_ARGOCD": "1"}).returncode == 0


def test_bootstrap_script_runs_again_over_its_own_applications(
    cluster: Cluster, fork: Path
) -> None:
    # A second run (or a re-bootstrap) finds only what the first one created.
    cluster.state["applications.argoproj.io"]["items"] = [
        foreign(name, url=FORK)
        for name in ("serverless-root", "serverless-platform", "serverless-dev")
    ]
    assert cluster.run("kind", repo=fork).returncode == 0


def test_bootstrap_script_never_loosens_enforced_impersonation(
    cluster: Cluster, fork: Path
) -> None:
    cluster.state["configmap argocd-cm"] = {
        "data": {"application.sync.impersonation.enabled": "true"}
    }
    line = refusal(cluster.run("kind", repo=fork))
    assert "enforces sync impersonation" in line
    assert "application.sync.impersonation.enforced" in line
    # Impersonation off (the install's default): ours turns it on without enforcing it.
    cluster.state["configmap argocd-cm"] = {"data": {}}
    assert cluster.run("kind", repo=fork).returncode == 0


def test_bootstrap_script_check_only_applies_nothing(cluster: Cluster, fork: Path) -> None:
    result = cluster.run("kind", "--check-only", repo=fork)
    assert result.returncode == 0 and "every check passed" in result.stdout
    assert cluster.applied() == []


def test_bootstrap_script_refuses_an_unknown_cluster(cluster: Cluster, fork: Path) -> None:
    assert "no cluster folder argocd/clusters/staging" in refusal(cluster.run("staging", repo=fork))
