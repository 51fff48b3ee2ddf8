"""The command line in-process: arguments refused with one line, `invoke`'s files and stdin.

tests/process/test_invoke.py runs `serverless-runtime invoke` as a process on the real function.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from serverless_runtime.cli import main

FUNCTION = """\
def handler(input, context):
    context.env["calls"] = context.env.get("calls", 0) + 1
    return {"calls": context.env["calls"], "got": input}


def other(input, context):
    context.env["kept"] = object()
    return "other"
"""


@pytest.fixture
def function(tmp_path: Path) -> Path:
    path = tmp_path / "usermodule.py"
    path.write_text(FUNCTION)
    return path


def test_invoke_reads_stdin_and_counts_calls_in_the_state_file(
    function: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state = tmp_path / "state.json"
    for n in (1, 2):
        monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps({"n": n})))
        argv = ["invoke", "--function", str(function), "--input", "-", "--state", str(state)]
        assert main(argv) == 0
        assert json.loads(capsys.readouterr().out) == {"calls": n, "got": {"n": n}}


def test_invoke_refuses_a_state_file_that_is_not_an_object(
    function: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "in.json").write_text("{}")
    (tmp_path / "state.json").write_text("[1, 2]")
    argv = ["invoke", "--function", str(function), "--input", str(tmp_path / "in.json")]
    assert main([*argv, "--state", str(tmp_path / "state.json")]) == 1
    assert "does not hold a JSON object" in capsys.readouterr().err


def test_invoke_says_when_the_state_cannot_be_written(
    function: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "in.json").write_text("{}")
    state = tmp_path / "state.json"
    argv = ["invoke", "--function", str(function), "--input", str(tmp_path / "in.json")]
    assert main([*argv, "--state", str(state), "--handler", "other"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out) == "other"
    assert f"state file {state} not written" in captured.err
    assert not state.exists()


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["invoke", "--function", "f.py", "--input", "-", "--handler", "pkg:fn"], "no module"),
        (["invoke", "--function", "f.py", "--input", "-", "--handler", "1fn"], "not a function"),
        (["collect", "--period", "0"], "greater than 0"),
        (["collect", "--period", "soon"], "not soon"),
    ],
)
def test_bad_arguments_exit_2_saying_why(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert said in capsys.readouterr().err
