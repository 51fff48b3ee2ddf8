"""The tests mirror the runtime: each module has tests/unit/<folder>/test_<module>.py (top-level
modules tests/unit/test_<module>.py), and no test file name repeats anywhere under tests/."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
UNIT = TESTS / "unit"
PACKAGE = TESTS.parent / "apps" / "runtime" / "src" / "serverless_runtime"

# Modules with nothing of their own to test: package markers and `python -m serverless_runtime`.
NOT_MIRRORED = {"__init__.py", "__main__.py"}


def mirror_of(module: Path) -> Path:
    relative = module.relative_to(PACKAGE)
    return UNIT / relative.parent / f"test_{relative.name}"


def test_every_runtime_module_has_its_unit_test_file() -> None:
    modules = sorted(p for p in PACKAGE.rglob("*.py") if p.name not in NOT_MIRRORED)
    assert modules, f"no runtime modules found under {PACKAGE}"
    missing = [
        f"{m.relative_to(PACKAGE)} -> {mirror_of(m).relative_to(TESTS.parent)}"
        for m in modules
        if not mirror_of(m).is_file()
    ]
    assert not missing, "runtime modules without their unit test file:\n" + "\n".join(missing)


def test_no_test_file_name_repeats_under_tests() -> None:
    by_name: defaultdict[str, list[str]] = defaultdict(list)
    for path in sorted(TESTS.rglob("test_*.py")):
        by_name[path.name].append(str(path.relative_to(TESTS.parent)))
    repeated = [f"{name}: {', '.join(paths)}" for name, paths in by_name.items() if len(paths) > 1]
    assert not repeated, "test file names used more than once:\n" + "\n".join(repeated)
