"""`serverless-runtime invoke` runs a function once on files, without Redis."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.support.processes import RUNTIME

REPO = Path(__file__).resolve().parents[2]
FUNCTION = REPO / "apps" / "functions" / "resource-monitor" / "usermodule.py"
FIXTURE = REPO / "tests" / "fixtures" / "metrics-5s.jsonl"


def invoke(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([RUNTIME, "invoke", *args], capture_output=True, text=True, timeout=60)


def test_invoke_prints_result_and_keeps_state_between_calls(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    results = []
    for n, line in enumerate(FIXTURE.read_text().splitlines()[:3]):
        (tmp_path / f"in{n}.json").write_text(line)
        done = invoke("--function", str(FUNCTION), "--input", str(tmp_path / f"in{n}.json"),
                      "--state", str(state))  # fmt: skip
        assert done.returncode == 0, done.stderr
        results.append(json.loads(done.stdout))
    assert results[2]["timestamp"] == json.loads(FIXTURE.read_text().splitlines()[2])["timestamp"]
    assert "avg-util-cpu0-60sec" in results[2]
    assert json.loads(state.read_text())  # the window lives in the state file


def test_invoke_reports_broken_function(tmp_path: Path) -> None:
    function = tmp_path / "usermodule.py"
    function.write_text("def handler(input, context):\n    return [\n")
    (tmp_path / "in.json").write_text("{}")
    done = invoke("--function", str(function), "--input", str(tmp_path / "in.json"))
    assert done.returncode == 1
    assert f"syntax error in {function} at line 2" in done.stderr


def test_invoke_reports_bad_input_file(tmp_path: Path) -> None:
    (tmp_path / "in.json").write_text("{oops")
    done = invoke("--function", str(FUNCTION), "--input", str(tmp_path / "in.json"))
    assert done.returncode == 1
    assert "is not valid JSON" in done.stderr


def test_invoke_state_file_keeps_int_keys_tuples_and_datetimes(tmp_path: Path) -> None:
    function = REPO / "tests" / "process" / "functions" / "course_buckets.py"
    state = tmp_path / "state.json"
    for i in (1, 2, 3):
        (tmp_path / "in.json").write_text(json.dumps({"i": i}))
        done = invoke("--function", str(function), "--input", str(tmp_path / "in.json"),
                      "--state", str(state))  # fmt: skip
        assert done.returncode == 0, done.stderr  # was KeyError: 1 on the second call
    assert json.loads(done.stdout)["sizes"] == [0, 1, 1, 1]
    course = REPO / "tests" / "process" / "functions" / "course_style.py"
    for _ in range(2):  # datetimes in env: written to the file and read back
        done = invoke("--function", str(course), "--input", str(tmp_path / "in.json"),
                      "--state", str(tmp_path / "course.json"))  # fmt: skip
        assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout[done.stdout.index("{") :])["calls"] == 2  # after its print()
