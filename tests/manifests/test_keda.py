"""The scaffold's KEDA objects validate against KEDA's own CRD schemas (schemas/keda/README.md)."""

from __future__ import annotations

import copy
import json
import shutil
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml
from serverless_runtime.cli import main
from serverless_runtime.config import ConfigError, Settings

from tests.manifests.rendered import REPO_ROOT, Doc, find, kustomize_build

SCHEMAS = Path(__file__).parent / "schemas" / "keda"
SCHEMA_FILES = {
    "ScaledObject": "scaledobject_v1alpha1.json",
    "TriggerAuthentication": "triggerauthentication_v1alpha1.json",
}
NAME = "stream-fn"


def strict(schema: Any) -> Any:
    """The schema with unknown fields refused, as the API server's strict field validation does."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    closed = {key: strict(value) for key, value in schema.items()}
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        closed["additionalProperties"] = False
    return closed


@cache
def validator(kind: str) -> jsonschema.Draft7Validator:
    """A validator for one KEDA kind, from the CRD schema copied into schemas/keda."""
    schema = strict(json.loads((SCHEMAS / SCHEMA_FILES[kind]).read_text()))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def problems(obj: Doc) -> list[str]:
    """Schema violations of one object, as readable lines."""
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in validator(obj["kind"]).iter_errors(obj)
    ]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> list[Doc]:
    """`serverless-runtime new stream-fn --keda` in a copy of the tree; the dev overlay rendered."""
    tree = tmp_path_factory.mktemp("tree")
    for part in ("gitops", "apps/functions"):
        shutil.copytree(REPO_ROOT / part, tree / part, ignore=shutil.ignore_patterns("__py*"))
    assert main(["new", NAME, "--keda", "--dir", str(tree / "apps/functions")]) == 0
    return kustomize_build(tree / "gitops/overlays/dev")


def keda_objects(docs: list[Doc]) -> list[Doc]:
    return [doc for doc in docs if str(doc.get("apiVersion", "")).startswith("keda.sh/")]


def test_keda_scaffold_objects_validate_against_kedas_crd_schemas(rendered: list[Doc]) -> None:
    objects = keda_objects(rendered)
    assert sorted(o["kind"] for o in objects) == ["ScaledObject", "TriggerAuthentication"]
    assert {o["apiVersion"] for o in objects} == {"keda.sh/v1alpha1"}
    failures = {
        f"{o['kind']}/{o['metadata']['name']}": errors for o in objects if (errors := problems(o))
    }
    assert failures == {}


def _set(obj: Doc, path: tuple[str | int, ...], value: object) -> Doc:
    broken = copy.deepcopy(obj)
    node: Any = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return broken


TRIGGER = ("spec", "triggers", 0)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ((*TRIGGER, "type"), ""),  # a trigger must name its scaler
        ((*TRIGGER, "type"), ["redis-streams"]),
        ((*TRIGGER, "metadata", "pendingEntriesCount"), 10),  # metadata values are strings
        ((*TRIGGER, "authenticationRef", "kind"), "Secret"),
        ((*TRIGGER, "authRef"), {"name": f"{NAME}-redis"}),  # not a trigger field
        (("spec", "maxReplicaCount"), "5"),
        (("spec", "scaleTargetRef", "deployment"), NAME),  # the field is `name`
    ],
)
def test_keda_schema_rejects_a_broken_scaled_object(
    rendered: list[Doc], path: tuple[str | int, ...], value: object
) -> None:
    scaled = find(rendered, "ScaledObject", NAME)
    assert problems(scaled) == []
    assert problems(_set(scaled, path, value)) != []


def test_keda_schema_requires_a_trigger_type_and_a_target(rendered: list[Doc]) -> None:
    scaled = find(rendered, "ScaledObject", NAME)
    without_type = copy.deepcopy(scaled)
    del without_type["spec"]["triggers"][0]["type"]
    no_target = copy.deepcopy(scaled)
    del no_target["spec"]["scaleTargetRef"]
    no_triggers = _set(scaled, ("spec", "triggers"), [])
    assert [bool(problems(obj)) for obj in (without_type, no_target, no_triggers)] == [True] * 3


def test_keda_schema_rejects_a_broken_trigger_authentication(rendered: list[Doc]) -> None:
    auth = find(rendered, "TriggerAuthentication", f"{NAME}-redis")
    assert problems(auth) == []
    # secretTargetRef entries name the Secret with `name`; `secret` is not a field.
    entry = auth["spec"]["secretTargetRef"][0]
    renamed = {"parameter": entry["parameter"], "secret": entry["name"], "key": entry["key"]}
    assert problems(_set(auth, ("spec", "secretTargetRef", 0), renamed)) != []


@pytest.fixture(scope="module")
def scaffold(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder `serverless-runtime new stream-fn --keda` writes."""
    parent = tmp_path_factory.mktemp("functions")
    assert main(["new", NAME, "--keda", "--dir", str(parent)]) == 0
    return parent / NAME


def _function_env(folder: Path) -> dict[str, str]:
    lines = (folder / "function.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_keda_cluster_trigger_in_the_scaffold_readme_validates_and_the_runtime_accepts_its_stream(
    rendered: list[Doc], scaffold: Path
) -> None:
    """The README's Redis Cluster trigger fits the ScaledObject, and the stream it names is one
    the runtime in cluster mode starts with (the scaffold's own stream name is refused there)."""
    readme = (scaffold / "README.md").read_text()
    triggers = yaml.safe_load(readme.split("```yaml\n", 1)[1].split("```", 1)[0])["triggers"]
    scaled = _set(find(rendered, "ScaledObject", NAME), ("spec", "triggers"), triggers)
    assert problems(scaled) == []
    (trigger,) = triggers
    assert trigger["type"] == "redis-cluster-streams"
    assert trigger["authenticationRef"] == {"name": f"{NAME}-redis"}
    metadata = trigger["metadata"]
    assert metadata["addressesFromEnv"] == "REDIS_CLUSTER_NODES"
    environ = {
        **_function_env(scaffold),
        "REDIS_CLUSTER_NODES": "redis-0:6379,redis-1:6379,redis-2:6379",
        "FUNCTION_PATH": str(scaffold / "usermodule.py"),
    }
    assert metadata["consumerGroup"] == environ["STREAM_GROUP"]
    with pytest.raises(ConfigError, match="REDIS_INPUT_KEY"):
        Settings.from_env(environ)
    settings = Settings.from_env({**environ, "REDIS_INPUT_KEY": metadata["stream"]})
    assert settings.keys.input == metadata["stream"]
    assert settings.keys.output == environ["REDIS_OUTPUT_KEY"]
