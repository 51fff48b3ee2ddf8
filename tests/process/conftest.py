"""Fixtures shared by the runtime's process tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import RUNTIME, Process


@pytest.fixture
def start(tmp_path: Path) -> Iterator[object]:
    """Start a runtime process with an environment; every one started is closed at the end.

    test_fault_matrix.py has a `start` of its own that also writes the function file.
    """
    started: list[Process] = []

    def _start(env: dict[str, str], name: str = "runtime") -> Process:
        proc = Process([RUNTIME], env, tmp_path / f"{name}.log")
        started.append(proc)
        return proc

    yield _start
    for proc in started:
        proc.close()
