"""`serverless-runtime new NAME`: a new function folder with a working example, ready to deploy.

The folder follows the function-folder contract (apps/functions/README.md): `usermodule.py`,
`function.env`, `test_usermodule.py`, `README.md`, and what deploys it, `kustomization.yaml` and
`deployment.yaml` (gitops/README.md, "Functions"). When the parent folder holds the functions'
index (a `kustomization.yaml` listing them), the new folder is added to it, so the next push
deploys it. With `keda`, the function reads a Redis Stream and scales with KEDA (a `keda/`
Component in the folder). Templates are plain strings: no data files ship with the package.
"""

from __future__ import annotations

import re
from pathlib import Path

NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?")
# Names whose Deployment (NAME) or ConfigMaps (NAME-code, NAME-settings) would clash with what
# the environments already render (redis, the collector, the dashboard, runtime-settings, …).
RESERVED = frozenset(
    {
        "redis",
        "metrics-collector",
        "monitoring-dashboard",
        "serverless-runtime",
        "runtime",
        "dashboard",
    }
)
INDEX = "kustomization.yaml"


class ScaffoldError(ValueError):
    """Why the folder was not created (one line, for the command line)."""


def check_name(name: str) -> None:
    """Refuse a name that is not a DNS label of at most 40 characters, or one already used."""
    if not NAME.fullmatch(name):
        raise ScaffoldError(
            f"{name!r} is not a function name: 1-40 characters of a-z, 0-9 and '-', "
            "starting and ending with a letter or digit"
        )
    if name in RESERVED:
        raise ScaffoldError(f"{name!r} names another object of every environment: choose another")


def create(name: str, parent: Path, *, keda: bool = False) -> Path:
    """Write the folder parent/name and add it to parent's index if there is one; return it."""
    check_name(name)
    folder = parent / name
    if folder.exists():
        raise ScaffoldError(f"{folder} already exists: nothing written")
    index = parent / INDEX
    index_text = _indexed(index.read_text(), name) if index.is_file() else None
    files = {
        "usermodule.py": USERMODULE,
        "test_usermodule.py": TEST,
        "function.env": (STREAM_ENV if keda else KEY_ENV).format(name=name),
        "README.md": README.format(name=name, keda=KEDA_README.format(name=name) if keda else ""),
        "kustomization.yaml": KUSTOMIZATION.format(
            name=name, components="components:\n  - keda\n" if keda else ""
        ),
        "deployment.yaml": DEPLOYMENT.format(name=name),
    }
    if keda:
        files.update(
            {
                "keda/kustomization.yaml": KEDA_KUSTOMIZATION.format(name=name),
                "keda/scaledobject.yaml": KEDA_SCALEDOBJECT.format(name=name),
            }
        )
    folder.mkdir(parents=True)
    for relative, text in files.items():
        path = folder / relative
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    if index_text is not None:
        index.write_text(index_text)
    return folder


def _indexed(text: str, name: str) -> str:
    """The index with `- name` added to its `components:` list, kept sorted."""
    lines = text.splitlines()
    try:
        start = lines.index("components:") + 1
    except ValueError:
        raise ScaffoldError("the functions' index has no `components:` list") from None
    end = start
    while end < len(lines) and lines[end].startswith("  - "):
        end += 1
    entries = sorted({*(line[4:].strip() for line in lines[start:end]), name})
    lines[start:end] = [f"  - {entry}" for entry in entries]
    return "\n".join(lines) + "\n"


USERMODULE = '''\
"""An example function: a summary of the collector's `metrics` snapshot.

handler(input, context) returns
- cpu-mean-percent: the mean utilisation over the CPUs in the snapshot (cpu_percent-N);
- memory-available-percent: virtual_memory-available / virtual_memory-total * 100;
- calls: how many snapshots this function has summarised (kept in context.env, which the
  runtime keeps in Redis across restarts and rollouts);
- timestamp: the snapshot's own, to match an output to its input.
A missing or non-numeric field leaves its key out; nothing raises.
"""

import math
from typing import Any


def handler(input: Any, context: Any) -> dict[str, Any]:
    """The summary of one snapshot."""
    if not isinstance(input, dict):
        return {}
    context.env["calls"] = context.env.get("calls", 0) + 1
    output: dict[str, Any] = {"calls": context.env["calls"]}
    cpus = [
        value
        for key, value in input.items()
        if str(key).startswith("cpu_percent-") and _is_number(value)
    ]
    if cpus:
        output["cpu-mean-percent"] = sum(cpus) / len(cpus)
    available = input.get("virtual_memory-available")
    total = input.get("virtual_memory-total")
    if _is_number(available) and _is_number(total) and total > 0:
        output["memory-available-percent"] = available / total * 100
    if isinstance(input.get("timestamp"), str):
        output["timestamp"] = input["timestamp"]
    return output


def _is_number(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)  # not bool, NaN or infinity
'''

TEST = '''\
"""This function's own test (`make test` runs it; so does `pytest` in this folder)."""

import importlib.util
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest


def load() -> ModuleType:
    """usermodule.py beside this file, imported from its path as the runtime does."""
    path = Path(__file__).with_name("usermodule.py")
    spec = importlib.util.spec_from_file_location("usermodule", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_summarises_a_snapshot_and_counts_the_calls() -> None:
    handler = load().handler
    context = SimpleNamespace(env={})
    snapshot = {
        "timestamp": "2026-12-01 10:00:00.000000",
        "cpu_percent-0": 10.0,
        "cpu_percent-1": 30.0,
        "virtual_memory-available": 250,
        "virtual_memory-total": 1000,
    }
    handler(snapshot, context)
    output = handler(snapshot, context)
    assert output["cpu-mean-percent"] == pytest.approx(20.0)
    assert output["memory-available-percent"] == pytest.approx(25.0)
    assert output["calls"] == 2
    assert output["timestamp"] == snapshot["timestamp"]


def test_missing_fields_are_left_out() -> None:
    output = load().handler({"cpu_percent-0": "busy"}, SimpleNamespace(env={}))
    assert output == {"calls": 1}
'''

