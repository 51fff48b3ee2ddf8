"""Hot reload: a ConfigMap's `..data` swap brings the new version; a broken one is refused."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import RUNTIME, Process, runtime_env, wait_for

pytestmark = pytest.mark.slow

VERSION = """
def handler(input, context):
    return {{"version": {version}, "mtime": context.function_getmtime, "n": input["n"]}}
"""


class ConfigMapDir:
    """A directory laid out as the kubelet mounts a ConfigMap, updated the way it updates it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir()
        self.generation = 0

    def publish(self, files: dict[str, str], mtime: float) -> None:
        self.generation += 1
        data = self.root / f"..2026_11_27_00_00_0{self.generation}"
        data.mkdir()
        for name, text in files.items():
            (data / name).write_text(text)
            os.utime(data / name, (mtime, mtime))
        tmp = self.root / "..data_tmp"
        tmp.symlink_to(data.name)
        tmp.replace(self.root / "..data")  # the atomic swap
        for name in files:
            link = self.root / name
            if not link.is_symlink():
                link.symlink_to(f"..data/{name}")


def output(client) -> Any:
    return json.loads(client.get("out") or "{}")


def test_symlink_swap_reloads_and_broken_version_keeps_old(
    valkey, redis_client, tmp_path: Path
) -> None:
    mount = ConfigMapDir(tmp_path / "function")
    mount.publish({"usermodule.py": VERSION.format(version=1)}, mtime=1_700_000_000)
    env = runtime_env(
        valkey.port, "out", FUNCTION_PATH=str(mount.root / "usermodule.py"),
        TRIGGER="notify", INTERVAL="0.5",
    )  # fmt: skip
    proc = Process([RUNTIME], env, tmp_path / "runtime.log")
    try:
        redis_client.set("metrics", json.dumps({"n": 1}))
        first = wait_for(lambda: output(redis_client), what="version 1 output")
        assert first["version"] == 1

        mount.publish({"usermodule.py": VERSION.format(version=2)}, mtime=1_800_000_000)
        wait_for(lambda: proc.output().count("loaded function") == 2, what="reload")
        redis_client.set("metrics", json.dumps({"n": 2}))
        second = wait_for(lambda: output(redis_client).get("n") == 2 and output(redis_client))
        assert second["version"] == 2
        assert second["mtime"] != first["mtime"]  # function_getmtime follows the new file

        mount.publish({"usermodule.py": "def handler(input, context):\n    return (\n"}, 1.9e9)
        record = json.loads(wait_for(lambda: redis_client.get("out:error"), what="load error"))
        assert record["kind"] == "syntax-error"
        assert "syntax error" in record["message"]
        assert "previous version keeps running" in record["message"]
        redis_client.set("metrics", json.dumps({"n": 3}))
        third = wait_for(lambda: output(redis_client).get("n") == 3 and output(redis_client))
        assert third["version"] == 2
        assert proc.alive
    finally:
        proc.close()
