"""Collect every function folder's own test (`<name>/test_usermodule.py`) under a unique name.

Each folder holds a module called test_usermodule.py and none is a package, so pytest's default
import would take the second for the first; here each is imported from its path as
`functions.<name>.test_usermodule`, which also lets `make test` run the folders pytest finds
without an index.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest


class FunctionTestModule(pytest.Module):
    """A function's test file, imported from its path under a name of its own."""

    def _getobj(self) -> ModuleType:
        name = f"functions.{self.path.parent.name.replace('-', '_')}.{self.path.stem}"
        spec = importlib.util.spec_from_file_location(name, self.path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {self.path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module


def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> pytest.Module:
    """Every test module under apps/functions is a function's own test."""
    return FunctionTestModule.from_parent(parent, path=module_path)
