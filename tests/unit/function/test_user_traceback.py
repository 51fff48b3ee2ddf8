"""A user failure: its text even when its own __str__ raises, and a traceback with the function's
frames, not the runtime's."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import pytest
import serverless_runtime
from serverless_runtime.function.handler_ref import HandlerRef
from serverless_runtime.function.loader import FunctionLoadError, load_file
from serverless_runtime.function.user_traceback import describe, user_traceback
from serverless_runtime.function.zip_loader import load_zip
from serverless_runtime.state.durable import ReplayError

NESTED = """\
def parse(value):
    return int(value["n"])


def total(values):
    return sum(parse(v) for v in values)


def handler(input, context):
    return {"total": total(input["values"])}
"""


def _load_error(tmp_path: Path, source: str) -> FunctionLoadError:
    path = tmp_path / "usermodule.py"
    path.write_text(source)
    with pytest.raises(FunctionLoadError) as caught:
        load_file(path)
    return caught.value


def _runtime_paths(text: str) -> list[str]:
    return [line for line in text.splitlines() if "serverless_runtime" in line]


def test_user_traceback_of_a_syntax_error_keeps_the_caret_and_no_runtime_frame(
    tmp_path: Path,
) -> None:
    error = _load_error(tmp_path, "def handler(input, context):\n    return {'a': 1,,}\n")
    text = user_traceback(error)
    assert f'File "{tmp_path / "usermodule.py"}", line 2' in text
    assert "return {'a': 1,,}" in text
    assert "^" in text
    assert text.rstrip().splitlines()[-1].startswith("SyntaxError: ")
    assert _runtime_paths(text) == []
    # With LOG_LEVEL=DEBUG the runtime's frames (the loader's compile) are shown as well.
    assert "loader.py" in user_traceback(error, full=True)


def test_user_traceback_of_an_import_time_name_error_names_the_user_line(tmp_path: Path) -> None:
    error = _load_error(tmp_path, "import os\n\nLIMIT = undefined_name + 1\n")
    text = user_traceback(error)
    assert text.startswith("Traceback (most recent call last):")
    assert f'File "{tmp_path / "usermodule.py"}", line 3, in <module>' in text
    assert "LIMIT = undefined_name + 1" in text
    assert "NameError: name 'undefined_name' is not defined" in text
    # The runtime's wrapper (FunctionLoadError) and its frames are not repeated.
    assert _runtime_paths(text) == []
    assert "FunctionLoadError" not in text
    full = user_traceback(error, full=True)
    assert "loader.py" in full and "FunctionLoadError" in full


def test_user_traceback_of_a_handler_keeps_its_nested_frames_only(
    tmp_path: Path,
) -> None:
    path = tmp_path / "usermodule.py"
    path.write_text(NESTED)
    handler = load_file(path).handler
    exc = _raised_in_runtime(handler, {"values": [{"n": "1"}, {"n": "x"}]}, None)
    text = user_traceback(exc)
    lines = text.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[1].strip() == f'File "{path}", line 10, in handler'  # where the runtime called
    assert f'File "{path}", line 6, in total' in text
    assert f'File "{path}", line 2, in parse' in text
    assert 'return int(value["n"])' in text
    assert lines[-1] == "ValueError: invalid literal for int() with base 10: 'x'"
    assert _runtime_paths(text) == []
    assert "_execute" not in text
    assert "loop.py" in user_traceback(exc, full=True)


def _runtime_file(name: str) -> str:
    return str(Path(serverless_runtime.__file__).parent / name)


# A frame of the runtime's package calling the handler and catching what it raises, as
# loop.py does: the traceback starts there.
_RUNTIME_CALL = """
def call(function, *args):
    try:
        function(*args)
    except BaseException as exc:
        return exc
"""


def _raised_in_runtime(function: Any, *args: Any) -> BaseException:
    namespace: dict[str, Any] = {}
    exec(compile(_RUNTIME_CALL, _runtime_file("loop.py"), "exec"), namespace)
    exc = namespace["call"](function, *args)
    assert isinstance(exc, BaseException)
    return exc


def test_user_traceback_of_a_runtime_failure_without_user_code_is_empty() -> None:
    # e.g. handler-not-found, a damaged journal entry: the message says it all.
    def damaged(_value: Any, _context: Any) -> None:
        raise ReplayError("journal entry 3 has no input", damaged=True)

    damaged.__code__ = damaged.__code__.replace(co_filename=_runtime_file("state.py"))
    exc = _raised_in_runtime(damaged, {}, None)
    assert isinstance(exc, ReplayError)
    assert user_traceback(exc) == ""
    assert "ReplayError" in user_traceback(exc, full=True)


def test_user_traceback_keeps_the_users_own_chained_exceptions(tmp_path: Path) -> None:
    path = tmp_path / "usermodule.py"
    path.write_text(
        "def handler(input, context):\n"
        "    try:\n"
        "        return {'v': input['missing']}\n"
        "    except KeyError as exc:\n"
        "        raise RuntimeError('no value') from exc\n"
    )
    handler = load_file(path).handler
    text = user_traceback(_raised_in_runtime(handler, {}, None))
    assert "KeyError: 'missing'" in text
    assert "The above exception was the direct cause" in text
    assert text.rstrip().endswith("RuntimeError: no value")
    assert _runtime_paths(text) == []


def test_user_traceback_of_a_zip_package_shows_its_modules_not_the_import_machinery(
    tmp_path: Path,
) -> None:
    archive = tmp_path / "function.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("shop/__init__.py", "")
        bundle.writestr("shop/prices.py", "RATE = 1 / 0\n")
        bundle.writestr(
            "shop/main.py", "from shop import prices\n\ndef handler(i, c):\n    return {}\n"
        )
    with pytest.raises(FunctionLoadError) as caught:
        load_zip(archive, HandlerRef.parse("shop.main:handler"), tmp_path / "work")
    text = user_traceback(caught.value)
    assert 'shop/main.py", line 1, in <module>' in text
    assert 'shop/prices.py", line 1, in <module>' in text
    assert text.rstrip().endswith("ZeroDivisionError: division by zero")
    assert "importlib" not in text and "<frozen" not in text
    assert _runtime_paths(text) == []


def test_user_traceback_of_a_runtime_error_hiding_a_user_context_is_empty(tmp_path: Path) -> None:
    # handler-not-found is raised `from None` over the AttributeError of the lookup, here from
    # the module's own __getattr__: the message says it all, the hidden context is not shown.
    path = tmp_path / "usermodule.py"
    path.write_text("def __getattr__(name):\n    raise AttributeError(name)\n")
    error = _raised_in_runtime(load_file, path)
    assert isinstance(error, FunctionLoadError) and error.kind == "handler-not-found"
    assert user_traceback(error) == ""


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


class Exiting(Exception):
    def __str__(self) -> str:
        raise SystemExit(1)


def test_describe_names_the_type_and_the_message() -> None:
    assert describe(ValueError("bad input")) == "ValueError: bad input"
    assert describe(KeyError("cpu")) == "KeyError: 'cpu'"


def test_describe_of_an_exception_without_message_keeps_the_type() -> None:
    assert describe(ZeroDivisionError()) == "ZeroDivisionError: "


def test_describe_survives_a_str_that_raises() -> None:
    assert describe(Unprintable()) == "Unprintable: <str() raised RuntimeError>"
    assert describe(Exiting()) == "Exiting: <str() raised SystemExit>"
