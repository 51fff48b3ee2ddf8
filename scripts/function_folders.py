"""Function folders as the local stack reads them, and the environment each function runs from.

Every folder of apps/functions/ is one function: its code (usermodule.py or function.zip) and its
function.env, the runtime's own settings (KEY=VALUE lines, # comments). A key the runtime does not
read is refused with the closest known name. Each function runs from a venv of its own kind, as
in its image: with a requirements.txt, .venv-functions/<name> (the runtime with its locked
dependencies, and the function's hash-pinned packages in a directory that a .pth file puts on
sys.path after the runtime's site-packages); without, .venv-functions/_runtime, the runtime and
its locked dependencies only, so that an import the function does not declare fails here as in
its image. Venvs are made with uv and remade when their inputs change (stamp: .installed).
"""

from __future__ import annotations

import difflib
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FUNCTIONS = REPO / "apps" / "functions"
FUNCTION_VENVS = REPO / ".venv-functions"
# Not a DNS label, so never a function's name: the venv of functions without requirements.
RUNTIME_VENV = "_runtime"
# Inside a function venv, where its own packages go (the image's /opt/function-packages).
PACKAGES_DIR = "function-packages"
PTH_FILE = "serverless-function-packages.pth"
# Per environment or per deployment, never per function: refused in function.env.
NOT_IN_FUNCTION_ENV = frozenset(
    {
        "REDIS_URL",
        "REDIS_HOST",
        "REDIS_PORT",
        "REDIS_PASSWORD",
        "REDIS_SENTINELS",
        "REDIS_SENTINEL_MASTER",
        "REDIS_SENTINEL_PASSWORD",
        "FUNCTION_PATH",
        "FUNCTION_ZIP",
        "HTTP_HOST",
        "HTTP_PORT",
    }
)
_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class FunctionFolderError(Exception):
    """A function folder that cannot run: the message names the file and what is wrong."""


@dataclass(frozen=True)
class Function:
    """One folder of apps/functions/: its code, settings and optional requirements."""

    name: str
    folder: Path
    settings: dict[str, str]

    @property
    def code(self) -> Path:
        """usermodule.py, or function.zip when the folder holds a package instead."""
        file = self.folder / "usermodule.py"
        return file if file.exists() else self.folder / "function.zip"

    @property
    def requirements(self) -> Path | None:
        path = self.folder / "requirements.txt"
        return path if path.exists() else None

    @property
    def output_key(self) -> str:
        return self.settings["REDIS_OUTPUT_KEY"]

    @property
    def input_key(self) -> str:
        return self.settings.get("REDIS_INPUT_KEY", "metrics")

    def code_env(self) -> dict[str, str]:
        """FUNCTION_PATH (or FUNCTION_ZIP) for this function's code."""
        if self.code.suffix == ".zip":
            return {"FUNCTION_ZIP": str(self.code)}
        return {"FUNCTION_PATH": str(self.code)}


class _Recording(Mapping[str, str]):
    """An environment that remembers every name it was asked for."""

    def __init__(self, values: dict[str, str]) -> None:
        self._values = values
        self.asked: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.asked.add(name)
        return self._values[name]

    def __contains__(self, name: object) -> bool:
        if isinstance(name, str):
            self.asked.add(name)
        return name in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def runtime_settings() -> frozenset[str]:
    """Every variable the runtime's settings read: the names a function.env may hold."""
    from serverless_runtime.config import Settings  # the runtime's own list, read as it reads

    environ = _Recording({"REDIS_OUTPUT_KEY": "out"})
    Settings.from_env(environ)
    return frozenset(environ.asked)


def _unknown(key: str, known: frozenset[str]) -> str:
    close = difflib.get_close_matches(key, sorted(known), n=1)
    hint = f"did you mean {close[0]}?" if close else "see apps/runtime/README.md, Settings"
    return f"{key} is not a runtime setting ({hint})"


def parse_function_env(path: Path, known: frozenset[str] | None = None) -> dict[str, str]:
    """KEY=VALUE lines; blank lines and lines starting with # are skipped; unknown keys refused."""
    known = runtime_settings() if known is None else known
    settings: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, equals, value = line.partition("=")
        key = key.strip()
        where = f"{_shown(path)}:{number}"
        if not equals or not _KEY.fullmatch(key):
            raise FunctionFolderError(f"{where}: expected KEY=VALUE, not {line!r}")
        if key in NOT_IN_FUNCTION_ENV:
            raise FunctionFolderError(
                f"{where}: {key} is set per environment or by the deployment, not in function.env"
            )
        if key not in known:
            raise FunctionFolderError(f"{where}: {_unknown(key, known)}")
        if key in settings:
            raise FunctionFolderError(f"{where}: {key} is set twice")
        settings[key] = value.strip()
    if not settings.get("REDIS_OUTPUT_KEY"):
        raise FunctionFolderError(f"{_shown(path)}: REDIS_OUTPUT_KEY is required")
    return settings


