"""Every function folder deploys as its own runtime: its code and settings ConfigMaps, its
Deployment with the pod every function gets, its image; in dev and prod from apps/functions of the
revision each runs (prod's is a pinned commit: tests/manifests/test_promotion_unit.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from scripts.function_folders import parse_function_env
from tests.manifests.images import registry_names
from tests.manifests.rendered import (
    FUNCTIONS_DIR,
    GITOPS,
    OUTPUT_KEYS,
    OVERLAYS,
    REPO_ROOT,
    RUNTIMES,
    Doc,
    container,
    find,
    function_runtimes,
    kustomize_build,
    pod_spec,
    render_overlay,
    resolve_env,
)

FUNCTION_POD = GITOPS / "components" / "function-pod" / "pod.yaml"
# Where each overlay's function folders come from: apps/functions, of the revision it renders.
SOURCES = {"dev": FUNCTIONS_DIR, "prod": FUNCTIONS_DIR}


def folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def settings(folder: Path) -> dict[str, str]:
    """function.env as `make run` reads it (which also refuses what the environment sets)."""
    return parse_function_env(folder / "function.env")


def code_volume(deployment: Doc) -> str:
    """The ConfigMap mounted at the function's path."""
    mount = next(
        m for m in container(deployment, "runtime")["volumeMounts"] if m["name"] == "function"
    )
    volume = next(v for v in pod_spec(deployment)["volumes"] if v["name"] == mount["name"])
    assert mount["mountPath"] == "/opt/function"
    name: str = volume["configMap"]["name"]
    return name


def assert_deployed(docs: list[Doc], folder: Path) -> None:
    """The folder's function runs as its own Deployment with its own code, settings and key."""
    name = folder.name
    deployment = find(docs, "Deployment", name)
    code = find(docs, "ConfigMap", f"{name}-code")
    assert code["metadata"]["name"] != f"{name}-code", "hash-suffixed, so an edit rolls it"
    assert code["data"]["usermodule.py"].encode() == (folder / "usermodule.py").read_bytes()
    assert code_volume(deployment) == code["metadata"]["name"]
    env = resolve_env(container(deployment, "runtime"), docs)
    for key, value in settings(folder).items():
        assert env[key] == value, key
    assert env["FUNCTION_PATH"] == "/opt/function/usermodule.py"
    image = container(deployment, "runtime")["image"].split("@")[0]
    if (folder / "requirements.txt").is_file():
        assert image.endswith(f"/serverless-function-{name}")
    else:
        assert image.endswith("/serverless-runtime")


def test_every_function_folder_is_in_the_index_dev_deploys() -> None:
    index = yaml.safe_load((FUNCTIONS_DIR / "kustomization.yaml").read_text())
    listed = index.get("components") or []
    present = [f.name for f in folders(FUNCTIONS_DIR)]
    missing = sorted(set(present) - set(listed))
    assert not missing, (
        f"apps/functions/{missing[0]} is not deployed: add `  - {missing[0]}` to "
        "apps/functions/kustomization.yaml (serverless-runtime new does)"
    )
    assert sorted(listed) == present


@pytest.mark.parametrize("overlay", sorted(SOURCES))
def test_each_function_folder_runs_as_its_own_deployment(overlay: str) -> None:
    docs = render_overlay(overlay)
    functions = folders(SOURCES[overlay])
    assert functions, "no function deployed"
    for folder in functions:
        assert_deployed(docs, folder)
    assert sorted(d["metadata"]["name"] for d in function_runtimes(docs)) == [
        f.name for f in functions
    ]


def test_course_runs_only_resource_monitor_from_its_folder() -> None:
    docs = render_overlay("course")
    (runtime,) = function_runtimes(docs)
    assert runtime["metadata"]["name"] == RUNTIMES["course"]
    pyfile = find(docs, "ConfigMap", "pyfile")
    code = FUNCTIONS_DIR / "resource-monitor" / "usermodule.py"
    assert pyfile["data"]["pyfile"].encode() == code.read_bytes()
    # The folder's own objects are not deployed: only the course's names.
    names = {d["metadata"]["name"] for d in docs}
    assert not {n for n in names if n.startswith("resource-monitor")}, names


def test_no_overlay_holds_a_copy_of_a_function() -> None:
    # One source of truth: an environment runs apps/functions at its revision, never a copy.
    copies = [p for p in (GITOPS / "overlays").rglob("usermodule.py")]
    assert copies == []


def _pod_patch() -> Doc:
    patch: Doc = yaml.safe_load(FUNCTION_POD.read_text())
    return patch


