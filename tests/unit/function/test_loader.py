"""Each way a function can fail to load gives its own clear message naming the path."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from serverless_runtime.failures import FailureKind
from serverless_runtime.function.handler_ref import HandlerRef
from serverless_runtime.function.loader import (
    FunctionLoadError,
    FunctionSource,
    load_file,
)
from serverless_runtime.function.zip_loader import load_zip

from tests.unit.function.load_errors import load_fails

FUNCTIONS = Path(__file__).parents[2] / "process" / "functions"


def write(tmp_path: Path, text: str, name: str = "usermodule.py") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_load_file_returns_callable_handler_and_course_mtime() -> None:
    loaded = load_file(FUNCTIONS / "counter.py")
    assert loaded.handler({"value": 1}, type("C", (), {"env": {}})()) == {"calls": 1, "value": 1}
    assert len(loaded.mtime_text) == len("2026-11-27 23:22:01")


def test_load_file_missing_names_path(tmp_path: Path) -> None:
    with load_fails(FailureKind.FUNCTION_MISSING, match=str(tmp_path / "absent.py")):
        load_file(tmp_path / "absent.py")


def test_load_file_syntax_error_names_path_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "def handler(input, context):\n    return {'ok': True\n")
    with load_fails(FailureKind.SYNTAX_ERROR) as caught:
        load_file(path)
    assert str(path) in str(caught.value)
    assert "line 2" in str(caught.value)


def test_load_file_failing_dependency_is_not_called_missing_handler(tmp_path: Path) -> None:
    path = write(tmp_path, "import not_installed_anywhere\n\ndef handler(i, c):\n    return {}\n")
    with load_fails(FailureKind.DEPENDENCY_MISSING) as caught:
        load_file(path)
    assert caught.value.kind == "dependency-missing"
    assert "not_installed_anywhere" in str(caught.value)
    assert str(path) in str(caught.value)


def test_load_file_import_error_of_its_own_is_an_import_error(tmp_path: Path) -> None:
    path = write(tmp_path, "raise ImportError('needs a GPU')\n")
    with load_fails(FailureKind.IMPORT_ERROR) as caught:
        load_file(path)
    assert caught.value.kind == "import-error"
    assert "needs a GPU" in str(caught.value)


ANNOTATED = "def handler(input: dict, context: Context) -> dict:\n    return {'ok': True}\n"


def test_load_file_annotation_naming_an_unimported_type_fails_as_a_plain_import(
    tmp_path: Path,
) -> None:
    # The runtime's own `from __future__ import annotations` must not reach the user's code.
    path = write(tmp_path, ANNOTATED)
    plain = subprocess.run(
        [sys.executable, "-c", "import usermodule"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert plain.returncode != 0
    assert "NameError: name 'Context' is not defined" in plain.stderr
    with load_fails(FailureKind.IMPORT_ERROR) as caught:
        load_file(path)
    assert caught.value.kind == "import-error"
    assert str(caught.value) == (
        f"{path} raised while being imported: NameError: name 'Context' is not defined"
    )


def test_load_file_honours_the_files_own_future_import(tmp_path: Path) -> None:
    path = write(tmp_path, "from __future__ import annotations\n\n" + ANNOTATED)
    loaded = load_file(path)
    assert loaded.handler({}, None) == {"ok": True}
    assert loaded.handler.__annotations__["context"] == "Context"  # postponed: a string


@pytest.mark.parametrize("future", [False, True])
def test_zip_module_gets_only_its_own_future_imports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, future: bool
) -> None:
    monkeypatch.setattr(sys, "modules", dict(sys.modules))  # the package's module goes with it
    archive = tmp_path / "function.zip"
    with zipfile.ZipFile(archive, "w") as package:
        header = "from __future__ import annotations\n\n" if future else ""
        package.writestr("annotated_zip_function.py", header + ANNOTATED)
    ref = HandlerRef("annotated_zip_function")
    if future:
        assert load_zip(archive, ref, tmp_path / "work").handler({}, None) == {"ok": True}
        return
    with load_fails(FailureKind.IMPORT_ERROR) as caught:
        load_zip(archive, ref, tmp_path / "work")
    assert caught.value.kind == "import-error"
    assert "NameError: name 'Context' is not defined" in str(caught.value)


def test_load_file_syntax_error_in_a_neighbour_module_names_that_file(tmp_path: Path) -> None:
    helper = write(tmp_path, "def broken(:\n", name="broken_helper_xyz.py")
    path = write(tmp_path, "import broken_helper_xyz\n")
    with load_fails(
        FailureKind.SYNTAX_ERROR, match=re.escape(f"syntax error in {helper} at line 1")
    ):
        load_file(path)
    sys.modules.pop("broken_helper_xyz", None)


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        (None, "function-missing"),
        ("def handler(:\n", "syntax-error"),
        ("import not_installed_anywhere\n", "dependency-missing"),
        ("raise RuntimeError('boom')\n", "import-error"),
        ("def main(i, c):\n    return {}\n", "handler-not-found"),
        ("handler = 3\n", "handler-not-callable"),
    ],
)
def test_load_file_each_fault_has_its_own_kind(
    tmp_path: Path, source: str | None, kind: str
) -> None:
    path = tmp_path / "usermodule.py"
    if source is not None:
        path.write_text(source)
    with pytest.raises(FunctionLoadError) as caught:
        load_file(path)
    assert caught.value.kind == kind


def test_load_file_module_that_raises_reports_the_exception(tmp_path: Path) -> None:
    path = write(tmp_path, "raise SystemExit(3)\n")
    with load_fails(FailureKind.IMPORT_ERROR, match="SystemExit"):
        load_file(path)


def test_load_file_without_handler_says_so(tmp_path: Path) -> None:
    path = write(tmp_path, "def main(input, context):\n    return {}\n")
    with load_fails(FailureKind.HANDLER_NOT_FOUND, match="defines no 'handler'"):
        load_file(path)


def test_load_file_handler_not_callable_says_what_it_is(tmp_path: Path) -> None:
    path = write(tmp_path, "handler = {'not': 'a function'}\n")
    with load_fails(FailureKind.HANDLER_NOT_CALLABLE, match="is a dict, not a function"):
        load_file(path)


def test_source_refresh_keeps_old_version_when_new_one_breaks(tmp_path: Path) -> None:
    path = write(tmp_path, "def handler(i, c):\n    return {'v': 1}\n")
    source = FunctionSource(path)
    assert source.refresh() is True
    first = source.current
    path.write_text("def handler(i, c):\n    return {'v': \n")
    with load_fails(FailureKind.SYNTAX_ERROR):
        source.refresh()
    assert source.current is first
    assert source.refresh() is False  # the same broken version is reported once
    path.write_text("def handler(i, c):\n    return {'v': 2}\n")
    assert source.refresh() is True
    assert source.current is not None
    assert source.current.handler({}, None) == {"v": 2}


def test_source_says_which_version_failed_until_one_loads_or_the_file_is_reverted(
    tmp_path: Path,
) -> None:
    good = "def handler(i, c):\n    return {'v': 1}\n"
    path = write(tmp_path, "def handler(i, c):\n    return (\n")
    source = FunctionSource(path)
    os.utime(path, (1_900_000_000, 1_900_000_000))
    with load_fails(FailureKind.SYNTAX_ERROR):
        source.refresh()
    assert failure_of(source) == ("2030-03-17T17:46:40+00:00", "syntax-error", False)
    path.write_text(good)
    assert source.refresh() is True
    assert failure_of(source) is None
    path.write_text("import not_a_module_anywhere\n")
    with pytest.raises(FunctionLoadError, match="not_a_module_anywhere"):
        source.refresh()
    failed = failure_of(source)
    assert failed is not None and failed[1:] == ("dependency-missing", True)
    # Back to the content that runs: nothing failed any more, though nothing was loaded.
    path.write_text(good)
    assert source.refresh() is False
    assert failure_of(source) is None


def failure_of(source: FunctionSource) -> tuple[str, str, bool] | None:
    """(mtime, kind, running) of the version the source says failed to load."""
    failed = source.failed
    return None if failed is None else (failed.mtime, failed.kind, failed.running)


def test_load_file_neighbours_cannot_shadow_modules_the_runtime_imports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("prometheus_client", "helper"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    (tmp_path / "prometheus_client").mkdir()
    write(tmp_path, "raise RuntimeError('shadowed')\n", "prometheus_client/__init__.py")
    write(tmp_path, "ANSWER = 42\n", "helper.py")
    path = write(
        tmp_path, "import helper\n\ndef handler(input, context):\n    return helper.ANSWER\n"
    )
    try:
        assert load_file(path).handler({}, None) == 42  # its own neighbours still import
        origin = importlib.import_module("prometheus_client").__file__
    finally:
        sys.modules.pop("helper", None)
    assert origin is not None
    assert not Path(origin).is_relative_to(tmp_path)