def check_settings(function: Function) -> None:
    """Refuse values the runtime would refuse at start, with its own line."""
    from serverless_runtime.config import ConfigError, Settings

    try:
        Settings.from_env({**function.settings, **function.code_env()})
    except ConfigError as exc:
        raise FunctionFolderError(f"{_shown(function.folder / 'function.env')}: {exc}") from None


def read_folder(folder: Path, known: frozenset[str]) -> Function:
    """One function folder, checked as its runtime would check it."""
    if not _NAME.fullmatch(folder.name):
        raise FunctionFolderError(
            f"{_shown(folder)}: a function's name is a DNS label: a-z, 0-9 and -, at most 40"
        )
    if not (folder / "usermodule.py").exists() and not (folder / "function.zip").exists():
        raise FunctionFolderError(f"{_shown(folder)}: neither usermodule.py nor function.zip")
    env_file = folder / "function.env"
    if not env_file.exists():
        raise FunctionFolderError(f"{_shown(env_file)}: missing (REDIS_OUTPUT_KEY is required)")
    function = Function(folder.name, folder, parse_function_env(env_file, known))
    check_settings(function)
    return function


def _folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def scan(root: Path = FUNCTIONS) -> tuple[list[Function], list[FunctionFolderError]]:
    """Every function folder under ROOT that can run, and why each other one cannot."""
    known = runtime_settings()
    functions, problems = [], []
    for folder in _folders(root):
        try:
            functions.append(read_folder(folder, known))
        except FunctionFolderError as exc:
            problems.append(exc)
    return functions, problems


def discover(root: Path = FUNCTIONS) -> list[Function]:
    """Every function folder under ROOT, by name; the first one that cannot run is raised."""
    functions, problems = scan(root)
    if problems:
        raise problems[0]
    return functions


def find(name: str, root: Path = FUNCTIONS) -> Function:
    """The function folder NAME, checked; FunctionFolderError if there is none or it is bad."""
    folder = root / name
    if not folder.is_dir() or name not in {p.name for p in _folders(root)}:
        raise FunctionFolderError(f"no function {name!r} in {_shown(root)}")
    return read_folder(folder, runtime_settings())


def _uv() -> list[str]:
    found = shutil.which("uv")
    return [found] if found else ["python3", "-m", "uv"]


def function_venv(function: Function, venvs: Path = FUNCTION_VENVS) -> Path:
    """The venv FUNCTION runs from, made (or remade when its inputs changed) with uv, by hash."""
    requirements = function.requirements
    venv = venvs / (function.name if requirements is not None else RUNTIME_VENV)
    stamp = venv / ".installed"
    inputs = [
        REPO / "requirements" / "runtime.txt",
        REPO / "apps" / "runtime" / "pyproject.toml",
        REPO / "scripts" / "function_packages.py",
        Path(__file__),
        *([requirements] if requirements is not None else []),
    ]
    if stamp.exists() and all(p.stat().st_mtime <= stamp.stat().st_mtime for p in inputs):
        return venv
    source = _shown(requirements) if requirements is not None else "requirements/runtime.txt"
    print(f"  preparing {_shown(venv)} (uv, from {source})", file=sys.stderr, flush=True)
    shutil.rmtree(venv, ignore_errors=True)
    uv = _uv()
    python = venv / "bin" / "python"
    packages = venv / PACKAGES_DIR
    steps = [
        [*uv, "venv", "--quiet", "--python", sys.executable, str(venv)],
        [*uv, "pip", "sync", "--quiet", "--python", str(python), "--require-hashes",
         str(REPO / "requirements" / "runtime.txt")],
        [*uv, "pip", "install", "--quiet", "--python", str(python), "--no-deps",
         "-e", str(REPO / "apps" / "runtime")],
    ]  # fmt: skip
    if requirements is not None:
        steps += [
            [*uv, "pip", "install", "--quiet", "--python", str(python), "--require-hashes",
             "--only-binary", ":all:", "--no-deps", "--target", str(packages),
             "-r", str(requirements)],
            [str(python), str(REPO / "scripts" / "function_packages.py"), "check", str(packages)],
        ]  # fmt: skip
    for step in steps:
        if subprocess.run(step, check=False).returncode != 0:
            raise FunctionFolderError(f"{function.name}: could not make {_shown(venv)}")
    if requirements is not None:
        # As in the image: the packages' console scripts are no part of the function.
        shutil.rmtree(packages / "bin", ignore_errors=True)
        site = subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        (Path(site) / PTH_FILE).write_text(f"{packages}\n")
    stamp.touch()
    return venv


def runtime_bin(function: Function, venvs: Path = FUNCTION_VENVS) -> Path:
    """The directory of the serverless-runtime that runs FUNCTION."""
    return function_venv(function, venvs) / "bin"


def _shown(path: Path) -> Path:
    return path.relative_to(REPO) if path.is_relative_to(REPO) else path
