"""Each e2e test's pytest timeout is above the sum of its waits: when a cluster is slow, the test
fails with wait_until's message, never with a timeout that hides what it was waiting for."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.e2e.conftest import E2E_TEST_TIMEOUT

HERE = Path(__file__).parent
CLUSTER_TESTS = ("test_gitops.py", "test_boundary.py", "test_promotion_on_kind.py")


def marker_timeout(function: ast.FunctionDef) -> float | None:
    for decorator in function.decorator_list:
        if (
            isinstance(decorator, ast.Call)
            and ast.unparse(decorator.func) == "pytest.mark.timeout"
            and isinstance(decorator.args[0], ast.Constant)
            and isinstance(decorator.args[0].value, int | float)
        ):
            return float(decorator.args[0].value)
    return None


def waits(node: ast.AST) -> list[float]:
    """The timeout of every wait_until call under node; each must be a literal."""
    found = []
    for call in ast.walk(node):
        if isinstance(call, ast.Call) and ast.unparse(call.func) == "wait_until":
            timeout = next((k.value for k in call.keywords if k.arg == "timeout"), None)
            assert isinstance(timeout, ast.Constant), ast.unparse(call)
            assert isinstance(timeout.value, int | float), ast.unparse(call)
            found.append(float(timeout.value))
    return found


def fixture_waits(function: ast.FunctionDef, helpers: dict[str, ast.FunctionDef]) -> list[float]:
    """Waits of the fixtures a function uses, and of theirs: they run before it starts."""
    return [
        w
        for arg in function.args.args
        if arg.arg in helpers
        for w in waits(helpers[arg.arg]) + fixture_waits(helpers[arg.arg], helpers)
    ]


def cluster_tests() -> list[tuple[str, ast.FunctionDef, list[float]]]:
    result = []
    for name in CLUSTER_TESTS:
        tree = ast.parse((HERE / name).read_text())
        functions = [f for f in tree.body if isinstance(f, ast.FunctionDef)]
        helpers = {f.name: f for f in functions if not f.name.startswith("test_")}
        for function in functions:
            if function.name.startswith("test_"):
                total = waits(function) + fixture_waits(function, helpers)
                result.append((f"{name}::{function.name}", function, total))
    return result


@pytest.mark.parametrize(
    ("test", "function", "total"),
    [(name, f, sum(w)) for name, f, w in cluster_tests()],
    ids=[name for name, _, _ in cluster_tests()],
)
def test_timeouts_exceed_the_waits(test: str, function: ast.FunctionDef, total: float) -> None:
    limit = marker_timeout(function) or E2E_TEST_TIMEOUT
    assert total < limit, f"{test}: waits add up to {total:.0f}s, pytest stops it at {limit:.0f}s"


def test_timeouts_default_is_above_pytest_default() -> None:
    import tomllib

    pyproject = tomllib.loads((HERE.parents[1] / "pyproject.toml").read_text())
    assert pyproject["tool"]["pytest"]["ini_options"]["timeout"] < E2E_TEST_TIMEOUT


def test_timeouts_check_sees_waits_that_add_up() -> None:
    source = """
@pytest.mark.timeout(400)
def test_x():
    wait_until(f, timeout=300, what="a")
    wait_until(f, timeout=200, what="b")
"""
    (function,) = ast.parse(source).body
    assert isinstance(function, ast.FunctionDef)
    assert sum(waits(function)) == 500 > (marker_timeout(function) or 0)
