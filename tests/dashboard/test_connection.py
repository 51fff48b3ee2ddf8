"""The dashboard reaches Redis through Sentinel: it reads the master the sentinel names, also after
a failover, from real servers (a master, its replica and one sentinel)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from monitoring_dashboard.connection import connect
from monitoring_dashboard.redis_reads import RedisReader
from monitoring_dashboard.settings import Settings
from monitoring_dashboard.snapshots import ReadError

from tests.dashboard.runtime_writes import resource_output, write_output
from tests.dashboard.server import clean_environ, dashboard_command
from tests.support.processes import wait_for
from tests.support.sentinel import MASTER_NAME, Topology, topology

KEY = "resource-monitor"
PASSWORD = "data-s3cret"
SENTINEL_PASSWORD = "sentinel-s3cret"
pytestmark = pytest.mark.slow


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Topology]:
    with topology(tmp_path, PASSWORD, SENTINEL_PASSWORD) as started:
        yield started


def egress(reader: RedisReader) -> float | None:
    try:
        output = reader.read().output
    except ReadError:  # the old master is gone and the new one not yet named: the page retries
        return None
    return None if output is None else float(output["percent-network-egress"])


def test_dashboard_reads_the_master_the_sentinel_names(servers: Topology) -> None:
    settings = Settings.from_env(
        {
            "REDIS_OUTPUT_KEY": KEY,
            "REDIS_HOST": "unused.invalid",  # the sentinels say where the master is
            "REDIS_SENTINELS": f"127.0.0.1:{servers.sentinel.port}",
            "REDIS_SENTINEL_MASTER": MASTER_NAME,
            "REDIS_SENTINEL_PASSWORD": SENTINEL_PASSWORD,
            "REDIS_PASSWORD": PASSWORD,
        }
    )
    assert settings.redis_location == (
        f"master {MASTER_NAME} via sentinels 127.0.0.1:{servers.sentinel.port}"
    )
    reader = RedisReader(connect(settings), settings.keys, 3_600_000, None)
    write_output(servers.first.client(), KEY, resource_output([1.0], egress=1.0))
    assert egress(reader) == 1.0

    replica = servers.second.client()
    wait_for(lambda: replica.get(KEY), what="the replica to catch up")
    servers.fail_over()
    write_output(replica, KEY, resource_output([2.0], egress=2.0))
    wait_for(lambda: egress(reader) == 2.0, what="the new master's output")


def test_cli_bad_sentinel_setting_exits_2_with_one_line() -> None:
    result = subprocess.run(
        [*dashboard_command(), "--bind", "127.0.0.1:1"],
        env=clean_environ(
            REDIS_OUTPUT_KEY="out",
            REDIS_SENTINELS="s1:26379",
            REDIS_SENTINEL_MASTER="mymaster",
            REDIS_URL=f"redis://:{PASSWORD}@redis:6379/0",
        ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr == (
        "monitoring-dashboard: REDIS_URL='redis://:***@redis:6379/0': expected unset when "
        "REDIS_SENTINELS is set: the sentinels say where the master is\n"
    )
