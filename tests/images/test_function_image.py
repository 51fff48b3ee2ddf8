"""A function image (apps/runtime/Function.Dockerfile), built by `make images`, run like its pod.

cpu-stats needs numpy: its image is the runtime image plus the packages of its requirements.txt,
placed after the runtime's own on sys.path. Selected by SERVERLESS_IMAGE_TESTS=1, like the other
image tests (`make test-images`).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from packaging.markers import Marker

from scripts.function_folders import parse_function_env
from tests.conftest import FIXTURES, REPO_ROOT
from tests.images.podman import PODMAN, RUN, RUNTIME_IMAGE, TAG, Container, pytestmark
from tests.support.valkey import ValkeyProcess, free_port

__all__ = ["pytestmark"]  # slow, and only with SERVERLESS_IMAGE_TESTS=1

FUNCTION = REPO_ROOT / "apps" / "functions" / "cpu-stats"
IMAGE = f"localhost/serverless-function-cpu-stats:{TAG}"
# Where the pod mounts the function (the overlays' FUNCTION_PATH).
MOUNTED = "/opt/function/usermodule.py"
PROBE = """
import importlib.metadata as m, importlib.util as u, json, os, platform, sys
import redis
numpy = u.find_spec("numpy")
print(json.dumps({
    "python": platform.python_version(),
    "uid": os.getuid(),
    "distributions": {d.metadata["Name"]: d.version for d in m.distributions()},
    "pip": u.find_spec("pip") is not None,
    "path": sys.path,
    "numpy": numpy and numpy.origin,
    "redis": [redis.__file__, redis.__version__],
    "leftovers": [p for p in ("/opt/build", "/staging", "/opt/function-packages/bin")
                  if os.path.exists(p)],
}))
"""


@pytest.fixture(scope="module", autouse=True)
def _function_image_built() -> None:
    exists = subprocess.run([*PODMAN, "image", "exists", IMAGE], check=False)
    assert exists.returncode == 0, f"{IMAGE} is not built: run `make images`"


def _probe(image: str) -> dict[str, Any]:
    result = subprocess.run(
        [*RUN, "--entrypoint", "/opt/venv/bin/python", image, "-c", PROBE],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def _normalized(distributions: dict[str, str]) -> dict[str, str]:
    return {re.sub(r"[-_.]+", "-", name).lower(): v for name, v in distributions.items()}


def _pins_for(requirements: Path, python: str) -> dict[str, str]:
    """name -> version of the pins whose markers hold for this Python version."""
    pins = {}
    for line in requirements.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9._-]+)==([^ ;\\]+)\s*(?:;([^\\]+))?", line)
        if match:
            marker = match.group(3)
            env = {"python_full_version": python, "python_version": python.rsplit(".", 1)[0]}
            if marker is None or Marker(marker.strip()).evaluate(env):
                pins[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return pins


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    position = 0.95 * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def test_function_image_adds_only_its_locked_packages_after_the_runtimes() -> None:
    runtime, function = _probe(RUNTIME_IMAGE), _probe(IMAGE)
    added = _normalized(function["distributions"])
    shipped = _normalized(runtime["distributions"])
    # The runtime's packages, every one at the runtime's version, plus exactly the lock's pins.
    pins = _pins_for(FUNCTION / "requirements.txt", function["python"])
    assert pins == {"numpy": pins["numpy"]}
    assert added == {**shipped, **pins}
    assert function["redis"] == runtime["redis"]
    assert function["redis"][0].startswith("/opt/venv/lib/")
    # numpy from the function's directory, which comes after the venv's site-packages.
    assert function["numpy"].startswith("/opt/function-packages/")
    site = next(p for p in function["path"] if p.startswith("/opt/venv/lib/"))
    assert function["path"].index(site) < function["path"].index("/opt/function-packages")
    # No pip, no build stage leftovers, and the same non-root user as the runtime image.
    assert function["pip"] is runtime["pip"] is False
    assert "pip" not in added
    assert function["leftovers"] == []
    assert function["uid"] == runtime["uid"] == 10001


def test_function_image_runs_cpu_stats_under_the_pod_layout(
    valkey: ValkeyProcess, redis_client: redis.Redis, containers: Callable[..., Container]
) -> None:
    # As the overlays run it: the function file mounted at /opt/function, FUNCTION_PATH, the
    # settings of its function.env, read-only root, the image's non-root user, no capabilities.
    settings = parse_function_env(FUNCTION / "function.env")
    runtime = containers(
        [
            f"--volume={FUNCTION / 'usermodule.py'}:{MOUNTED}:ro",
            *(f"--env={key}={value}" for key, value in settings.items()),
            f"--env=FUNCTION_PATH={MOUNTED}",
            "--env=REDIS_HOST=127.0.0.1",
            f"--env=REDIS_PORT={valkey.port}",
            "--env=HTTP_HOST=127.0.0.1",
            f"--env=HTTP_PORT={free_port()}",
            IMAGE,
        ]
    )
    snapshots = [
        json.loads(line) for line in (FIXTURES / "metrics-5s.jsonl").read_text().splitlines()
    ][:4]
    output_key = settings["REDIS_OUTPUT_KEY"]
    for snapshot in snapshots:
        redis_client.set(settings["REDIS_INPUT_KEY"], json.dumps(snapshot))

        def output(timestamp: str = snapshot["timestamp"]) -> dict[str, Any] | None:
            raw = redis_client.get(output_key)
            result = json.loads(raw) if raw else None
            return result if result and result.get("timestamp") == timestamp else None

        result = runtime.wait_for(f"the output for {snapshot['timestamp']}", output)
    # numpy's numbers over the four snapshots (15 s, all in the 60 s window).
    assert result["samples-60sec"] == 4
    for cpu in ("0", "1"):
        values = [s[f"cpu_percent-{cpu}"] for s in snapshots]
        assert math.isclose(result[f"mean-util-cpu{cpu}-60sec"], sum(values) / 4, rel_tol=1e-12)
        assert math.isclose(result[f"p95-util-cpu{cpu}-60sec"], _p95(values), rel_tol=1e-12)
        assert result[f"max-util-cpu{cpu}-60sec"] == max(values)
    assert redis_client.get(f"{output_key}:error") is None, redis_client.get(f"{output_key}:error")
    assert runtime.stop() == 0, runtime.logs()


# A pin of a package the runtime ships (prometheus-client), at another version than its lock's.
SHADOWED_REQUIREMENTS = """\
prometheus-client==0.20.0 \\
    --hash=sha256:287629d00b147a32dcb2be0b9df905da599b2d82f80377083ec8463309a4bb89 \\
    --hash=sha256:cde524a85bce83ca359cc837f28b8c0db5cac7aa653a588fd7e84ba061c329e7
