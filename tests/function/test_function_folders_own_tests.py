"""Every function folder's own test_usermodule.py passes, each in a pytest process of its own.

Not collected with the rest: pytest's default import mode would put each function's folder first
on sys.path for the whole session (so a later `import usermodule`, such as a zip package's, would
find that file), and two folders' test_usermodule.py would clash by module name.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
FOLDERS = sorted(
    path.parent for path in (REPO_ROOT / "apps" / "functions").glob("*/test_usermodule.py")
)


@pytest.mark.parametrize("folder", FOLDERS, ids=[folder.name for folder in FOLDERS])
def test_function_folder_passes_its_own_test(folder: Path) -> None:
    # The dev venv holds every function's requirements (the dev lock includes them).
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(folder), "-q", "-p", "no:cacheprovider"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout


def test_the_example_with_dependencies_has_its_own_test() -> None:
    assert "cpu-stats" in [folder.name for folder in FOLDERS]
