"""NEW_REQUERIMENTS in the course overlay's pod, emulated: read-only root, the function at
/opt/usermodule.py, pip shipped at /opt/pip as in the image, the /tmp emptyDir to install into.
pip installs from a local wheel directory (PIP_NO_INDEX, PIP_FIND_LINKS): no index is needed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.manifests.rendered import OUTPUT_KEYS, Doc, find, render_overlay
from tests.pods.emulate import EmulatedPod, bwrap
from tests.pods.redis_pod import overlay_redis
from tests.support.http import get
from tests.support.valkey import ValkeyProcess, free_port
from tests.support.wheels import build_wheel, bundled_pip

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bwrap() is None, reason="bubblewrap (bwrap) is not installed"),
]

OUTPUT_KEY = OUTPUT_KEYS["course"]
FUNCTION = """\
import os

import courseextra
import orjson


def handler(input, context):
    return {
        "extra": courseextra.VALUE,
        "installed_in": os.path.dirname(courseextra.__file__),
        "orjson_is_the_runtimes": not hasattr(orjson, "FAKE"),
        "timestamp": input.get("timestamp"),
    }
"""


def _course_pod(tmp_path: Path, redis_port: int, requirements: str) -> tuple[EmulatedPod, int]:
    docs = render_overlay("course")
    pyfile: Doc = find(docs, "ConfigMap", "pyfile")
    pyfile["data"]["pyfile"] = FUNCTION
    wheels = tmp_path / "wheels"
    build_wheel(
        wheels,
        "courseextra",
        "1.0",
        # orjson.py: a module named as one the runtime uses, which must not replace it.
        {"courseextra.py": "VALUE = 'from the course extra'\n", "orjson.py": "FAKE = True\n"},
    )
    http_port = free_port()
    overrides = {
        "REDIS_HOST": "127.0.0.1",
        "REDIS_PORT": str(redis_port),
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": str(http_port),
        "NEW_REQUERIMENTS": requirements,
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": "/opt/wheelhouse",
    }
    binds = {"/opt/pip": bundled_pip(tmp_path / "pip"), "/opt/wheelhouse": wheels}
    workload = find(docs, "Deployment", "serverless-runtime")
    pod = EmulatedPod(workload, "runtime", docs, tmp_path / "pod", overrides, binds=binds)
    return pod, http_port


def _json(client: redis.Redis, key: str) -> Any:
    raw = client.get(key)
    return None if raw is None else json.loads(raw)


def test_course_pod_installs_new_requerimients_before_the_function(
    valkey: ValkeyProcess, tmp_path: Path
) -> None:
    docs = render_overlay("course")
    with overlay_redis(docs, valkey, tmp_path / "redis") as (port, client):
        client.set("metrics", json.dumps({"timestamp": "2026-11-27 23:00:00"}))
        pod, http_port = _course_pod(tmp_path, port, "courseextra==1.0")
        with pod:
            output = pod.wait_for("output", lambda: _json(client, OUTPUT_KEY), timeout=120)
            assert output == {
                "extra": "from the course extra",
                "installed_in": "/tmp/new-requirements",
                "orjson_is_the_runtimes": True,
                "timestamp": "2026-11-27 23:00:00",
            }
            assert get(http_port, "/readyz")[0] == 200
            assert client.get(f"{OUTPUT_KEY}:error") is None
            assert "course-compatibility path" in pod.logs()
            assert pod.stop() == 0, pod.logs()


def test_course_pod_with_an_unknown_requirement_reports_it_and_stays_up(
    valkey: ValkeyProcess, tmp_path: Path
) -> None:
    docs = render_overlay("course")
    with overlay_redis(docs, valkey, tmp_path / "redis") as (port, client):
        client.set("metrics", json.dumps({"timestamp": "2026-11-27 23:00:00"}))
        pod, http_port = _course_pod(tmp_path, port, "no-such-package-xyz")
        with pod:
            key = f"{OUTPUT_KEY}:error"
            record = pod.wait_for("error record", lambda: _json(client, key), timeout=120)
            assert record["kind"] == "requirements-failed"
            assert record["message"].startswith(
                "NEW_REQUERIMENTS='no-such-package-xyz': pip install failed (exit code 1)"
            )
            assert "No matching distribution found for no-such-package-xyz" in record["message"]
            # Not ready, yet alive: no restart, no pip run again, no output from the function.
            status, body = pod.wait_for(
                "readiness answering", lambda: (s := get(http_port, "/readyz"))[0] and s
            )
            assert (status, body.strip()) == (503, "not ready: function not loaded")
            assert get(http_port, "/healthz")[0] == 200
            metrics = get(http_port, "/metrics")[1]
            assert 'serverless_runtime_load_failures_total{kind="requirements-failed"} 1.0' in (
                metrics
            )
            assert client.get(OUTPUT_KEY) is None
            assert pod.exited() is None
            assert pod.logs().count("course-compatibility path") == 1
            assert pod.stop() == 0, pod.logs()
