"""The docs' tables name exactly what the code has: settings, and modules in the module map."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from monitoring_dashboard.settings import ENV_VARS as DASHBOARD_VARS
from serverless_runtime.config import ENV_VARS as RUNTIME_VARS

ROOT = Path(__file__).resolve().parents[2]
_ROW_NAME = re.compile(r"^\| `([A-Z][A-Z0-9_]*)` \|", re.M)


def _section(path: Path, heading: str) -> str:
    text = path.read_text()
    start = text.index(f"\n{heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


@pytest.mark.parametrize(
    ("readme", "names"),
    [("apps/runtime/README.md", RUNTIME_VARS), ("apps/dashboard/README.md", DASHBOARD_VARS)],
)
def test_settings_table_lists_every_variable_read(readme: str, names: frozenset[str]) -> None:
    listed = _ROW_NAME.findall(_section(ROOT / readme, "## Settings"))
    assert len(listed) == len(set(listed)), f"{readme}: a variable listed twice"
    assert set(listed) == set(names), (
        f"{readme}: missing {sorted(set(names) - set(listed))}, "
        f"not read {sorted(set(listed) - set(names))}"
    )


@pytest.mark.parametrize(
    ("heading", "package"),
    [
        (
            "## Runtime — `apps/runtime/src/serverless_runtime/`",
            "apps/runtime/src/serverless_runtime",
        ),
        (
            "## Dashboard — `apps/dashboard/src/monitoring_dashboard/`",
            "apps/dashboard/src/monitoring_dashboard",
        ),
    ],
)
def test_module_map_names_every_module_and_only_those(heading: str, package: str) -> None:
    root = ROOT / package
    modules = {
        path.relative_to(root).as_posix()
        for path in root.rglob("*.py")
        if path.name not in {"__init__.py", "__main__.py"}
    }
    named: set[str] = set()
    for cell in re.findall(r"^\| ([^|]+) \|", _section(ROOT / "ARCHITECTURE.md", heading), re.M):
        named.update(re.findall(r"`([\w/]+\.py)`", cell))
    assert modules - named == set(), "modules the map does not name"
    assert {name for name in named if not (root / name).is_file()} == set(), (
        "the map names modules that do not exist"
    )