def assert_hardened(deployment: Doc, course: bool = False) -> None:
    """The Deployment's pod is gitops/components/function-pod's, field for field."""
    wanted = _pod_patch()["spec"]
    (wanted_ctr,) = wanted["template"]["spec"]["containers"]
    name = deployment["metadata"]["name"]
    spec, pod = deployment["spec"], pod_spec(deployment)
    assert spec["strategy"] == wanted["strategy"], name
    for field in (
        "automountServiceAccountToken",
        "enableServiceLinks",
        "securityContext",
        "terminationGracePeriodSeconds",
    ):
        assert pod[field] == wanted["template"]["spec"][field], (name, field)
    assert pod["enableServiceLinks"] is False
    ctr = container(deployment, "runtime")
    for field in ("livenessProbe", "readinessProbe", "securityContext", "args"):
        assert ctr[field] == wanted_ctr[field], (name, field)
    if course:  # the course deployment's own request, for pandas/numpy and NEW_REQUERIMENTS
        assert ctr["resources"]["requests"] == {"cpu": "100m", "memory": "300Mi"}
    else:
        assert ctr["resources"] == wanted_ctr["resources"], (name, "resources")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "serverless-runtime"
    if not course:  # the course's env is exactly the course's (test_course.py)
        (password,) = [v for v in ctr["env"] if v["name"] == "REDIS_PASSWORD"]
        assert password["valueFrom"]["secretKeyRef"]["name"] == "redis-auth"
        sources = [s["configMapRef"]["name"] for s in ctr["envFrom"]]
        assert sources[0].startswith("runtime-settings-")
        assert sources[-1].startswith("redis-connection-"), "the environment's Redis wins"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_function_pod_carries_the_hardening(overlay: str) -> None:
    deployments = function_runtimes(render_overlay(overlay))
    assert deployments
    for deployment in deployments:
        assert_hardened(deployment, course=overlay == "course")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_dashboard_watches_the_resource_monitor_output(overlay: str) -> None:
    docs = render_overlay(overlay)
    runtime = resolve_env(container(find(docs, "Deployment", RUNTIMES[overlay]), "runtime"), docs)
    dashboard = resolve_env(container(find(docs, "Deployment", "monitoring-dashboard")), docs)
    assert dashboard["REDIS_OUTPUT_KEY"] == runtime["REDIS_OUTPUT_KEY"] == OUTPUT_KEYS[overlay]


def test_function_images_follow_requirements_and_the_registry() -> None:
    owner = registry_names()["serverless-runtime"].rsplit("/", 1)[0]
    for root in (FUNCTIONS_DIR,):
        for folder in folders(root):
            deployment = yaml.safe_load((folder / "deployment.yaml").read_text())
            image = container(deployment, "runtime")["image"]
            if (folder / "requirements.txt").is_file():
                assert image == f"serverless-function-{folder.name}", folder
                assert registry_names()[image] == f"{owner}/{image}", (
                    f"gitops/registry names no registry for {image}"
                )
            else:
                assert image == "serverless-runtime", folder


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of what the overlays render from, and the functions' own conftest."""
    for part in ("gitops", "apps/functions"):
        shutil.copytree(REPO_ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("__py*"))
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_a_function_edit_rolls_only_its_deployment(tree: Path) -> None:
    before = kustomize_build(tree / "gitops/overlays/dev")
    edited = tree / "apps/functions/resource-monitor/usermodule.py"
    edited.write_text(edited.read_text() + "\n# a new version of the function\n")
    after = kustomize_build(tree / "gitops/overlays/dev")
    old = find(before, "ConfigMap", "resource-monitor-code")["metadata"]["name"]
    new = find(after, "ConfigMap", "resource-monitor-code")
    assert new["metadata"]["name"] != old
    assert new["data"]["usermodule.py"] == edited.read_text()
    # The pod template names the new ConfigMap, so the Deployment rolls out new pods.
    assert code_volume(find(after, "Deployment", "resource-monitor")) == new["metadata"]["name"]
    assert find(after, "Deployment", "monitoring-dashboard") == find(
        before, "Deployment", "monitoring-dashboard"
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_two_functions_share_an_output_key(overlay: str) -> None:
    # Two Deployments on one output key would share its lease (one of them never runs), its state
    # and its history: a copied folder that kept the key must not deploy.
    docs = render_overlay(overlay)
    owners: dict[str, str] = {}
    for deployment in function_runtimes(docs):
        name = deployment["metadata"]["name"]
        key = resolve_env(container(deployment, "runtime"), docs)["REDIS_OUTPUT_KEY"]
        assert key not in owners, f"{owners.get(key)} and {name} both write output key {key!r}"
        owners[key] = name
