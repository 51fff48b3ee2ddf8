"""`make kind-up` (scripts/kind-up.sh), the path the e2e workflow runs on a real kind cluster, run
here with fake `docker`, `kind` and `kubectl` first on PATH: no Docker engine or cluster exists on
this machine, so this checks what the script asks of them, in which order, and what it serves.
The fakes log every call; `kubectl kustomize` is the real one, and git and Python are real."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.served_repo import git
from tests.workflows.workflows import KIND_UP, REPO

GIT_URL = "git://git-server.gitops-e2e.svc.cluster.local/serverless.git"

FAKE = """#!{python}
# A stand-in for {tool}, set up by tests/workflows/test_kind_up.py: logs its arguments, answers
# from the JSON state file, keeps what is piped into `kubectl exec`.
import json, os, subprocess, sys, tempfile
tool, args = {tool!r}, sys.argv[1:]


def served_commit():
    # main of the repository piped into the git server: what dev should end up running.
    with tempfile.TemporaryDirectory() as bare:
        subprocess.run(["tar", "-C", bare, "-xf", os.environ["FAKE_SERVED"]], check=True)
        return subprocess.run(
            ["git", "--git-dir", bare, "rev-parse", "main"], capture_output=True, text=True
        ).stdout.strip()


with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps([tool, *args]) + "\\n")
state = json.load(open(os.environ["FAKE_STATE"]))
if tool == "kubectl":
    if args[0] == "kustomize":
        os.execv(os.environ["REAL_KUBECTL"], ["kubectl", *args])
    if args[0] == "create":
        print("apiVersion: v1\\nkind: Namespace\\nmetadata:\\n  name: argocd")
    elif "exec" in args:
        open(os.environ["FAKE_SERVED"], "wb").write(sys.stdin.buffer.read())
    elif "apply" in args and "-" in args:
        sys.stdin.read()
    elif args[0] == "get" or "get" in args[:3]:
        skip = ("get", "argocd", "json")
        key = " ".join(a for a in args if not a.startswith("-") and a not in skip)
        for name, answer in state["kubectl"].items():
            if key.startswith(name):
                if isinstance(answer, str) and "{{served}}" in answer:
                    answer = answer.replace("{{served}}", served_commit())
                print(answer if isinstance(answer, str) else json.dumps(answer), end="")
                sys.exit(0)
        sys.exit(1)
elif tool == "kind" and args[:2] == ["get", "clusters"]:
    print("\\n".join(state.get("clusters", [])))
