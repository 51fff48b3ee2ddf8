"""Fixtures for the function suites: the function loaded as the runtime loads it, and a context."""

from __future__ import annotations

import importlib.util
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

FUNCTION_FILE = (
    Path(__file__).resolve().parents[2]
    / "apps"
    / "functions"
    / "resource-monitor"
    / "usermodule.py"
)


def load_function(path: Path = FUNCTION_FILE) -> ModuleType:
    """Import a function file by path, as a fresh module (it is not part of a package)."""
    spec = importlib.util.spec_from_file_location("usermodule", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class CourseContext:
    """The attributes the course runtime gives a function's context."""

    def __init__(self) -> None:
        self.host = "localhost"
        self.port = 6379
        self.input_key = "metrics"
        self.output_key = "resource-monitor"
        self.function_getmtime = "2026-11-27 23:00:00"
        self.last_execution: datetime | None = None
        self.env: dict[str, Any] = {}


@pytest.fixture(scope="module")
def usermodule() -> ModuleType:
    """The resource-monitor function module."""
    return load_function()


@pytest.fixture
def context() -> CourseContext:
    """A fresh context with an empty env."""
    return CourseContext()
