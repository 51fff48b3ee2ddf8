"""`make bench` in quick mode runs every benchmark and prints every row (timings not judged)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

# One line per row, as a reader of the table looks for it.
EXPECTED_ROWS = [
    "latency p50, notify vs course polling",
    "latency p99, notify vs course polling",
    "latency p50, notify vs bare notify loop, trivial",
    "latency p99, notify vs bare notify loop, trivial",
    "per-call overhead, trivial, HTTP_PORT=0",
    "per-call overhead, trivial, HTTP on + 10 scrapes/s",
    "per-call step, HANDLER_TIMEOUT=30 (SIGALRM + C timer)",
    "per-call time, COMMIT_REPLICAS=1 (one local replica)",
    *(
        f"per-call overhead, resource-monitor, {size}"
        for size in ("2 CPUs x 12", "64 CPUs x 60", "64 CPUs x 600")
    ),
    "state overhead flatness, 64 CPUs x 600 vs 2 CPUs x 12",
    *(
        f"bytes sent to Redis per call, {size}"
        for size in ("2 CPUs x 12", "64 CPUs x 60", "64 CPUs x 600")
    ),
    # Quick mode replays shorter journals (0, 10, 30 entries) than the full run.
    *(f"recovery, 64 CPUs x 60, snapshot + {n} entries" for n in (0, 10, 30)),
    "replay per journal entry, 64 CPUs x 60",
    "takeover after SIGTERM (lease released)",
    "takeover after SIGKILL (lease lapsed)",
    "takeover: inputs lost / processed twice",
    "stream throughput, 1 consumer",
    "stream throughput, 2 consumers",
    "cold start, exec → 1st output, runtime, HTTP_PORT=0",
    "cold start, exec → 1st output, runtime, HTTP on",
    "steady RSS, runtime, HTTP_PORT=0",
    "steady RSS, runtime, HTTP on",
    *(
        f"resource-monitor, {cpus} CPUs, {window}-sample window"
        for cpus in (2, 8, 64)
        for window in (12, 60, 600)
    ),
    "resource-monitor flatness, 64 CPUs, 600 vs 12",
    "old per-call state write, json.dumps, 64 CPUs, 60 samples",
    "old per-call state write, json.dumps, 64 CPUs, 600 samples",
    "dashboard callback, first after start",
    "dashboard callback, page opened, 1 h x 64 CPUs",
    "dashboard callback, refresh with new data",
    "dashboard Functions page, 10 functions' /metrics",
    "dashboard Functions page, 500 registered functions",
    "dashboard steady RSS (gunicorn worker)",
    # Quick mode steps N through 1 and 3 only, on the one server and on a 3-master cluster.
    *(
        row
        for where in ("one server", "3-master cluster")
        for row in (
            *(
                f"idle per function, N={n}, {where}: {what}"
                for n in (1, 3)
                for what in ("commands/s", "bytes/s in + out")
            ),
            *(f"input→output p99, {c} s cadence, N={n}, {where}" for c in (1, 5) for n in (1, 3)),
            *(f"functions per server core, {c} s cadence, {where}" for c in (1, 5)),
            *(f"largest N before p99 doubles, {c} s cadence, {where}" for c in (1, 5)),
        )
    ),
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("make") is None, reason="`make` is not installed"),
]


def _run_bench(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BENCH_QUICK": "1", "BENCH_ARGS": " ".join(args)}
    return subprocess.run(
        ["make", "--no-print-directory", "bench"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,  # a hang guard: quick mode takes about 3 minutes (scale on two targets)
        check=False,
    )


def test_bench_quick_prints_every_row() -> None:
    result = _run_bench()
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    for name in EXPECTED_ROWS:
        rows = [line for line in lines if line.startswith(name + "  ")]
        assert len(rows) == 1, f"row {name!r} missing or repeated in:\n{result.stdout}"
        # Every row ends with its verdict: yes, NO, or — where no budget applies.
        assert re.search(r"\s(yes|NO|—)$", rows[0]), rows[0]
    assert "quick mode" in result.stdout
