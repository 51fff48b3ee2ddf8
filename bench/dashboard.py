"""6. Dashboard: the Live page's refresh callback with 1 h of history at 64 CPUs, and RSS.

The dashboard runs as its console script serves it (gunicorn, one worker). The history stream
holds one real resource-monitor output per second for the last hour (3600 entries, 64 CPUs).
Each refresh is the POST the browser sends to /_dash-update-component, carrying the state the
previous answer left in the page, and is timed from request to complete answer on loopback:
- first after start: the server reads and parses the whole hour into its cache, and imports
  what drawing figures needs; once per dashboard start, reported without a budget;
- page opened: a new page's first refresh (nothing drawn yet), on a warm server;
- refresh with new data: the runtime has written one more output since the last refresh,
  as every refresh sees at a 1 s cadence: the figures are built again.

Then the Functions page's refresh with FUNCTIONS registered functions, one of them opened: each
record names the /metrics of a real runtime probe server (serverless_runtime.ops.probes, in this
process), which the dashboard scrapes for its operations figures; the baseline is the same page
with records that name no /metrics (nothing scraped), measured in the same run. And the same page
with MANY_FUNCTIONS registered, each naming its own /metrics URL on one of those servers (a query
string tells them apart): one page of them is read and scraped; the baseline is the page with
FUNCTIONS of them.
"""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import redis
from monitoring_dashboard import ids
from serverless_runtime.ops import probes
from serverless_runtime.ops.telemetry import Telemetry
from serverless_runtime.registry import DEFAULT_FUNCTIONS_KEY, FunctionRecord

from bench import stats
from bench.env import FUNCTION_FILE, Bench, dashboard_argv
from bench.inputs import series
from bench.monitor_cost import _load
from bench.procs import Child, rss_bytes
from bench.report import Row, megabytes, seconds
from tests.support.valkey import free_port

OUTPUT_KEY = "dashboard:out"
CPUS = 64
HISTORY_SECONDS = 3600
CALLBACK_BUDGET = 0.050
RSS_BUDGET = 150e6
WARMUP = 5
FUNCTIONS = 10
# The Functions page with this many registered functions: it reads and scrapes one page of them.
MANY_FUNCTIONS = 500


def run(bench: Bench) -> list[Row]:
    """Time first loads and refreshes with new data; then read the worker's RSS."""
    client = bench.client()
    outputs = _outputs(bench, HISTORY_SECONDS + bench.size(60, 5) * 2)
    _fill_history(client, outputs[:HISTORY_SECONDS])
    spare = iter(outputs[HISTORY_SECONDS:])
    port = free_port()
    env = {
        "REDIS_URL": bench.valkey.url,
        "REDIS_OUTPUT_KEY": OUTPUT_KEY,
        "REFRESH_SECONDS": "5",
        "HISTORY_MINUTES": "60",
        "LOG_LEVEL": "warning",
    }
    argv = [*dashboard_argv(), "--bind", f"127.0.0.1:{port}"]
    first: list[float] = []
    refresh: list[float] = []
    with Child(argv, env, bench.workdir / "dashboard.log") as child:
        base = f"http://127.0.0.1:{port}"
        _wait_healthy(base, child)
        page = _Page(base)
        # The first refresh after start reads the whole hour and imports what drawing needs.
        after_start, size = page.refresh()
        for _ in range(WARMUP):
            _append(client, next(spare))
            page.refresh()
        for _ in range(bench.size(10, 2)):
            page.reset()  # a newly opened page: nothing drawn yet
            first.append(page.refresh()[0])
        for _ in range(bench.size(60, 5)):
            _append(client, next(spare))
            refresh.append(page.refresh()[0])
        plain, scraped, many = _functions_page(bench, client, base)
        worker = _worker_pid(child.pid)
        rss_value = rss_bytes(worker) if worker else child.rss_bytes()
    client.close()
    return [
        Row(
            "dashboard callback, first after start",
            "1",
            seconds(after_start),
            f"{size / 1e3:.0f} kB answer",
            None,
            "— (once per start)",
            None,
        ),
        Row(
            "dashboard callback, page opened, 1 h x 64 CPUs",
            f"{len(first)}",
            f"{seconds(stats.median(first))} (p99 {seconds(stats.p99(first))})",
            "—",
            None,
            f"≤ {seconds(CALLBACK_BUDGET)}",
            stats.median(first) <= CALLBACK_BUDGET,
        ),
        Row(
            "dashboard callback, refresh with new data",
            f"{len(refresh)}",
            f"{seconds(stats.median(refresh))} (p99 {seconds(stats.p99(refresh))})",
            "—",
            None,
            f"≤ {seconds(CALLBACK_BUDGET)}",
            stats.median(refresh) <= CALLBACK_BUDGET,
        ),
        Row(
            f"dashboard Functions page, {FUNCTIONS} functions' /metrics",
            f"{len(scraped)}",
            f"{seconds(stats.median(scraped))} (p99 {seconds(stats.p99(scraped))})",
            f"{seconds(stats.median(plain))} without /metrics",
            stats.median(scraped) / stats.median(plain),
            f"≤ {seconds(CALLBACK_BUDGET)}",
            stats.median(scraped) <= CALLBACK_BUDGET,
        ),
        Row(
            f"dashboard Functions page, {MANY_FUNCTIONS} registered functions",
            f"{len(many)}",
            f"{seconds(stats.median(many))} (p99 {seconds(stats.p99(many))})",
            f"{seconds(stats.median(scraped))} with {FUNCTIONS}",
            stats.median(many) / stats.median(scraped),
            f"≤ {seconds(CALLBACK_BUDGET)}",
            stats.median(many) <= CALLBACK_BUDGET,
        ),
        Row(
            "dashboard steady RSS (gunicorn worker)",
            "1",
            megabytes(rss_value),
            "—",
            None,
            f"≤ {megabytes(RSS_BUDGET)}",
            rss_value <= RSS_BUDGET,
        ),
    ]


