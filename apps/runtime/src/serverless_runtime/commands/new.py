"""`serverless-runtime new NAME`: a new function folder with a working example, ready to deploy.

The folder follows the function-folder contract (apps/functions/README.md): `usermodule.py`,
`function.env`, `test_usermodule.py`, `README.md`, and what deploys it, `kustomization.yaml` and
`deployment.yaml` (gitops/README.md, "Functions"). When the parent folder holds the functions'
index (a `kustomization.yaml` listing them), the new folder is added to it, so the next push
deploys it. With `keda`, the function reads a Redis Stream and scales with KEDA (a `keda/`
Component in the folder). The files come from `templates/`, shipped inside the package: `${name}`
is replaced by the function's name (`string.Template`); the Python files are copied as they are,
and end in `.py.tmpl` so that neither pytest nor the linters take them for the package's own.
"""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path
from string import Template

NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?")
# Names whose Deployment (NAME) or ConfigMaps (NAME-code, NAME-settings) would clash with what
# the environments already render (redis, the collector, the dashboard, runtime-settings, …).
RESERVED = frozenset(
    "redis metrics-collector monitoring-dashboard serverless-runtime runtime dashboard".split()  # noqa: SIM905
)
INDEX = "kustomization.yaml"


class ScaffoldError(ValueError):
    """Why the folder was not created (one line, for the command line)."""


def create(name: str, parent: Path, *, keda: bool = False) -> Path:
    """Write the folder parent/name and add it to parent's index if there is one; return it."""
    if not NAME.fullmatch(name):
        raise ScaffoldError(
            f"{name!r} is not a function name: 1-40 characters of a-z, 0-9 and '-', "
            "starting and ending with a letter or digit"
        )
    if name in RESERVED:
        raise ScaffoldError(f"{name!r} names another object of every environment: choose another")
    folder = parent / name
    if folder.exists():
        raise ScaffoldError(f"{folder} already exists: nothing written")
    index = parent / INDEX
    index_text = _indexed(index.read_text(), name) if index.is_file() else None
    contents = {
        "usermodule.py": template("usermodule.py.tmpl"),
        "test_usermodule.py": template("test_usermodule.py.tmpl"),
        "function.env": template("function-stream.env" if keda else "function.env", name=name),
        "README.md": template("README.md", name=name)
        + (template("README-keda.md", name=name) if keda else ""),
        "kustomization.yaml": template(
            "kustomization.yaml", name=name, components="components:\n  - keda\n" if keda else ""
        ),
        "deployment.yaml": template("deployment.yaml", name=name),
    }
    if keda:
        for relative in ("keda/kustomization.yaml", "keda/scaledobject.yaml"):
            contents[relative] = template(relative, name=name)
    folder.mkdir(parents=True)
    for relative, text in contents.items():
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


def template(relative: str, **values: str) -> str:
    """The text of templates/<relative>, its `${key}` placeholders filled from `values` if any."""
    text = (files("serverless_runtime.commands") / "templates" / relative).read_text(
        encoding="utf-8"
    )
    return Template(text).substitute(values) if values else text
