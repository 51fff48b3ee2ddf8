"""The runtime package's import graph: no cycle, and the arrows point down (see HOUSE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import serverless_runtime

PACKAGE = Path(serverless_runtime.__file__).parent


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph() -> dict[str, set[str]]:
    """module -> the package's modules it imports (at run time or for typing alone)."""
    modules = {_module(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module)
                imported.update(f"{node.module}.{alias.name}" for alias in node.names)
        graph[name] = {target for target in imported if target in modules and target != name}
    return graph


GRAPH = _graph()


def test_the_graph_is_read() -> None:
    assert "serverless_runtime.config" in GRAPH["serverless_runtime.loop"]
    assert "serverless_runtime.storage.keys" in GRAPH["serverless_runtime.config"]


def test_no_import_cycle() -> None:
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            cycle = [*path[path.index(name) :], name]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        if name in done:
            return
        for target in sorted(GRAPH[name]):
            visit(target, [*path, name])
        done.add(name)

    for name in sorted(GRAPH):
        visit(name, [])


def test_config_does_not_import_the_registry() -> None:
    # The registry names Settings for typing only; config.py never reaches back.
    assert "serverless_runtime.registry" not in GRAPH["serverless_runtime.config"]


def test_only_the_entry_points_import_the_loop() -> None:
    importers = {name for name, targets in GRAPH.items() if "serverless_runtime.loop" in targets}
    assert importers <= {"serverless_runtime.cli"}


def test_nothing_below_the_loop_imports_the_triggers_table_users() -> None:
    """state/ never calls back into the loop or the triggers: it is handed what it needs."""
    state = [name for name in GRAPH if name.startswith("serverless_runtime.state")]
    for name in state:
        assert not {
            target
            for target in GRAPH[name]
            if target.startswith(("serverless_runtime.triggers", "serverless_runtime.loop"))
        }, name


def test_storage_does_not_import_config() -> None:
    storage = [name for name in GRAPH if name.startswith("serverless_runtime.storage")]
    assert all("serverless_runtime.config" not in GRAPH[name] for name in storage)
