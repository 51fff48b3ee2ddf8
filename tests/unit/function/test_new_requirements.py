"""NEW_REQUERIMENTS: pip installs them (offline here: a local wheel directory, no index) into
their own directory, which goes after the runtime's packages on sys.path; failures are clear."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import threading
from pathlib import Path

import pytest
from serverless_runtime.function.new_requirements import Requirements, RequirementsFailed, install

from tests.support.wheels import build_wheel, bundled_pip

EXTRA = {
    "courseextra.py": "VALUE = 'from the course extra'\n",
    # A module named as one the runtime uses: it must never replace the runtime's own.
    "orjson.py": "FAKE = True\n",
}


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A wheel directory that pip installs from, without any index; returns the pip directory."""
    wheels = tmp_path / "wheels"
    build_wheel(wheels, "courseextra", "1.0", EXTRA)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    monkeypatch.setattr(sys, "path", list(sys.path))
    return bundled_pip(tmp_path / "pip")


def test_install_puts_the_packages_after_the_runtimes_own(offline: Path, tmp_path: Path) -> None:
    target = tmp_path / "installed"
    requirements = Requirements(("courseextra==1.0",), target, 120.0, offline)
    assert install(requirements, threading.Event()) is True
    assert (target / "courseextra.py").is_file()
    assert sys.path[-1] == str(target)
    spec = importlib.util.find_spec("courseextra")
    assert spec is not None and spec.origin == str(target / "courseextra.py")
    # The path's first orjson is still the runtime's, not the one the package carried.
    found = importlib.machinery.PathFinder.find_spec("orjson", sys.path)
    assert found is not None and found.origin is not None
    assert not Path(found.origin).is_relative_to(target)


def test_install_unknown_package_fails_with_pips_last_lines(offline: Path, tmp_path: Path) -> None:
    requirements = Requirements(("no-such-package-xyz",), tmp_path / "installed", 120.0, offline)
    path_before = list(sys.path)
    with pytest.raises(RequirementsFailed) as caught:
        install(requirements, threading.Event())
    assert caught.value.kind == "requirements-failed"
    message = str(caught.value)
    assert message.startswith("NEW_REQUERIMENTS='no-such-package-xyz': pip install failed")
    assert "No matching distribution found for no-such-package-xyz" in message
    assert sys.path == path_before


def test_install_without_pip_says_so(tmp_path: Path) -> None:
    if importlib.util.find_spec("pip") is not None:
        pytest.skip("this environment has pip of its own")
    requirements = Requirements(("numpy",), tmp_path / "installed", 60.0, tmp_path / "no-pip")
    with pytest.raises(RequirementsFailed, match=r"pip is not available .*/no-pip\)"):
        install(requirements, threading.Event())


def test_install_into_an_unwritable_place_says_where(offline: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    requirements = Requirements(("courseextra",), blocker / "installed", 60.0, offline)
    with pytest.raises(RequirementsFailed, match="cannot create the install directory"):
        install(requirements, threading.Event())


def test_install_stops_when_asked(offline: Path, tmp_path: Path) -> None:
    stop = threading.Event()
    stop.set()
    requirements = Requirements(("courseextra",), tmp_path / "installed", 60.0, offline)
    assert install(requirements, stop) is False
    assert str(tmp_path / "installed") not in sys.path


def test_install_past_its_timeout_is_stopped(offline: Path, tmp_path: Path) -> None:
    # A hundredth of a second: pip cannot even start in that time.
    requirements = Requirements(("courseextra",), tmp_path / "installed", 0.01, offline)
    with pytest.raises(RequirementsFailed, match="did not finish within NEW_REQUERIMENTS_TIMEOUT"):
        install(requirements, threading.Event())
    assert str(tmp_path / "installed") not in sys.path
