"""The real images, built by `make images` with podman, run like their pods against Valkey.

Selected by SERVERLESS_IMAGE_TESTS=1 (`make test-images` builds the images and sets it): building
them takes minutes, so the everyday `make test` leaves this module out.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.conftest import FIXTURES, FUNCTION_FILE, REPO_ROOT
from tests.images.podman import (
    DASHBOARD_IMAGE,
    PODMAN,
    RUN,
    RUNTIME_IMAGE,
    Container,
    pytestmark,
)
from tests.support.valkey import ValkeyProcess, free_port

__all__ = ["pytestmark"]  # slow, and only with SERVERLESS_IMAGE_TESTS=1


@pytest.fixture(scope="module", autouse=True)
def _images_built() -> None:
    for tool in ("podman", "runc"):
        assert shutil.which(tool), f"{tool} is not installed (make system-deps)"
    for image in (RUNTIME_IMAGE, DASHBOARD_IMAGE):
        exists = subprocess.run([*PODMAN, "image", "exists", image], check=False)
        assert exists.returncode == 0, f"{image} is not built: run `make images`"


def _get(url: str) -> tuple[int, str] | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except OSError:
        return None


def _inspect(image: str) -> dict[str, Any]:
    result = subprocess.run(
        [*PODMAN, "image", "inspect", image], check=True, capture_output=True, text=True
    )
    config: dict[str, Any] = json.loads(result.stdout)[0]["Config"]
    return config


def test_images_run_their_console_script_as_non_root() -> None:
    runtime, dashboard = _inspect(RUNTIME_IMAGE), _inspect(DASHBOARD_IMAGE)
    assert runtime["User"] == dashboard["User"] == "10001:10001"
    # The course deployment gives no command: the image's default must be `run`.
    assert runtime["Entrypoint"] == ["serverless-runtime"]
    assert runtime["Cmd"] == ["run"]
    assert dashboard["Entrypoint"] == ["monitoring-dashboard"]


def _locked(requirements: Path) -> tuple[dict[str, str], set[str]]:
    """name -> version of every pin, and the names pinned for every environment (no marker)."""
    pins, unconditional = {}, set()
    for line in requirements.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9._-]+)==([^ ;\\]+)(.*)", line)
        if match:
            name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
            pins[name] = match.group(2)
            if ";" not in match.group(3):
                unconditional.add(name)
    return pins, unconditional


@pytest.mark.parametrize(
    ("image", "app"), [(RUNTIME_IMAGE, "runtime"), (DASHBOARD_IMAGE, "dashboard")]
)
def test_image_venv_holds_only_the_app_and_its_lock(image: str, app: str) -> None:
    probe = (
        "import importlib.metadata as m, json, pathlib as p;"
        "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}));"
        "print(p.Path('/tmp/src').exists() or p.Path('/opt/build').exists())"
    )
    result = subprocess.run(
        [*RUN, "--entrypoint", "/opt/venv/bin/python", image, "-c", probe],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    listing, leftovers = result.stdout.splitlines()[:2]
    installed = {re.sub(r"[-_.]+", "-", k).lower(): v for k, v in json.loads(listing).items()}
    pins, unconditional = _locked(REPO_ROOT / "requirements" / f"{app}.txt")
    project = tomllib.loads((REPO_ROOT / "apps" / app / "pyproject.toml").read_text())["project"]
    # No pip, no build backend, no sources: the app and exactly the locked versions.
    assert installed.pop(project["name"]) == project["version"]
    if app == "dashboard":  # the runtime package, without its dependencies, for its key layout
        runtime = tomllib.loads((REPO_ROOT / "apps/runtime/pyproject.toml").read_text())["project"]
        assert installed.pop(runtime["name"]) == runtime["version"]
    assert {name: pins.get(name) for name in installed} == installed
    assert unconditional <= installed.keys()
    assert leftovers == "False"


def test_runtime_image_pip_for_new_requerimients_is_the_pinned_one() -> None:
    # Outside the venv (which has no pip), run as function/new_requirements.py does.
    result = subprocess.run(
        [*RUN, "--env", "PYTHONPATH=/opt/pip", "--entrypoint", "/opt/venv/bin/python",
         RUNTIME_IMAGE, "-m", "pip", "--version"],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    pins, _ = _locked(REPO_ROOT / "requirements" / "pip.txt")
    assert result.stdout.startswith(f"pip {pins['pip']} from /opt/pip/pip ")


def test_runtime_image_runs_the_course_deployment(
    valkey: ValkeyProcess, redis_client: redis.Redis, containers: Callable[..., Container]
) -> None:
    # Like the course deployment: the function by subPath at /opt/usermodule.py, the course env,
    # no command (the image's default). HTTP on loopback only.
    snapshot = json.loads((FIXTURES / "metrics-5s.jsonl").read_text().splitlines()[0])
    redis_client.set("metrics", json.dumps(snapshot))
    runtime = containers(
        [
            f"--volume={FUNCTION_FILE}:/opt/usermodule.py:ro",
            "--env=REDIS_HOST=127.0.0.1",
            f"--env=REDIS_PORT={valkey.port}",
            "--env=REDIS_INPUT_KEY=metrics",
            "--env=REDIS_OUTPUT_KEY=resource-monitor-course",
            "--env=HTTP_HOST=127.0.0.1",
            f"--env=HTTP_PORT={free_port()}",
            RUNTIME_IMAGE,
        ]
    )

    def output() -> dict[str, Any] | None:
        raw = redis_client.get("resource-monitor-course")
        return json.loads(raw) if raw else None

    result = runtime.wait_for("output", output)
    assert result["timestamp"] == snapshot["timestamp"]
    assert "percent-memory-caching" in result
    assert runtime.stop() == 0, runtime.logs()


def test_dashboard_image_serves_its_page(
    valkey: ValkeyProcess, redis_client: redis.Redis, containers: Callable[..., Container]
) -> None:
    port = free_port()
    redis_client.set("resource-monitor", json.dumps({"percent-network-egress": 1.5}))
    dashboard = containers(
        [
            "--env=REDIS_HOST=127.0.0.1",
            f"--env=REDIS_PORT={valkey.port}",
            "--env=REDIS_OUTPUT_KEY=resource-monitor",
            DASHBOARD_IMAGE,
            "--bind",
            f"127.0.0.1:{port}",
        ]
    )
    base = f"http://127.0.0.1:{port}"
    assert dashboard.wait_for("/healthz", lambda: _get(f"{base}/healthz"))[0] == 200
    status, page = dashboard.wait_for("page", lambda: _get(f"{base}/"))
    assert status == 200
    # Bootstrap's CSS is packaged with the app (no CDN in a cluster).
    (stylesheet,) = re.findall(r'href="([^"]*bootstrap[^"]*\.css[^"]*)"', page)
    css = _get(f"{base}{stylesheet}")
    assert css is not None and css[0] == 200 and ".btn" in css[1]
    assert dashboard.stop() == 0, dashboard.logs()
