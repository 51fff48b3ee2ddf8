"""`serverless-runtime new`: the folder it makes passes its own test and deploys as a second
function in every overlay that deploys functions (dev, and prod at a revision that has it); with
--keda it scales with KEDA; a function with requirements.txt runs in its own pinned image."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from serverless_runtime.cli import main

from tests.manifests.images import INITIAL_DIGEST, registry_names
from tests.manifests.rendered import (
    REPO_ROOT,
    Doc,
    container,
    find,
    function_runtimes,
    kustomize_build,
    resolve_env,
)
from tests.manifests.test_function_deployments import assert_deployed, assert_hardened

FUNCTION_IMAGES = REPO_ROOT / "scripts" / "function_images.py"
DIGEST = "sha256:" + "3c" * 32


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the repository's rendering inputs and the functions' pytest setup."""
    for part in ("gitops", "apps/functions", "tests/fixtures"):
        shutil.copytree(REPO_ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("__py*"))
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def new(tree: Path, *args: str) -> int:
    return main(["new", *args, "--dir", str(tree / "apps/functions")])


def promote(tree: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scripts.promote", *args, "--root", str(tree)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def test_new_function_passes_its_own_test(tree: Path) -> None:
    assert new(tree, "cpu-summary") == 0
    folder = tree / "apps/functions/cpu-summary"
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "deployment.yaml",
        "function.env",
        "kustomization.yaml",
        "test_usermodule.py",
        "usermodule.py",
    ]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "apps/functions"],
        cwd=tree,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # Every folder's tests ran, each its own test_usermodule.py, the new one's among them.
    assert "cpu-summary/test_usermodule.py::" in result.stdout
    assert "resource-monitor/test_usermodule.py::" in result.stdout
    assert " failed" not in result.stdout and " skipped" not in result.stdout