KEY_ENV = """\
# {name}'s runtime settings (the runtime's variables: apps/runtime/README.md, "Settings").
# Not here: the Redis connection (the environment's) and FUNCTION_PATH (the pod's).
REDIS_INPUT_KEY=metrics
REDIS_OUTPUT_KEY={name}
TRIGGER=auto
INVOKE_ON=change
HANDLER_TIMEOUT=10
"""

STREAM_ENV = """\
# {name}'s runtime settings (the runtime's variables: apps/runtime/README.md, "Settings").
# Not here: the Redis connection (the environment's) and FUNCTION_PATH (the pod's).
# A Redis Stream read through this function's own consumer group (keda/ scales on its backlog).
TRIGGER=stream
REDIS_INPUT_KEY=metrics-stream
STREAM_GROUP={name}
REDIS_OUTPUT_KEY={name}
HANDLER_TIMEOUT=10
"""

README = """\
# {name}

A function for the serverless runtime. `handler(input, context)` in `usermodule.py` summarises
the collector's `metrics` snapshot: the mean CPU utilisation, the share of memory available, and a
count of the calls kept in `context.env` (durable: the runtime keeps it in Redis).

| file | what it is |
|---|---|
| `usermodule.py` | the function |
| `function.env` | its runtime settings: input, output key, trigger, timeout (KEY=VALUE) |
| `test_usermodule.py` | its test; `make test` runs it |
| `kustomization.yaml`, `deployment.yaml` | what deploys it (gitops/README.md, "Functions") |

Try it without Redis:

```sh
serverless-runtime invoke --function usermodule.py --input snapshot.json
```

Pushing the folder deploys it to dev; promotion takes it to prod.
{keda}"""

KEDA_README = """
## Scaling with KEDA

`keda/` scales this function's Deployment from 1 to 5 replicas on its consumer group's pending
entries (KEDA's Redis Streams scaler). It needs KEDA installed in the cluster and the ScaledObject
and TriggerAuthentication kinds allowed to the environment's Argo CD project and deployer Role.
Each replica is a consumer with its own `context.env` (`<output>:state:<consumer>`): a count
like `calls` is per replica, not for the function as a whole.
"""

KUSTOMIZATION = """\
# Deploys {name}: a Component with no path leading out of this folder, so a verbatim copy
# (promotion) renders the same. The ConfigMaps' names carry a hash of their content: an edit of
# usermodule.py or function.env rolls the Deployment. The pod itself (hardening, probes, Redis
# connection) comes from gitops/components/function-pod, applied by label after the functions.
apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
resources:
  - deployment.yaml
{components}configMapGenerator:
  - name: {name}-code
    files:
      - usermodule.py
    options:
      labels:
        app.kubernetes.io/name: serverless-runtime
        app.kubernetes.io/instance: {name}
        app.kubernetes.io/component: function
  - name: {name}-settings
    envs:
      - function.env
    options:
      labels:
        app.kubernetes.io/name: serverless-runtime
        app.kubernetes.io/instance: {name}
        app.kubernetes.io/component: function
"""

DEPLOYMENT = """\
# What is {name}'s own in its Deployment: name, replicas, image, settings and code. `make lock`
# switches the image to serverless-function-{name} once the folder has a requirements.in.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels:
    app.kubernetes.io/name: serverless-runtime
    app.kubernetes.io/instance: {name}
spec:
  replicas: 1
  selector:
    matchLabels:
      app.kubernetes.io/name: serverless-runtime
      app.kubernetes.io/instance: {name}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: serverless-runtime
        app.kubernetes.io/instance: {name}
    spec:
      containers:
        - name: runtime
          image: serverless-runtime
          envFrom:
            - configMapRef:
                name: {name}-settings
      volumes:
        - name: function
          configMap:
            name: {name}-code
"""

KEDA_KUSTOMIZATION = """\
# KEDA scales {name} on its consumer group's pending entries (gitops/README.md, "KEDA"). KEDA
# owns the replica count, so the Deployment's is removed (Argo CD would otherwise reset it).
apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
resources:
  - scaledobject.yaml
patches:
  - target:
      kind: Deployment
      name: {name}
    patch: |-
      - op: remove
        path: /spec/replicas
"""

KEDA_SCALEDOBJECT = """\
# KEDA's Redis Streams scaler (keda.sh/docs/2.x/scalers/redis-streams): the backlog is the
# consumer group's Pending Entries List. Host and port are read from the Deployment's own env
# (redis-connection); the password from the Secret redis-auth.
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: {name}
spec:
  scaleTargetRef:
    name: {name}
  minReplicaCount: 1
  maxReplicaCount: 5
  triggers:
    - type: redis-streams
      metadata:
        hostFromEnv: REDIS_HOST
        portFromEnv: REDIS_PORT
        stream: metrics-stream
        consumerGroup: {name}
        pendingEntriesCount: "10"
      authenticationRef:
        name: {name}-redis
---
apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata:
  name: {name}-redis
spec:
  secretTargetRef:
    - parameter: password
      name: redis-auth
      key: password
"""
