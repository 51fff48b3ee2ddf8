"""gitops/README.md, "Deploying without Argo CD": the commands that run locally built images on kind
build, load and point the render at every image dev runs, so no pod is left pulling a placeholder.

The commands are read from the README. docker and kind are not run here: what they build and load
is compared with what the render names, and the render itself is made by running the README's own
`served_repo` command."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
README = REPO / "gitops" / "README.md"
KIND_CONFIG = REPO / ".github" / "kind" / "cluster.yaml"
SECTION = "## Deploying without Argo CD"


def commands() -> list[list[str]]:
    """The commands of the section's second sh block, continuation lines joined."""
    text = README.read_text()
    section = text[text.index(SECTION) :]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.DOTALL)
    script = blocks[1].replace("\\\n", " ")
    return [shlex.split(line) for line in script.splitlines() if line.strip()]


def built() -> set[str]:
    """The image tags the block builds."""
    return {c[c.index("-t") + 1] for c in commands() if c[:2] == ["docker", "build"]}


def test_without_argocd_loads_what_it_builds_into_the_kind_cluster() -> None:
    (load,) = [c for c in commands() if c[:3] == ["kind", "load", "docker-image"]]
    cluster = yaml.safe_load(KIND_CONFIG.read_text())["name"]
    assert load[load.index("--name") + 1] == cluster
    assert {a for a in load[3:] if ":" in a} == built()


def test_without_argocd_renders_no_image_it_did_not_build(tmp_path: Path) -> None:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    (serve,) = [c for c in commands() if "tests.e2e.served_repo" in c]
    argv = serve[serve.index("tests.e2e.served_repo") + 1 :]
    argv[argv.index("--dest") + 1] = str(tmp_path / "served")
    subprocess.run(
        [sys.executable, "-m", "tests.e2e.served_repo", *argv],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(tmp_path / "served" / "gitops" / "overlays" / "dev")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    images = {
        c["image"]
        for doc in yaml.safe_load_all(rendered)
        if doc and doc.get("kind") == "Deployment"
        for c in doc["spec"]["template"]["spec"]["containers"]
    }
    # dev's own Redis is a public image; every other one is ours, built and loaded above.
    ours = {i for i in images if not i.startswith("redis:")}
    assert ours == built()
