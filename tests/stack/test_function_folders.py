"""Function folders as `make run` and `make invoke` read them, and a function's own venv."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from serverless_runtime.function.handler_ref import HandlerRef

from scripts.function_folders import (
    FUNCTIONS,
    PACKAGES_DIR,
    RUNTIME_VENV,
    Function,
    FunctionFolderError,
    discover,
    find,
    function_venv,
    parse_function_env,
    runtime_bin,
    scan,
)
from tests.conftest import FIXTURES, REPO_ROOT

CHECK = REPO_ROOT / "scripts" / "function_packages.py"


def test_every_function_folder_is_found_with_its_settings() -> None:
    functions = {f.name: f for f in discover()}
    assert {"cpu-stats", "resource-monitor"} <= functions.keys()
    cpu_stats, monitor = functions["cpu-stats"], functions["resource-monitor"]
    assert cpu_stats.output_key == "cpu-stats"
    assert monitor.output_key == "resource-monitor"
    assert cpu_stats.input_key == monitor.input_key == "metrics"
    assert cpu_stats.requirements == FUNCTIONS / "cpu-stats" / "requirements.txt"
    assert monitor.requirements is None
    assert cpu_stats.code_env() == {"FUNCTION_PATH": str(FUNCTIONS / "cpu-stats" / "usermodule.py")}


def _folder(root: Path, name: str, env: str | None, code: str = "usermodule.py") -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / code).write_bytes(b"")
    if env is not None:
        (folder / "function.env").write_text(env)
    return folder


def test_function_env_takes_comments_and_blank_lines(tmp_path: Path) -> None:
    _folder(
        tmp_path,
        "a-zip",
        "# a comment\n\nREDIS_OUTPUT_KEY=out\n  TRIGGER = poll \n",
        "function.zip",
    )
    (function,) = discover(tmp_path)
    assert function.settings == {"REDIS_OUTPUT_KEY": "out", "TRIGGER": "poll"}
    assert function.code_env() == {"FUNCTION_ZIP": str(tmp_path / "a-zip" / "function.zip")}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("REDIS_OUTPUT_KEY=out\nno equals sign\n", "function.env:2: expected KEY=VALUE"),
        ("REDIS_OUTPUT_KEY=out\nREDIS_URL=redis://x\n", "REDIS_URL is set per environment"),
        ("REDIS_OUTPUT_KEY=out\nFUNCTION_PATH=/x.py\n", "FUNCTION_PATH is set per environment"),
        (
            "REDIS_OUTPUT_KEY=a\nREDIS_OUTPUT_KEY=b\n",
            "function.env:2: REDIS_OUTPUT_KEY is set twice",
        ),
        ("TRIGGER=poll\n", "REDIS_OUTPUT_KEY is required"),
        ("REDIS_OUTPUT_KEY=\n", "REDIS_OUTPUT_KEY is required"),
        (
            "REDIS_OUTPUT_KEY=out\nHANDLER_TIMOUT=10\n",
            r"function.env:2: HANDLER_TIMOUT is not a runtime setting "
            r"\(did you mean HANDLER_TIMEOUT\?\)",
        ),
        ("REDIS_OUTPUT_KEY=out\nCOLOUR=blue\n", "COLOUR is not a runtime setting"),
    ],
)
def test_a_bad_function_env_is_refused_naming_file_and_line(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "function.env"
    path.write_text(text)
    with pytest.raises(FunctionFolderError, match=message):
        parse_function_env(path)


@pytest.mark.parametrize(
    ("name", "env", "message"),
    [
        ("Upper", "REDIS_OUTPUT_KEY=o\n", "DNS label"),
        ("x" * 41, "REDIS_OUTPUT_KEY=o\n", "DNS label"),
        ("no-env", None, "function.env: missing"),
    ],
)
def test_a_folder_that_cannot_run_is_refused(
    tmp_path: Path, name: str, env: str | None, message: str
) -> None:
    _folder(tmp_path, name, env)
    with pytest.raises(FunctionFolderError, match=message):
        discover(tmp_path)


def test_one_folder_that_cannot_run_leaves_the_others_running(tmp_path: Path) -> None:
    _folder(tmp_path, "good", "REDIS_OUTPUT_KEY=good\n")
    _folder(tmp_path, "typo", "REDIS_OUTPUT_KEY=typo\nINVOKE_ONN=change\n")
    _folder(tmp_path, "bad-value", "REDIS_OUTPUT_KEY=bad\nINTERVAL=soon\n")
    functions, problems = scan(tmp_path)
    assert [f.name for f in functions] == ["good"]
    messages = sorted(str(p) for p in problems)
    assert "bad-value/function.env: invalid setting INTERVAL='soon'" in messages[0]
    assert "did you mean INVOKE_ON?" in messages[1]
    with pytest.raises(FunctionFolderError, match="bad-value"):
        discover(tmp_path)


def _dist(site: Path, name: str, version: str) -> None:
    info = site / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


def _check(runtime_site: Path, packages: Path) -> subprocess.CompletedProcess[str]:
    # The fake runtime site comes first on sys.path, like the runtime venv's site-packages.
    env = {**os.environ, "PYTHONPATH": str(runtime_site)}
    return subprocess.run(
        [sys.executable, str(CHECK), "check", str(packages)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_package_the_runtime_ships_at_another_version_is_refused(tmp_path: Path) -> None:
    _dist(tmp_path / "runtime", "Shared_Lib", "1.0")
    _dist(tmp_path / "packages", "shared.lib", "2.0")
    _dist(tmp_path / "packages", "numpyish", "3.0")
    result = _check(tmp_path / "runtime", tmp_path / "packages")
    assert result.returncode == 1
    assert "shared-lib: the function pins 2.0, the runtime ships 1.0" in result.stderr
    assert "numpyish" not in result.stderr


def test_the_same_version_as_the_runtimes_or_a_new_package_passes(tmp_path: Path) -> None:
    _dist(tmp_path / "runtime", "shared-lib", "1.0")
    _dist(tmp_path / "packages", "shared-lib", "1.0")
    _dist(tmp_path / "packages", "numpyish", "3.0")
    result = _check(tmp_path / "runtime", tmp_path / "packages")
    assert (result.returncode, result.stderr) == (0, "")


@pytest.mark.slow
def test_function_venv_runs_the_function_with_its_packages_after_the_runtimes(
    tmp_path: Path,
) -> None:
    (cpu_stats,) = [f for f in discover() if f.name == "cpu-stats"]
    venv = function_venv(cpu_stats, venvs=tmp_path)
    probe = (
        "import json, sys, numpy, redis, serverless_runtime;"
        "print(json.dumps([numpy.__file__, redis.__file__, serverless_runtime.__file__]))"
    )
    python = venv / "bin" / "python"
    found = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True)
    numpy_file, redis_file, runtime_file = json.loads(found.stdout)
    assert Path(numpy_file).is_relative_to(venv / PACKAGES_DIR)
    assert Path(redis_file).is_relative_to(venv / "lib")  # the runtime's lock, not the function's
    assert Path(runtime_file).is_relative_to(REPO_ROOT / "apps" / "runtime")  # editable
    # The venv's serverless-runtime invokes the function: numpy's statistics of one snapshot.
    snapshot = json.loads((FIXTURES / "metrics-5s.jsonl").read_text().splitlines()[0])
    (tmp_path / "in.json").write_text(json.dumps(snapshot))
    called = subprocess.run(
        [venv / "bin" / "serverless-runtime", "invoke", "--function", str(cpu_stats.code),
         "--input", str(tmp_path / "in.json")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    output = json.loads(called.stdout)
    assert output["timestamp"] == snapshot["timestamp"]
    assert output["p95-util-cpu0-60sec"] == snapshot["cpu_percent-0"]
    # Made once: a second call finds the stamp and leaves the venv alone.
    stamp = (venv / ".installed").stat().st_mtime_ns
    assert function_venv(cpu_stats, venvs=tmp_path) == venv
    assert (venv / ".installed").stat().st_mtime_ns == stamp


def test_make_invoke_calls_a_function_without_packages(tmp_path: Path) -> None:
    snapshot = (FIXTURES / "metrics-5s.jsonl").read_text().splitlines()[0]
    (tmp_path / "in.json").write_text(snapshot)
    called = subprocess.run(
        [sys.executable, "-m", "scripts.devstack", "invoke",
         "resource-monitor", "--input", str(tmp_path / "in.json")],
        capture_output=True, text=True, check=False, cwd=REPO_ROOT,
    )  # fmt: skip
    assert called.returncode == 0, called.stderr
    assert json.loads(called.stdout)["timestamp"] == json.loads(snapshot)["timestamp"]
    unknown = subprocess.run(
        [sys.executable, "-m", "scripts.devstack", "invoke", "nope",
         "--input", str(tmp_path / "in.json")],
        capture_output=True, text=True, check=False, cwd=REPO_ROOT,
    )  # fmt: skip
    assert unknown.returncode == 2
    assert "no function 'nope'" in unknown.stderr


def _pins(requirements: Path) -> set[str]:
    """`name==version ; marker` of every pin, hashes aside."""
    return {
        line.rstrip(" \\")
        for line in requirements.read_text().splitlines()
        if "==" in line and not line.startswith((" ", "#"))
    }


def test_dev_lock_holds_each_functions_pins_so_make_test_runs_its_test() -> None:
    locked = _pins(REPO_ROOT / "requirements" / "dev.txt")
    with_requirements = [f for f in discover() if f.requirements is not None]
    assert with_requirements
    for function in with_requirements:
        assert function.requirements is not None
        pins = _pins(function.requirements)
        assert pins, function.requirements
        # `make lock` compiles both; a function lock re-compiled alone would drift from the dev one.
        assert pins <= locked, function.name


@pytest.mark.slow
def test_a_function_without_requirements_cannot_import_what_it_does_not_declare(
    tmp_path: Path,
) -> None:
    # The dev venv holds numpy (cpu-stats' tests need it); the function's image would not.
    folder = _folder(tmp_path / "functions", "sneaky", "REDIS_OUTPUT_KEY=sneaky\n")
    (folder / "usermodule.py").write_text(
        "import numpy\n\ndef handler(input, context):\n    return {'n': int(numpy.int64(1))}\n"
    )
    (function,) = discover(tmp_path / "functions")
    venv = function_venv(function, venvs=tmp_path / "venvs")
    assert venv == tmp_path / "venvs" / RUNTIME_VENV
    (tmp_path / "in.json").write_text("{}")
    called = subprocess.run(
        [venv / "bin" / "serverless-runtime", "invoke", "--function", str(function.code),
         "--input", str(tmp_path / "in.json")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert called.returncode == 1
    assert "numpy" in called.stderr
    # What it does declare, the runtime's own packages, it can import.
    shared = Function("shared", folder, {"REDIS_OUTPUT_KEY": "shared"})
    assert function_venv(shared, venvs=tmp_path / "venvs") == venv
    probe = [str(venv / "bin" / "python"), "-c", "import redis, serverless_runtime"]
    assert subprocess.run(probe, check=False).returncode == 0


# Loads a function file as the runtime does, in the interpreter of the venv it runs from.
LOAD = """
import sys
from pathlib import Path
from serverless_runtime.function.loader import FunctionLoadError, load_file
try:
    load_file(Path(sys.argv[1]), sys.argv[2])
except FunctionLoadError as exc:
    sys.exit(str(exc))
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", sorted(p.name for p in FUNCTIONS.iterdir() if (p / "usermodule.py").is_file())
)
def test_every_function_loads_from_the_environment_it_runs_from(name: str) -> None:
    # What its image holds and nothing more: an import it does not declare fails `make test`,
    # before the function's first pod does.
    function = find(name)
    handler = HandlerRef.parse(function.settings.get("FUNCTION_HANDLER", ":handler")).function
    python = runtime_bin(function) / "python"
    loaded = subprocess.run(
        [python, "-c", LOAD, str(function.code), handler], capture_output=True, text=True
    )
    assert loaded.returncode == 0, loaded.stderr
