"""The workflows follow the project's CI rules, and agree with the manifests and the READMEs they
deploy: names, ports, versions and paths that must match are compared, never copied."""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.workflows.workflows import (
    KIND_CONFIG,
    KIND_UP,
    PINNED_USES,
    REPO,
    Workflow,
    workflow,
    workflows,
)

WORKFLOW_IDS = [w.name for w in workflows()]


def render(path: str) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed (needed for `kubectl kustomize`)")
    result = subprocess.run(
        [kubectl, "kustomize", str(REPO / path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def by_name(name: str) -> Workflow:
    return {w.name: w for w in workflows()}[name]


@pytest.fixture(params=WORKFLOW_IDS)
def wf(request: pytest.FixtureRequest) -> Workflow:
    return by_name(request.param)


def test_workflows_exist() -> None:
    assert set(WORKFLOW_IDS) == {"ci.yml", "images.yml", "promote.yml", "e2e.yml"}


def test_workflows_grant_nothing_by_default(wf: Workflow) -> None:
    assert wf.data["permissions"] == {}


def test_workflows_jobs_have_commented_permissions_and_timeouts(wf: Workflow) -> None:
    for job_id, job in wf.jobs.items():
        assert isinstance(job.get("permissions"), dict), f"{job_id}: no job-level permissions"
        if "uses" in job:
            # A job calling a reusable workflow cannot set a timeout; the called jobs do.
            continue
        assert 0 < job["timeout-minutes"] <= 90, job_id
    # Every granted scope says why, on its own line.
    scopes = re.findall(r"^\s+([a-z-]+): (read|write)\b(.*)$", wf.text, flags=re.MULTILINE)
    assert scopes
    for scope, access, rest in scopes:
        assert "#" in rest, f"{scope}: {access} has no comment"


def test_workflows_limit_concurrency(wf: Workflow) -> None:
    if set(wf.triggers) == {"workflow_call"}:
        # Called workflows run under their caller's group; one of their own would share its
        # name (github.workflow is the caller's) and wait on the caller forever.
        assert "concurrency" not in wf.data
        return
    assert "${{ github.workflow }}" in wf.data["concurrency"]["group"]


def test_workflows_pin_every_action_to_a_commit(wf: Workflow) -> None:
    for job_id, step in wf.steps():
        if "uses" in step:
            line = next(line for line in wf.text.splitlines() if f"uses: {step['uses']}" in line)
            assert PINNED_USES.search(line), f"{job_id}: {line.strip()}"


def test_workflows_use_one_commit_per_action_everywhere() -> None:
    pins: dict[str, set[tuple[str, str]]] = {}
    for w in workflows():
        for match in PINNED_USES.finditer(w.text):
            pins.setdefault(match["action"], set()).add((match["sha"], match["tag"]))
    assert pins
    assert {action: sha for action, sha in pins.items() if len(sha) > 1} == {}


def test_workflows_checkouts_keep_no_credentials(wf: Workflow) -> None:
    for job_id, step in wf.steps():
        if str(step.get("uses", "")).startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False, job_id


def test_workflows_expressions_reach_shell_through_env(wf: Workflow) -> None:
    for job_id, step in wf.steps():
        assert "${{" not in step.get("run", ""), f"{job_id}: {step.get('name', step['run'])}"


def test_workflows_ci_runs_make_test_on_both_pythons() -> None:
    ci = workflow("ci.yml")
    assert set(ci.triggers) >= {"push", "pull_request"}
    job = ci.jobs["test"]
    assert job["strategy"]["matrix"]["python"] == ["3.11", "3.12"]
    assert [s["run"] for s in job["steps"] if "run" in s][-1] == "make test"


def e2e_env() -> dict[str, str]:
    (job,) = workflow("e2e.yml").jobs.values()
    (step,) = [s for s in job["steps"] if "pytest tests/e2e" in s.get("run", "")]
    env: dict[str, str] = step["env"]
    return env


def test_workflows_e2e_settings_match_the_dev_overlay() -> None:
    env = e2e_env()
    assert env["E2E_REQUIRED"] == "1"
    rendered = render("gitops/overlays/dev")
    # The dashboard's key, resource-monitor's output (tests/manifests/test_function_deployments.py).
    (outputkey,) = [
        d
        for d in rendered
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("outputkey-")
    ]
    assert env["E2E_OUTPUT_KEY"] == outputkey["data"]["REDIS_OUTPUT_KEY"]
    assert env["E2E_NAMESPACE"] == outputkey["metadata"]["namespace"]
    node_ports = [
        p["nodePort"]
        for d in rendered
        if d["kind"] == "Service" and d["spec"].get("type") == "NodePort"
        for p in d["spec"]["ports"]
    ]
    assert node_ports == [31001]
    assert env["E2E_DASHBOARD_URL"] == f"http://localhost:{node_ports[0]}"


def kind_up_setting(name: str) -> str:
    """A NAME=value line of scripts/kind-up.sh, where the pinned versions live."""
    found = re.search(rf"^{name}=(\S+)$", KIND_UP.read_text(), flags=re.MULTILINE)
    assert found is not None, f"scripts/kind-up.sh sets no {name}"
    return found[1]


def test_workflows_kind_config_publishes_the_dashboard_node_port() -> None:
    config = yaml.safe_load(KIND_CONFIG.read_text())
    assert config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    mappings = [m for node in config["nodes"] for m in node.get("extraPortMappings", [])]
    assert {
        "containerPort": 31001,
        "hostPort": 31001,
        "listenAddress": "127.0.0.1",
        "protocol": "TCP",
    } in mappings
    e2e = workflow("e2e.yml")
    assert config["name"] == e2e.data["env"]["KIND_CLUSTER"]
    assert kind_up_setting("KIND_CONFIG") == str(KIND_CONFIG.relative_to(REPO))
    node_image = kind_up_setting("KIND_NODE_IMAGE")
    assert re.fullmatch(r"kindest/node:v[\d.]+@sha256:[0-9a-f]{64}", node_image)


def test_workflows_e2e_installs_kind_only_and_runs_make_kind_up() -> None:
    # The workflow brings the cluster up exactly as a user does: one make target, one script.
    e2e = workflow("e2e.yml")
    (kind_step,) = [
        s for _, s in e2e.steps() if str(s.get("uses", "")).startswith("helm/kind-action@")
    ]
    assert kind_step["with"]["install_only"] is True
    # Its post step cleans up the cluster the script made (named in .github/kind/cluster.yaml).
    assert kind_step["with"]["cluster_name"] == "${{ env.KIND_CLUSTER }}"
    assert re.fullmatch(r"v\d+\.\d+\.\d+", kind_step["with"]["version"])
    runs = [s["run"].strip() for _, s in e2e.steps() if "run" in s]
    assert "make kind-up" in runs
    up = runs.index("make kind-up")
    assert any("pytest tests/e2e" in r for r in runs[up + 1 :])
    makefile = (REPO / "Makefile").read_text()
    recipe = makefile.split("\nkind-up:", 1)[1].split("\n\n", 1)[0]
    assert "\tscripts/kind-up.sh" in recipe
    # Nothing the script does is done a second way in the workflow.
    for duplicate in ("kind create", "kind load", "docker build", "kubectl apply", "served_repo"):
        assert all(duplicate not in r for r in runs), duplicate


def test_workflows_e2e_installs_the_argocd_version_the_readme_documents() -> None:
    version = kind_up_setting("ARGOCD_VERSION")
    assert re.fullmatch(r"v3\.5\.\d+", version)
    install = f"https://raw.githubusercontent.com/argoproj/argo-cd/{version}/manifests/install.yaml"
    assert install in (REPO / "argocd" / "README.md").read_text()
    assert "argo-cd/$ARGOCD_VERSION/manifests/install.yaml" in KIND_UP.read_text()
    # No other Argo CD version named where a reader would follow it.
    for path in ("README.md", "argocd/README.md", "gitops/README.md"):
        text = (REPO / path).read_text()
        others = set(re.findall(r"Argo CD v?(\d+\.\d+\.\d+)", text)) - {version[1:]}
        others |= set(re.findall(r"argo-cd/(v[\d.]+)/", text)) - {version}
        assert others == set(), path
    git_server = list(yaml.safe_load_all((REPO / "tests" / "e2e" / "git-server.yaml").read_text()))
    images = {
        c["image"]
        for d in git_server
        if d["kind"] == "Deployment"
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    # The git server reuses Argo CD's image, already pulled by the install.
    assert images == {f"quay.io/argoproj/argocd:{version}"}


def test_workflows_kind_up_bootstraps_with_the_checked_script() -> None:
    script = KIND_UP.read_text()
    assert 'scripts/bootstrap_argocd.py kind --repo "$work/served"' in script
    assert "apply -k" not in script  # the bootstrap applies, after its checks
    readme = (REPO / "argocd" / "README.md").read_text()
    assert ".venv/bin/python scripts/bootstrap_argocd.py kind" in readme
    assert "make kind-up" in readme and "make kind-up" in (REPO / "README.md").read_text()


def test_workflows_e2e_dumps_the_cluster_on_failure() -> None:
    (job,) = workflow("e2e.yml").jobs.values()
    dumps = [s for s in job["steps"] if s.get("if") == "failure()"]
    assert dumps
    text = "\n".join(s.get("run", "") for s in dumps)
    for what in ("get applications", "get events", "describe pods", "logs"):
        assert what in text
