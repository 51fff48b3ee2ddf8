"""FUNCTION_ZIP: a multi-module package runs in the real runtime; an unsafe one is refused."""

from __future__ import annotations

import json
import urllib.request
import zipfile
from pathlib import Path

import pytest

from tests.support.processes import RUNTIME, Process, runtime_env, wait_for
from tests.support.valkey import free_port

pytestmark = pytest.mark.slow


def build(path: Path, files: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return path


PACKAGE = {
    "shop/__init__.py": "",
    "shop/prices.py": "def total(items):\n    return sum(items)\n",
    "shop/main.py": (
        "from .prices import total\n\n"
        "def handle(input, context):\n"
        "    return {'total': total(input['items']), 'version': VERSION}\n\n"
        "VERSION = 1\n"
    ),
}


def test_zip_package_runs_and_reloads(valkey, redis_client, tmp_path: Path) -> None:
    archive = build(tmp_path / "function.zip", PACKAGE)
    env = runtime_env(
        valkey.port, "out", FUNCTION_ZIP=str(archive), FUNCTION_HANDLER="shop.main:handle",
        TRIGGER="notify", INTERVAL="0.5", TMPDIR=str(tmp_path),
    )  # fmt: skip
    proc = Process([RUNTIME], env, tmp_path / "runtime.log")
    try:
        redis_client.set("metrics", json.dumps({"items": [1, 2, 3]}))
        out = wait_for(lambda: redis_client.get("out"), what="output from the zip function")
        assert json.loads(out) == {"total": 6, "version": 1}

        newer = dict(PACKAGE, **{"shop/main.py": PACKAGE["shop/main.py"].replace("= 1", "= 2")})
        build(tmp_path / "next.zip", newer).replace(archive)
        wait_for(lambda: proc.output().count("loaded function") == 2, what="reload")
        redis_client.set("metrics", json.dumps({"items": [4]}))
        wait_for(lambda: json.loads(redis_client.get("out")) == {"total": 4, "version": 2})
    finally:
        proc.close()


def test_unsafe_zip_is_refused_with_clear_error(valkey, redis_client, tmp_path: Path) -> None:
    archive = build(tmp_path / "evil.zip", {"../escape.py": "x = 1\n", "usermodule.py": ""})
    env = runtime_env(valkey.port, "out", FUNCTION_ZIP=str(archive), TMPDIR=str(tmp_path))
    proc = Process([RUNTIME], env, tmp_path / "runtime.log")
    try:
        record = json.loads(wait_for(lambda: redis_client.get("out:error"), what="refusal"))
        assert record["kind"] == "unsafe-package"
        assert "../escape.py" in record["message"]
        assert not (tmp_path.parent / "escape.py").exists()
        assert proc.alive
    finally:
        proc.close()


def test_zip_cannot_replace_modules_the_runtime_imports(
    valkey, redis_client, tmp_path: Path
) -> None:
    shadow = "raise RuntimeError('the zip shadowed the runtime')\n"
    files = {
        **PACKAGE,
        "prometheus_client/__init__.py": shadow,  # imported at the first scrape of /metrics
        "redis/__init__.py": shadow,
        "orjson.py": shadow,
        "json/__init__.py": shadow,
    }
    archive = build(tmp_path / "function.zip", files)
    port = free_port()
    env = runtime_env(
        valkey.port, "out", FUNCTION_ZIP=str(archive), FUNCTION_HANDLER="shop.main:handle",
        TRIGGER="notify", INTERVAL="0.5", TMPDIR=str(tmp_path), HTTP_PORT=str(port),
    )  # fmt: skip
    proc = Process([RUNTIME], env, tmp_path / "runtime.log")
    try:
        redis_client.set("metrics", json.dumps({"items": [1, 2, 3]}))
        out = wait_for(lambda: redis_client.get("out"), what="output from the zip function")
        assert json.loads(out) == {"total": 6, "version": 1}
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            assert response.status == 200
            assert "serverless_runtime_function_loaded 1.0" in response.read().decode()
        assert proc.alive
    finally:
        proc.close()
    assert "shadowed" not in proc.output()


def test_zip_package_named_like_a_runtime_module_is_refused(
    valkey, redis_client, tmp_path: Path
) -> None:
    files = {
        "prometheus_client/__init__.py": "",
        "prometheus_client/main.py": "def handler(input, context):\n    return {'ok': 1}\n",
    }
    archive = build(tmp_path / "function.zip", files)
    env = runtime_env(
        valkey.port, "out", FUNCTION_ZIP=str(archive),
        FUNCTION_HANDLER="prometheus_client.main", TMPDIR=str(tmp_path),
    )  # fmt: skip
    proc = Process([RUNTIME], env, tmp_path / "runtime.log")
    try:
        record = json.loads(wait_for(lambda: redis_client.get("out:error"), what="refusal"))
        assert "'prometheus_client' has the name of a module the runtime" in record["message"]
        assert "rename the package" in record["message"]
        assert proc.alive
    finally:
        proc.close()