def test_new_ends_with_the_commands_that_test_and_run_it_locally(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert new(tree, "cpu-summary") == 0
    said = capsys.readouterr().out
    folder = tree / "apps/functions/cpu-summary"
    assert said.startswith(f"created {folder}")
    assert "make invoke FUNCTION=cpu-summary INPUT=examples/metrics.json\n" in said.replace(
        "   # one call, no Redis", ""
    )
    assert f".venv/bin/python -m pytest {folder}" in said
    assert "make invoke FUNCTION=cpu-summary INPUT=examples/metrics.json LIVE=1" in said
    assert "make logs FUNCTION=cpu-summary FOLLOW=1" in said
    # What they name exists: the make targets and the sample input.
    targets = (REPO_ROOT / "Makefile").read_text()
    assert all(f"\n{target}: " in targets for target in ("run", "invoke", "logs"))
    assert (REPO_ROOT / "examples" / "metrics.json").is_file()


def test_new_function_renders_into_dev_and_prod_never_course(tree: Path) -> None:
    assert new(tree, "cpu-summary") == 0
    folder = tree / "apps/functions/cpu-summary"
    dev = kustomize_build(tree / "gitops/overlays/dev")
    assert_deployed(dev, folder)
    assert_deployed(dev, tree / "apps/functions/resource-monitor")
    assert_hardened(find(dev, "Deployment", "cpu-summary"))
    env = resolve_env(container(find(dev, "Deployment", "cpu-summary"), "runtime"), dev)
    assert env["REDIS_OUTPUT_KEY"] == "cpu-summary"  # its own key, not resource-monitor's
    # prod renders it at a revision that has it (prod runs the commit it was promoted to:
    # test_promotion.py), and course never.
    prod = kustomize_build(tree / "gitops/overlays/prod")
    assert_deployed(prod, folder)
    assert_hardened(find(prod, "Deployment", "cpu-summary"))
    course = kustomize_build(tree / "gitops/overlays/course")
    assert [d["metadata"]["name"] for d in function_runtimes(course)] == ["serverless-runtime"]


def test_new_refuses_an_existing_folder_or_a_bad_name(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = tree / "apps/functions/kustomization.yaml"
    before = index.read_text()
    for name in ("resource-monitor", "Bad_Name", "x-", "a" * 41, "redis", "runtime"):
        assert new(tree, name) == 2, name
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("serverless-runtime new: "), err
    assert index.read_text() == before
    assert (tree / "apps/functions/resource-monitor/usermodule.py").is_file()


def _scaled_object(docs: list[Doc]) -> Doc:
    (scaled,) = [d for d in docs if d["kind"] == "ScaledObject"]
    return scaled


def test_new_with_keda_scales_on_the_consumer_groups_pending_entries(tree: Path) -> None:
    # Field names as KEDA documents them: keda.sh/docs/2.x/scalers/redis-streams (hostFromEnv,
    # portFromEnv, stream, consumerGroup, pendingEntriesCount) and concepts/authentication
    # (TriggerAuthentication secretTargetRef: parameter, name, key).
    assert new(tree, "stream-fn", "--keda") == 0
    docs = kustomize_build(tree / "gitops/overlays/dev")
    deployment = find(docs, "Deployment", "stream-fn")
    assert "replicas" not in deployment["spec"], "KEDA owns the replica count"
    env = resolve_env(container(deployment, "runtime"), docs)
    assert env["TRIGGER"] == "stream"
    scaled = _scaled_object(docs)
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["metadata"]["namespace"] == "serverless-dev"
    spec = scaled["spec"]
    assert spec["scaleTargetRef"] == {"name": "stream-fn"}
    assert 1 <= spec["minReplicaCount"] < spec["maxReplicaCount"]
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "redis-streams"
    meta = trigger["metadata"]
    assert meta["stream"] == env["REDIS_INPUT_KEY"]
    assert meta["consumerGroup"] == env["STREAM_GROUP"]
    assert int(meta["pendingEntriesCount"]) > 0
    # Host and port are env names KEDA resolves in the target's container: they must exist.
    assert env[meta["hostFromEnv"]] == "redis" and env[meta["portFromEnv"]] == "6379"
    auth = find(docs, "TriggerAuthentication", trigger["authenticationRef"]["name"])
    assert auth["apiVersion"] == "keda.sh/v1alpha1"
    assert auth["spec"]["secretTargetRef"] == [
        {"parameter": "password", "name": "redis-auth", "key": "password"}
    ]
    # The other functions are not scaled by KEDA.
    assert find(docs, "Deployment", "resource-monitor")["spec"]["replicas"] == 1


def test_function_with_requirements_runs_in_its_own_pinned_image(tree: Path) -> None:
    assert new(tree, "needs-numpy") == 0
    folder = tree / "apps/functions/needs-numpy"
    (folder / "requirements.txt").write_text("# hash-pinned packages\n")
    owner = registry_names()["serverless-runtime"].rsplit("/", 1)[0]
    # `make lock` wires the image in (scripts/function_images.py): Deployment, registry and pin.
    wired = subprocess.run(
        [sys.executable, str(FUNCTION_IMAGES), "--root", str(tree)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "needs-numpy: deployment.yaml runs its image" in wired.stderr
    dev = kustomize_build(tree / "gitops/overlays/dev")
    image = container(find(dev, "Deployment", "needs-numpy"), "runtime")["image"]
    assert image == f"{owner}/serverless-function-needs-numpy@{INITIAL_DIGEST}"
    # Run again: nothing left to do, nothing changed.
    files = [folder / "deployment.yaml", tree / "gitops/registry/kustomization.yaml"]
    files.append(tree / "gitops/registry/serverless-function-needs-numpy.yaml")
    before_again = [f.read_text() for f in files]
    again = subprocess.run(
        [sys.executable, str(FUNCTION_IMAGES), "--root", str(tree)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert again.stderr == "" and [f.read_text() for f in files] == before_again
    runtime, dashboard = "sha256:" + "1a" * 32, "sha256:" + "2b" * 32
    pin = ["dev", "--runtime-digest", runtime, "--dashboard-digest", dashboard]
    # The functions that already have their own image (cpu-stats) are pinned as usual.
    for existing in sorted((tree / "apps/functions").glob("*/requirements.txt")):
        if existing.parent.name != "needs-numpy":
            pin += ["--function-digest", f"{existing.parent.name}={DIGEST}"]
    # Every function image must be pinned with the others: refused without it, file untouched.
    pins = sorted((tree / "gitops/registry").glob("*.yaml"))
    before = [p.read_text() for p in pins]
    refused = promote(tree, *pin)
    assert refused.returncode == 2 and "needs-numpy" in refused.stderr
    assert [p.read_text() for p in pins] == before
    result = promote(tree, *pin, "--function-digest", f"needs-numpy={DIGEST}")
    assert result.returncode == 0, result.stderr
    dev = kustomize_build(tree / "gitops/overlays/dev")
    image = container(find(dev, "Deployment", "needs-numpy"), "runtime")["image"]
    assert image == f"{owner}/serverless-function-needs-numpy@{DIGEST}"
    runtime_image = container(find(dev, "Deployment", "resource-monitor"), "runtime")["image"]
    assert runtime_image == f"{owner}/serverless-runtime@{runtime}"
    # prod, at this revision, runs the same pinned image.
    prod = kustomize_build(tree / "gitops/overlays/prod")
    assert container(find(prod, "Deployment", "needs-numpy"), "runtime")["image"] == image
    # Deleted: no environment deploys it at the next revision; its pin is no longer asked for.
    shutil.rmtree(folder)
    index = tree / "apps/functions/kustomization.yaml"
    index.write_text(index.read_text().replace("  - needs-numpy\n", ""))
    assert promote(tree, *pin).returncode == 0
    for overlay in ("dev", "prod"):
        deployed = [
            d["metadata"]["name"]
            for d in function_runtimes(kustomize_build(tree / "gitops/overlays" / overlay))
        ]
        assert "needs-numpy" not in deployed and "resource-monitor" in deployed
