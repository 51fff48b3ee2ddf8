"""NEW_REQUERIMENTS, the course runtime's variable: packages pip installs at start, as its image
did, into a writable directory (an emptyDir: the root filesystem is read-only) that goes LAST on
sys.path, so that nothing installed this way replaces a package the runtime imports."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from serverless_runtime.failures import FailureKind
from serverless_runtime.function.loader import FunctionLoadError

log = logging.getLogger(__name__)

# Where the runtime image ships pip, outside its venv (apps/runtime/Dockerfile).
BUNDLED_PIP = Path("/opt/pip")
DIR_NAME = "new-requirements"  # the default install directory, under the temporary directory
_TAIL_LINES = 12
_LINE_CHARS = 300
_SLICE = 0.25  # how often a stop request is looked for while pip runs


class RequirementsFailed(FunctionLoadError):
    def __init__(self, message: str) -> None:
        super().__init__(FailureKind.REQUIREMENTS_FAILED, message)


@dataclass(frozen=True, slots=True)
class Requirements:
    """What to install (requirement specifiers, as pip takes them), where, and for how long."""

    specifiers: tuple[str, ...]
    target: Path
    timeout: float
    pip_dir: Path = BUNDLED_PIP


def pip_command(pip_dir: Path) -> tuple[list[str], dict[str, str]] | None:
    """How to run pip: this interpreter's own, else the one shipped in pip_dir; None if neither."""
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"], {}
    if (pip_dir / "pip" / "__init__.py").is_file():
        return [sys.executable, "-m", "pip"], {"PYTHONPATH": str(pip_dir)}
    return None


def install(requirements: Requirements, stop: threading.Event) -> bool:
    """Install the packages and append their directory to sys.path; False if a stop came first.
    Raises RequirementsFailed with pip's last lines when pip fails, is missing or runs too long."""
    wanted = " ".join(requirements.specifiers)
    target = requirements.target
    log.warning(
        "NEW_REQUERIMENTS=%r: installing with pip into %s before loading the function. This is "
        "the course-compatibility path: start-up waits for the download and needs the package "
        "index reachable; a requirements.txt next to the function, built into a function image, "
        "starts at once",
        wanted,
        target,
    )
    command = pip_command(requirements.pip_dir)
    if command is None:
        raise RequirementsFailed(
            f"NEW_REQUERIMENTS={wanted!r}: pip is not available (neither importable by the "
            f"runtime's Python nor shipped in {requirements.pip_dir}); install it into the "
            "runtime's environment, or use a requirements.txt and a function image"
        )
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RequirementsFailed(
            f"NEW_REQUERIMENTS={wanted!r}: cannot create the install directory {target} "
            f"({exc.strerror or exc}); mount a writable emptyDir there or at the temporary "
            "directory (NEW_REQUERIMENTS_DIR chooses the place)"
        ) from exc
    argv, extra_env = command
    # --no-cache-dir: HOME is not writable in a pod; the emptyDir is the only cache.
    argv += ["install", "--target", str(target), "--no-cache-dir", "--disable-pip-version-check"]
    argv += ["--no-input", "--progress-bar", "off", *requirements.specifiers]
    started = time.monotonic()
    code, output = _run(argv, {**os.environ, **extra_env}, requirements.timeout, stop)
    if code is None and stop.is_set():
        return False
    if code is None:
        raise RequirementsFailed(
            f"NEW_REQUERIMENTS={wanted!r}: pip did not finish within "
            f"NEW_REQUERIMENTS_TIMEOUT={requirements.timeout:g}s and was stopped; "
            f"pip's last lines:\n{_tail(output)}"
        )
    if code != 0:
        raise RequirementsFailed(
            f"NEW_REQUERIMENTS={wanted!r}: pip install failed (exit code {code}); "
            f"pip's last lines:\n{_tail(output)}"
        )
    if str(target) not in sys.path:
        sys.path.append(str(target))  # after the runtime's own packages: they always win
    importlib.invalidate_caches()
    log.info(
        "NEW_REQUERIMENTS installed in %.1f s: %s", time.monotonic() - started, _tail(output, 1)
    )
    return True


def _run(
    argv: list[str], env: dict[str, str], timeout: float, stop: threading.Event
) -> tuple[int | None, str]:
    """pip's exit code and output; None as the code when it was stopped (timeout or stop)."""
    deadline = time.monotonic() + timeout
    proc = subprocess.Popen(
        argv,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    while True:
        remaining = deadline - time.monotonic()
        try:
            # communicate() may be called again after a timeout without losing output.
            output, _ = proc.communicate(timeout=max(0.0, min(_SLICE, remaining)))
            return proc.returncode, output
        except subprocess.TimeoutExpired:
            if remaining > _SLICE and not stop.is_set():
                continue
        proc.kill()
        output, _ = proc.communicate()
        return None, output


def _tail(output: str, count: int = _TAIL_LINES) -> str:
    lines = [line.rstrip()[:_LINE_CHARS] for line in output.splitlines() if line.strip()]
    return "\n".join(lines[-count:]) if lines else "(no output)"
