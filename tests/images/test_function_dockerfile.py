"""Function.Dockerfile passes hadolint and adds packages to the runtime image, nothing else."""

from __future__ import annotations

import fnmatch
import shlex
import subprocess

from tests.images.test_dockerfiles import _hadolint
from tests.manifests.rendered import REPO_ROOT
from tests.pods.dockerfile import (
    DOCKERFILES,
    FUNCTION_DOCKERFILE,
    config_for_image,
    image_config,
    instructions,
)


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for step in instructions(FUNCTION_DOCKERFILE):
        if step[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(step)
    return stages


def test_function_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [_hadolint(), str(FUNCTION_DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_function_image_is_the_runtime_image_plus_the_built_packages() -> None:
    build, final = _stages()
    assert image_config(FUNCTION_DOCKERFILE).base_args == {"RUNTIME_IMAGE": "serverless-runtime"}
    assert build[0] == ("FROM", "${RUNTIME_IMAGE} AS build")
    assert final[0] == ("FROM", "${RUNTIME_IMAGE}")
    # The final stage runs nothing and copies only the packages and their .pth file; it keeps the
    # runtime's entrypoint, command and environment, and its non-root user.
    assert [args for keyword, args in final if keyword in ("COPY", "ADD", "RUN")] == [
        "--from=build /staging/ /"
    ]
    assert not [k for k, _ in final if k in ("ENTRYPOINT", "CMD", "ENV", "WORKDIR", "VOLUME")]
    runtime = image_config(DOCKERFILES["serverless-runtime"])
    assert image_config(FUNCTION_DOCKERFILE).user == runtime.user
    assert config_for_image("ghcr.io/o/serverless-function-cpu-stats:sha-1") == runtime


def test_function_packages_are_hash_checked_wheels_in_their_own_directory() -> None:
    build, _ = _stages()
    (install,) = [args for keyword, args in build if keyword == "RUN" and "--target" in args]
    for option in ("--require-hashes", "--only-binary :all:", "--no-deps"):
        assert option in install
    assert "--target /opt/function-packages" in install
    # Refused when the runtime ships one of the packages at another version.
    assert "function_packages.py check /opt/function-packages" in install


def test_function_build_context_holds_what_it_copies_and_the_root_one_stays_clean() -> None:
    ignore = FUNCTION_DOCKERFILE.with_name(FUNCTION_DOCKERFILE.name + ".dockerignore")
    allowed = [line[1:] for line in ignore.read_text().splitlines() if line.startswith("!")]
    copied = [
        shlex.split(args)[0]
        for keyword, args in instructions(FUNCTION_DOCKERFILE)
        if keyword == "COPY" and "--from" not in args
    ]
    assert [c.replace("${FUNCTION}", "*") for c in copied] == allowed
    # Every function's requirements match the pattern; the runtime's and dashboard's context
    # (.dockerignore, their images' source key) lets in no function file.
    for requirements in (REPO_ROOT / "apps" / "functions").glob("*/requirements.txt"):
        assert fnmatch.fnmatch(str(requirements.relative_to(REPO_ROOT)), allowed[0])
    assert "functions" not in (REPO_ROOT / ".dockerignore").read_text()