"""


def _pip_trust(tmp_path: Path) -> list[str]:
    """The volumes scripts/images.sh gives a build when the host's pip trusts an extra CA."""
    cert = os.environ.get("PIP_CERT")
    if not cert or not Path(cert).is_file():
        return []
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\ncert = /etc/pip-ca.crt\n")
    return [
        f"--volume={Path(cert).resolve()}:/etc/pip-ca.crt:ro",
        f"--volume={conf}:/etc/pip.conf:ro",
    ]


def test_function_image_build_refuses_a_package_the_runtime_ships_at_another_version(
    tmp_path: Path,
) -> None:
    # The repository's layout in a context of its own: one function, and the check script.
    context = tmp_path / "context"
    folder = context / "apps" / "functions" / "shadowed"
    folder.mkdir(parents=True)
    (folder / "requirements.txt").write_text(SHADOWED_REQUIREMENTS)
    (context / "scripts").mkdir()
    shutil.copy(REPO_ROOT / "scripts" / "function_packages.py", context / "scripts")
    image = f"localhost/serverless-function-shadowed:{TAG}"
    build = subprocess.run(
        [*PODMAN, "build", "--pull=never", "--layers=false", "--network=host",
         *_pip_trust(tmp_path),
         f"--build-arg=RUNTIME_IMAGE={RUNTIME_IMAGE}", "--build-arg=FUNCTION=shadowed",
         "-f", str(REPO_ROOT / "apps" / "runtime" / "Function.Dockerfile"), "-t", image,
         str(context)],
        capture_output=True, text=True, check=False, timeout=900,
    )  # fmt: skip
    shipped = _pins_for(REPO_ROOT / "requirements" / "runtime.txt", "3.11.2")["prometheus-client"]
    assert build.returncode != 0, build.stdout
    assert (
        f"prometheus-client: the function pins 0.20.0, the runtime ships {shipped}"
        in build.stdout + build.stderr
    ), build.stderr
    assert subprocess.run([*PODMAN, "image", "exists", image], check=False).returncode == 1