"""


class Tools:
    """The fake tools and what they were asked."""

    def __init__(self, tmp_path: Path) -> None:
        real = shutil.which("kubectl")
        if real is None:
            pytest.skip("kubectl is not installed (the bootstrap renders with `kubectl kustomize`)")
        self.real_kubectl = real
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        for tool in ("docker", "kind", "kubectl"):
            path = self.bin / tool
            path.write_text(FAKE.format(python=sys.executable, tool=tool))
            path.chmod(0o755)
        self.log = tmp_path / "calls.log"
        self.state_file = tmp_path / "state.json"
        self.served = tmp_path / "served.tar"
        self.tmp = tmp_path
        self.state: dict[str, Any] = {
            "clusters": [],
            "kubectl": {
                "crd applications.argoproj.io": {"kind": "CustomResourceDefinition"},
                "applications.argoproj.io": {"items": []},
                "configmap argocd-cm": {"data": {}},
                "application serverless-dev": "{served} Synced Healthy",
            },
        }

    def run(self) -> subprocess.CompletedProcess[str]:
        self.state_file.write_text(json.dumps(self.state))
        self.log.write_text("")
        return subprocess.run(
            [str(KIND_UP)],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
            env={
                "PATH": f"{self.bin}:/usr/bin:/bin",
                "HOME": str(self.tmp),
                "TMPDIR": str(self.tmp),
                "FAKE_LOG": str(self.log),
                "FAKE_STATE": str(self.state_file),
                "FAKE_SERVED": str(self.served),
                "REAL_KUBECTL": self.real_kubectl,
                "KIND_UP_PYTHON": sys.executable,
                "KIND_UP_WAIT_SECONDS": "20",
            },
        )

    def calls(self) -> list[list[str]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]


@pytest.fixture
def tools(tmp_path: Path) -> Tools:
    return Tools(tmp_path)


def position(calls: list[list[str]], *words: str) -> int:
    """Index of the first call that contains every word, in order of the log."""
    for index, call in enumerate(calls):
        if all(any(word in arg for arg in call) for word in words):
            return index
    raise AssertionError(f"no call with {words}: {calls}")


def function_images() -> list[str]:
    return sorted(
        f"serverless-function-{p.parent.name}"
        for p in (REPO / "apps" / "functions").glob("*/requirements.txt")
    )


def test_kind_up_is_valid_bash() -> None:
    result = subprocess.run(["bash", "-n", str(KIND_UP)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_kind_up_passes_shellcheck() -> None:
    # GitHub's runners carry shellcheck, so CI runs this; elsewhere it needs installing.
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed")
    result = subprocess.run([shellcheck, str(KIND_UP)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


@pytest.mark.timeout(300)
def test_kind_up_runs_the_users_path_in_order(tools: Tools) -> None:
    result = tools.run()
    assert result.returncode == 0, result.stderr
    calls = tools.calls()
    script = KIND_UP.read_text()
    node_image = next(line for line in script.splitlines() if line.startswith("KIND_NODE_IMAGE="))
    version = next(line for line in script.splitlines() if line.startswith("ARGOCD_VERSION="))
    steps = [
        position(calls, "kind", "create", "cluster", ".github/kind/cluster.yaml"),
        position(calls, "docker", "build", "apps/runtime/Dockerfile"),
        position(calls, "docker", "build", "apps/dashboard/Dockerfile"),
        position(calls, "kind", "load", "docker-image"),
        position(calls, "kubectl", "--server-side", "/manifests/install.yaml"),
        position(calls, "kubectl", "apply", "tests/e2e/git-server.yaml"),
        position(calls, "kubectl", "exec", "deployment/git-server"),
        position(calls, "kubectl", "apply", "-k", "argocd/clusters/kind"),
        position(calls, "kubectl", "get", "application", "serverless-dev"),
    ]
    assert steps == sorted(steps), calls
    create = calls[steps[0]]
    assert create[create.index("--image") + 1] == node_image.split("=", 1)[1]
    install = calls[steps[4]]
    assert f"argo-cd/{version.split('=', 1)[1]}/manifests/install.yaml" in install[-1]
    load = calls[steps[3]]
    loaded = {a.removesuffix(":local") for a in load if a.endswith(":local")}
    assert loaded == {"serverless-runtime", "monitoring-dashboard", *function_images()}
    assert load[-2:] == ["--name", "serverless"]
    assert "Synced and Healthy" in result.stderr and "http://localhost:31001" in result.stderr


@pytest.mark.timeout(300)
def test_kind_up_serves_the_working_tree_pointed_at_the_git_server(tools: Tools) -> None:
    assert tools.run().returncode == 0
    bare = tools.tmp / "served.git"
    bare.mkdir()
    subprocess.run(["tar", "-C", str(bare), "-xf", str(tools.served)], check=True)
    repository = yaml.safe_load(git(bare, "show", "main:argocd/repository/repository.yaml"))
    assert repository["data"] == {"url": GIT_URL, "revision": "main"}
    runtime = yaml.safe_load(git(bare, "show", "main:gitops/registry/runtime.yaml"))
    assert runtime["imageTag"]["newName"] == "serverless-runtime"
    assert runtime["imageTag"]["newTag"] == "local" and "digest" not in runtime["imageTag"]
    # The function file served is the working tree's.
    function = "apps/functions/resource-monitor/usermodule.py"
    assert git(bare, "show", f"main:{function}") == (REPO / function).read_text()


@pytest.mark.timeout(300)
def test_kind_up_reuses_an_existing_cluster(tools: Tools) -> None:
    tools.state["clusters"] = ["serverless"]
    result = tools.run()
    assert result.returncode == 0, result.stderr
    assert not any(call[:3] == ["kind", "create", "cluster"] for call in tools.calls())
    assert "exists: reusing it" in result.stderr


@pytest.mark.timeout(300)
def test_kind_up_stops_when_the_bootstrap_refuses(tools: Tools) -> None:
    # Another team's Application on this instance: the bootstrap's refusal ends the run.
    tools.state["kubectl"]["applications.argoproj.io"] = {
        "items": [
            {
                "metadata": {"name": "guestbook", "namespace": "argocd"},
                "spec": {"source": {"repoURL": "https://x.example/g.git"}},
            }
        ]
    }
    result = tools.run()
    assert result.returncode == 2
    assert "does not own (argocd/guestbook)" in result.stderr
    assert not any("serverless-dev" in call for call in tools.calls())


@pytest.mark.timeout(300)
def test_kind_up_fails_when_dev_never_becomes_healthy(tools: Tools) -> None:
    tools.state["kubectl"]["application serverless-dev"] = "{served} Synced Degraded"
    result = tools.run()
    assert result.returncode == 1
    assert "not Synced and Healthy after 20s" in result.stderr
    assert "Synced Degraded)" in result.stderr


@pytest.mark.timeout(300)
def test_kind_up_waits_for_the_served_commit_not_the_previous_one(tools: Tools) -> None:
    # A second run: dev is still Synced and Healthy at what the first run served. That is not
    # the working tree of now: kind-up asks Argo CD to refresh and keeps waiting.
    tools.state["kubectl"]["application serverless-dev"] = "0123abc Synced Healthy"
    result = tools.run()
    assert result.returncode == 1
    assert "(last: 0123abc Synced Healthy)" in result.stderr
    refreshed = [c for c in tools.calls() if "annotate" in c]
    assert {c[c.index("application") + 1] for c in refreshed} == {
        "serverless-root",
        "serverless-dev",
    }
    assert all("argocd.argoproj.io/refresh=normal" in c for c in refreshed)


def test_kind_up_names_what_is_missing(tools: Tools) -> None:
    (tools.bin / "kind").unlink()
    tools.state_file.write_text(json.dumps(tools.state))
    result = subprocess.run(
        [str(KIND_UP)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": f"{tools.bin}:/usr/bin:/bin", "HOME": str(tools.tmp)},
    )
    if shutil.which("kind", path="/usr/bin:/bin"):
        pytest.skip("a real kind is installed in /usr/bin")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "kind-up: kind is not installed (needed: docker, kind, kubectl, git)"
    )
