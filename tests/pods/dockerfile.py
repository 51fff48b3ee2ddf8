"""What a container started from one of our Dockerfiles gets: entrypoint, command, user, env."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from tests.manifests.rendered import REPO_ROOT

# Our image names (without registry and tag) and the Dockerfiles that build them.
DOCKERFILES = {
    "serverless-runtime": REPO_ROOT / "apps" / "runtime" / "Dockerfile",
    "monitoring-dashboard": REPO_ROOT / "apps" / "dashboard" / "Dockerfile",
}
# The PATH a container runtime gives an image that sets none (Docker, podman, containerd).
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class ImageConfig:
    """The final stage's ENTRYPOINT, CMD, USER and ENV."""

    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    user: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    base_args: dict[str, str] = field(default_factory=dict)


def image_name(image: str) -> str:
    """`ghcr.io/OWNER/serverless-runtime:abc` -> `serverless-runtime`."""
    without_digest = image.split("@", 1)[0]
    last = without_digest.rsplit("/", 1)[-1]
    return last.split(":", 1)[0]


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in dockerfile.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    result = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        result.append((keyword.upper(), rest.strip()))
    return result


def _exec_form(arguments: str) -> list[str]:
    value = json.loads(arguments)
    assert isinstance(value, list) and all(isinstance(part, str) for part in value)
    return value


def _expand(value: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), ""), value)


def image_config(dockerfile: Path) -> ImageConfig:
    """The configuration of the image the Dockerfile's last stage builds."""
    config = ImageConfig()
    for keyword, arguments in instructions(dockerfile):
        if keyword == "ARG" and not config.env and "=" in arguments:
            name, _, default = arguments.partition("=")
            config.base_args[name] = default
        elif keyword == "FROM":
            config = ImageConfig(base_args=config.base_args, env={"PATH": DEFAULT_PATH})
        elif keyword == "ENTRYPOINT":
            config.entrypoint = _exec_form(arguments)
        elif keyword == "CMD":
            config.cmd = _exec_form(arguments)
        elif keyword == "USER":
            config.user = arguments
        elif keyword == "ENV":
            for pair in shlex.split(arguments):
                name, _, value = pair.partition("=")
                config.env[name] = _expand(value, config.env)
    return config


# A function's image (apps/runtime/Function.Dockerfile) is the runtime image plus packages: the
# runtime's ENTRYPOINT, CMD, ENV and USER (tests/images/test_function_dockerfile.py checks that).
FUNCTION_IMAGE_PREFIX = "serverless-function-"
FUNCTION_DOCKERFILE = REPO_ROOT / "apps" / "runtime" / "Function.Dockerfile"


def config_for_image(image: str) -> ImageConfig:
    """The configuration of one of our images, by the image reference a pod uses."""
    name = image_name(image)
    if name.startswith(FUNCTION_IMAGE_PREFIX):
        name = "serverless-runtime"
    return image_config(DOCKERFILES[name])
