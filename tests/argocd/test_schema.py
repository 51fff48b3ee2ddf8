"""Every Argo CD object we apply validates against Argo CD's own CRD schemas (v3.5)."""

from __future__ import annotations

import copy
import json
from functools import cache
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from tests.argocd.manifests import SCHEMAS, Obj, all_applications, projects

SCHEMA_FILES = {
    "Application": "application_v1alpha1.json",
    "AppProject": "appproject_v1alpha1.json",
}


@cache
def validator(kind: str) -> jsonschema.Draft7Validator:
    """A validator for one Argo CD kind, from the CRD schema copied into tests/argocd/schemas."""
    schema: dict[str, Any] = json.loads((SCHEMAS / SCHEMA_FILES[kind]).read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def problems(obj: Obj) -> list[str]:
    """Schema violations of one object, as readable lines."""
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in validator(obj["kind"]).iter_errors(obj)
    ]


def argocd_objects() -> list[Obj]:
    """The AppProjects and Applications of every cluster."""
    return list(projects().values()) + all_applications()


def test_schema_every_argocd_object_validates() -> None:
    objects = argocd_objects()
    assert {o["kind"] for o in objects} == {"AppProject", "Application"}
    failures = {
        f"{o['kind']}/{o['metadata']['name']}": errors for o in objects if (errors := problems(o))
    }
    assert failures == {}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "syncPolicy", "automated", "selfheal"), True),  # misspelled selfHeal
        (("spec", "syncPolicy", "retry", "limit"), "five"),
        (("spec", "revisionHistory"), 10),
    ],
)
def test_schema_rejects_a_broken_application(path: tuple[str, ...], value: object) -> None:
    # The schemas are strict (additionalProperties: false), so a typo cannot pass unnoticed.
    app = copy.deepcopy(all_applications()[0])
    node = app
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    assert problems(app) != []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "destinationServiceAccounts", 0, "serviceAccount"), "x"),  # not the field name
        (("spec", "namespaceResourceWhitelist", 0, "name"), "x"),  # names only on cluster kinds
    ],
)
def test_schema_rejects_a_broken_project(path: tuple[object, ...], value: object) -> None:
    project = copy.deepcopy(projects()["serverless-dev"])
    node: Any = project
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert problems(project) != []