def _functions_page(
    bench: Bench, client: redis.Redis, base: str
) -> tuple[list[float], list[float], list[float]]:
    """Functions page refreshes: records without a /metrics URL, then with live ones, then
    MANY_FUNCTIONS records with live ones."""
    servers = []
    for index in range(FUNCTIONS):
        telemetry = Telemetry(stale_after=60)
        for call in range(100 + index):
            telemetry.invoked("success" if call % 10 else "handler-error", 0.002 * (call % 7), 0.5)
        telemetry.reloaded(ok=True)
        telemetry.function_loaded = True
        servers.append(probes.start("127.0.0.1", 0, telemetry, lambda: True))
    try:
        timings = []
        for named in (False, True):
            pipe = client.pipeline(transaction=False)
            for index, server in enumerate(servers):
                url = f"http://127.0.0.1:{server.port}/metrics" if named else ""
                record = FunctionRecord(f"fn-{index}", "metrics", metrics=url)
                pipe.hset(DEFAULT_FUNCTIONS_KEY, record.output, record.to_json())
            pipe.execute()
            page = _Page(base, ids.FUNCTIONS_REFRESH, {(ids.FUNCTIONS_SELECTED, "data"): "fn-0"})
            for _ in range(WARMUP):
                page.refresh()
            runs = []
            for _ in range(bench.size(15, 2)):
                # Past the scraper's minimum interval: every refresh scrapes every function again.
                time.sleep(2.05)
                runs.append(page.refresh()[0])
            timings.append(runs)
        return timings[0], timings[1], _many_functions(bench, client, base, servers)
    finally:
        for server in servers:
            server.close()
        client.delete(DEFAULT_FUNCTIONS_KEY)


def _many_functions(
    bench: Bench, client: redis.Redis, base: str, servers: list[Any]
) -> list[float]:
    """Functions page refreshes with MANY_FUNCTIONS records, each naming a distinct live URL."""
    client.delete(DEFAULT_FUNCTIONS_KEY)
    pipe = client.pipeline(transaction=False)
    for index in range(MANY_FUNCTIONS):
        output = f"fn-{index:03d}"
        server = servers[index % len(servers)]
        url = f"http://127.0.0.1:{server.port}/metrics?function={output}"
        record = FunctionRecord(output, "metrics", metrics=url)
        pipe.hset(DEFAULT_FUNCTIONS_KEY, record.output, record.to_json())
    pipe.execute()
    page = _Page(base, ids.FUNCTIONS_REFRESH, {(ids.FUNCTIONS_SELECTED, "data"): "fn-000"})
    for _ in range(WARMUP):
        page.refresh()
    runs = []
    for _ in range(bench.size(15, 2)):
        time.sleep(2.05)
        runs.append(page.refresh()[0])
    return runs


