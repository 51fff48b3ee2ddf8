"""The e2e's function change: a real commit to the function file that keeps the function working
and adds a marker the test can look for."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path
from types import ModuleType, SimpleNamespace

from tests.e2e.function_change import FUNCTION_PATH, MARKER_KEY, commit_script, marker_snippet
from tests.e2e.served_repo import REPO, git

FIXTURE = REPO / "tests" / "fixtures" / "metrics-5s.jsonl"


def load_module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("changed_usermodule", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_function_change_keeps_outputs_and_adds_the_marker(tmp_path: Path) -> None:
    changed = tmp_path / "usermodule.py"
    changed.write_text((REPO / FUNCTION_PATH).read_text() + marker_snippet("m-123"))
    original = load_module(REPO / FUNCTION_PATH)
    module = load_module(changed)
    before_ctx, after_ctx = SimpleNamespace(env={}), SimpleNamespace(env={})
    for line in FIXTURE.read_text().splitlines()[:3]:
        before = original.handler(json.loads(line), before_ctx)
        after = module.handler(json.loads(line), after_ctx)
    assert after.pop(MARKER_KEY) == "m-123"
    assert after == before


def test_function_change_script_commits_to_the_bare_repository(tmp_path: Path) -> None:
    # The same script the e2e runs in the git server pod, run here against a local bare repo.
    work = tmp_path / "work"
    (work / Path(FUNCTION_PATH).parent).mkdir(parents=True)
    (work / FUNCTION_PATH).write_text("def handler(input, context):\n    return {'a': 1}\n")
    git(work, "init", "--quiet", "--initial-branch", "main")
    git(work, "add", "--all")
    git(work, "commit", "--quiet", "--message", "start")
    bare = tmp_path / "served.git"
    git(tmp_path, "clone", "--quiet", "--bare", str(work), str(bare))

    result = subprocess.run(
        ["sh", "-c", commit_script("m-456", repository=str(bare))],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TMPDIR": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    commit = result.stdout.strip().splitlines()[-1]
    assert git(bare, "rev-parse", "main").strip() == commit
    assert git(bare, "rev-list", "--count", "main").strip() == "2"
    source = git(bare, "show", f"main:{FUNCTION_PATH}")
    namespace: dict[str, object] = {}
    exec(compile(source, FUNCTION_PATH, "exec"), namespace)
    handler = namespace["handler"]
    assert callable(handler)
    assert handler({}, None) == {"a": 1, MARKER_KEY: "m-456"}
