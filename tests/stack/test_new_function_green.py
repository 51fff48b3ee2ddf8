"""A new function folder leaves the repository's tests green without editing them: no test
holds today's set of functions; each derives it from apps/functions/."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.support.processes import RUNTIME

pytestmark = pytest.mark.slow

# The tests that list functions, images or Redis clients: each runs in the clone.
AFFECTED = [
    "tests/manifests/test_redis_auth.py",
    "tests/manifests/test_promotion.py",
    "tests/manifests/test_function_deployments.py",
    "tests/manifests/test_network_policy.py",
    "tests/stack/test_function_folders.py",
]


def test_new_and_lock_then_the_tests_pass_unedited(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(REPO_ROOT), str(clone)], check=True)
    functions = clone / "apps" / "functions"
    for name in ("plain-fn", "packaged-fn"):
        subprocess.run([RUNTIME, "new", name, "--dir", str(functions)], check=True)
    # What `make lock` makes of a requirements.in (compiled offline here: cpu-stats' own pins,
    # already in the dev lock), then its last step, the function's image in the manifests.
    shutil.copy(functions / "cpu-stats" / "requirements.txt", functions / "packaged-fn")
    subprocess.run(
        [sys.executable, "scripts/function_images.py"], cwd=clone, check=True, capture_output=True
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow",
         *AFFECTED],
        cwd=clone, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and " failed" not in done.stdout
