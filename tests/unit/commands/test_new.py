"""`serverless-runtime new`'s templates: read from the package (also from a zip), every
placeholder filled, the Python files lint-clean and the YAML files valid as the user gets them.

What the folder deploys as is in tests/manifests/test_scaffold.py (rendered with kustomize, its own
test run) and tests/stack/test_new_function_green.py (the repository's tests stay green)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from serverless_runtime.commands import new
from yamllint import linter  # type: ignore[import-untyped]
from yamllint.config import YamlLintConfig  # type: ignore[import-untyped]

from tests.conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "apps" / "runtime" / "src" / "serverless_runtime"
TEMPLATES = PACKAGE / "commands" / "templates"
# yamllint's defaults but the repository's line length, and no `---` required.
YAMLLINT = YamlLintConfig(
    "{extends: default, rules: {line-length: {max: 100}, document-start: disable}}"
)


def contents(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): path.read_text()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.mark.parametrize("keda", [False, True], ids=["key", "keda"])
def test_every_placeholder_is_filled_with_the_name(tmp_path: Path, keda: bool) -> None:
    files = contents(new.create("cpu-summary", tmp_path, keda=keda))
    assert not [name for name, text in files.items() if "${" in text]
    deployment = yaml.safe_load(files["deployment.yaml"])
    assert deployment["metadata"]["name"] == "cpu-summary"
    assert deployment["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"] == (
        "cpu-summary-code"
    )
    kustomization = yaml.safe_load(files["kustomization.yaml"])
    assert [g["name"] for g in kustomization["configMapGenerator"]] == [
        "cpu-summary-code",
        "cpu-summary-settings",
    ]
    assert "REDIS_OUTPUT_KEY=cpu-summary\n" in files["function.env"]
    assert files["README.md"].startswith("# cpu-summary\n")


def test_keda_adds_the_component_the_stream_settings_and_a_readme_section(
    tmp_path: Path,
) -> None:
    plain = contents(new.create("plain-fn", tmp_path))
    scaled = contents(new.create("scaled-fn", tmp_path, keda=True))
    assert set(scaled) - set(plain) == {"keda/kustomization.yaml", "keda/scaledobject.yaml"}
    assert "components" not in yaml.safe_load(plain["kustomization.yaml"])
    assert yaml.safe_load(scaled["kustomization.yaml"])["components"] == ["keda"]
    assert "TRIGGER=auto\n" in plain["function.env"]
    assert "TRIGGER=stream\n" in scaled["function.env"]
    assert "STREAM_GROUP=scaled-fn\n" in scaled["function.env"]
    assert "## Scaling with KEDA" not in plain["README.md"]
    assert "## Scaling with KEDA" in scaled["README.md"]
    objects = list(yaml.safe_load_all(scaled["keda/scaledobject.yaml"]))
    assert [o["kind"] for o in objects] == ["ScaledObject", "TriggerAuthentication"]
    assert objects[0]["spec"]["triggers"][0]["metadata"]["consumerGroup"] == "scaled-fn"


def test_python_files_pass_ruff_as_generated(tmp_path: Path) -> None:
    folder = new.create("lint-me", tmp_path)
    config = ["--config", str(REPO_ROOT / "pyproject.toml")]
    for command in (["check", *config], ["format", "--check", "--diff", *config]):
        done = subprocess.run(
            [sys.executable, "-m", "ruff", *command, str(folder)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_yaml_templates_pass_yamllint_before_and_after_filling(tmp_path: Path) -> None:
    folder = new.create("lint-me", tmp_path, keda=True)
    templates = sorted(TEMPLATES.rglob("*.yaml"))
    assert len(templates) == 4
    for path in [*templates, *sorted(folder.rglob("*.yaml"))]:
        problems = list(linter.run(path.read_text(), YAMLLINT))
        assert problems == [], (path, [str(p) for p in problems])


def test_templates_are_read_from_a_zipped_package(tmp_path: Path) -> None:
    # importlib.resources, not paths beside the module: the package may be a zip or a wheel.
    archive = tmp_path / "runtime.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in sorted(PACKAGE.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                zipped.write(path, path.relative_to(PACKAGE.parent))
    script = (
        "import sys; from pathlib import Path; from serverless_runtime.commands import new; "
        "assert new.__file__.startswith(sys.argv[1]), new.__file__; "
        "new.create('zipped', Path(sys.argv[2]), keda=True)"
    )
    # -S: no site-packages, so the only serverless_runtime to import is the zip's.
    subprocess.run(
        [sys.executable, "-S", "-c", script, str(archive), str(tmp_path / "from-zip")],
        env={"PYTHONPATH": str(archive)},
        check=True,
    )
    expected = new.create("zipped", tmp_path / "from-folder", keda=True)
    assert contents(tmp_path / "from-zip" / "zipped") == contents(expected)