def _outputs(bench: Bench, count: int) -> list[str]:
    """Real resource-monitor outputs for one snapshot a second."""
    handler = _load(bench.function_copy(FUNCTION_FILE)).handler
    start = datetime.now() - timedelta(seconds=HISTORY_SECONDS)
    context = SimpleNamespace(env={})
    inputs = series(start, 1.0, count, CPUS, bench.rng)
    return [json.dumps(handler(value, context)) for value in inputs]


def _fill_history(client: redis.Redis, outputs: list[str]) -> None:
    """One history entry a second for the last hour, stream IDs as the runtime writes them."""
    now_ms = int(time.time() * 1000)
    pipe = client.pipeline(transaction=False)
    for index, output in enumerate(outputs):
        entry_ms = now_ms - (len(outputs) - index) * 1000
        pipe.xadd(f"{OUTPUT_KEY}:history", {"output": output}, id=f"{entry_ms}-0")
    pipe.set(OUTPUT_KEY, outputs[-1])
    pipe.execute()


def _append(client: redis.Redis, output: str) -> None:
    pipe = client.pipeline(transaction=False)
    pipe.set(OUTPUT_KEY, output)
    pipe.xadd(f"{OUTPUT_KEY}:history", {"output": output})
    pipe.execute()


def _wait_healthy(base: str, child: Child, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        child.check()
        if time.monotonic() > deadline:
            raise RuntimeError(f"dashboard not healthy within {timeout}s")
        time.sleep(0.1)


class _Page:
    """What the browser does for the Live page's refresh: POST the callback with its state."""

    def __init__(
        self,
        base: str,
        trigger_id: str = ids.REFRESH,
        preset: dict[tuple[str, str], Any] | None = None,
    ) -> None:
        self.url = base + "/_dash-update-component"
        with urllib.request.urlopen(base + "/_dash-dependencies", timeout=30) as reply:
            dependencies = json.load(reply)
        self.trigger_id = trigger_id
        self.preset = dict(preset or {})
        trigger = {"id": trigger_id, "property": "n_intervals"}
        matches = [dep for dep in dependencies if trigger in dep["inputs"]]
        if len(matches) != 1:
            raise RuntimeError(f"expected one callback on {trigger}, found {len(matches)}")
        self.callback = matches[0]
        self.outputs = [_target(part) for part in _split_outputs(self.callback["output"])]
        self.reset()

    def reset(self) -> None:
        """A newly opened page: no state yet."""
        self.state: dict[tuple[str, str], Any] = dict(self.preset)
        self.ticks = 0

    def refresh(self) -> tuple[float, int]:
        """Send one refresh; seconds until the whole answer arrived, and its size."""
        self.ticks += 1
        body = {
            "output": self.callback["output"],
            "outputs": self.outputs,
            "inputs": [{"id": self.trigger_id, "property": "n_intervals", "value": self.ticks}],
            "state": [
                {**dep, "value": self.state.get((dep["id"], dep["property"]))}
                for dep in self.callback["state"]
            ],
            "changedPropIds": [f"{self.trigger_id}.n_intervals"],
        }
        request = urllib.request.Request(
            self.url,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=60) as reply:
            raw = reply.read()
        elapsed = time.perf_counter() - started
        answer = json.loads(raw)
        for component, props in answer.get("response", {}).items():
            for prop, value in props.items():
                self.state[(component, prop)] = value
        return elapsed, len(raw)


def _split_outputs(output: str) -> list[str]:
    """Dash's multi-output id `..a.children...b.figure..` as `a.children`, `b.figure`."""
    if output.startswith("..") and output.endswith(".."):
        return output[2:-2].split("...")
    return [output]


def _target(part: str) -> dict[str, str]:
    component, _, prop = part.rpartition(".")
    return {"id": component, "property": prop}


def _worker_pid(master: int) -> int | None:
    """gunicorn's (only) worker: the master's child process."""
    children = Path(f"/proc/{master}/task/{master}/children")
    try:
        pids = children.read_text().split()
    except OSError:
        return None
    return int(pids[0]) if pids else None
