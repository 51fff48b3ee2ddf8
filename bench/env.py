"""What every benchmark gets: the Valkey server, sizes for the mode, paths and a seeded RNG."""

from __future__ import annotations

import random
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import redis

from tests.support.valkey import ValkeyProcess

REPO_ROOT = Path(__file__).resolve().parent.parent
FUNCTION_FILE = REPO_ROOT / "apps" / "functions" / "resource-monitor" / "usermodule.py"
TRIVIAL_FILE = Path(__file__).resolve().parent / "functions" / "trivial.py"
BASELINES = Path(__file__).resolve().parent / "baselines"


@dataclass
class Bench:
    """One run's shared setup; `size` picks the full or the quick count."""

    quick: bool
    valkey: ValkeyProcess
    workdir: Path
    rng: random.Random

    def size(self, full: int, quick: int) -> int:
        """The number of repetitions for this mode."""
        return quick if self.quick else full

    def client(self) -> redis.Redis:
        """A bytes client on the benchmark server."""
        return redis.Redis(port=self.valkey.port, socket_timeout=30)

    def reset(self) -> None:
        """Empty the server and switch keyspace events off between benchmarks."""
        client = self.client()
        try:
            client.flushall()
            client.config_set("notify-keyspace-events", "")
        finally:
            client.close()

    def valkey_version(self) -> str:
        """The server's name and version, as INFO reports them."""
        client = self.client()
        try:
            info = client.info("server")
        finally:
            client.close()
        return f"Valkey {info.get('valkey_version') or info.get('redis_version')}"

    def function_copy(self, source: Path) -> Path:
        """A private copy of a function file, so no bytecode cache lands in the repository."""
        folder = self.workdir / "functions" / source.stem
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / "usermodule.py"
        shutil.copyfile(source, target)
        return target


def runtime_argv() -> list[str]:
    """How the runtime is started: the installed console script, as the container does."""
    script = Path(sys.executable).parent / "serverless-runtime"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "serverless_runtime"]


def dashboard_argv() -> list[str]:
    """The dashboard's console script."""
    script = Path(sys.executable).parent / "monitoring-dashboard"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "monitoring_dashboard"]
