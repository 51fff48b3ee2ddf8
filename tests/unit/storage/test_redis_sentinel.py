"""REDIS_SENTINELS, REDIS_SENTINEL_MASTER and REDIS_SENTINEL_PASSWORD: parsed once, refused with
one line naming the variable (never showing a password), the same rules in both apps."""

from __future__ import annotations

import socket
import subprocess
import threading

import pytest
import redis
from monitoring_dashboard.connection import connect as dashboard_connect
from monitoring_dashboard.settings import ENV_VARS as DASHBOARD_VARS
from monitoring_dashboard.settings import Invalid
from monitoring_dashboard.settings import Settings as DashboardSettings
from serverless_runtime.config import ENV_VARS, ConfigError, Settings
from serverless_runtime.storage.redis_sentinel import Sentinels
from serverless_runtime.storage.store import connect

from tests.support.processes import RUNTIME

PASSWORD = "hunter2-sentinel"
NEW = {"REDIS_SENTINELS", "REDIS_SENTINEL_MASTER", "REDIS_SENTINEL_PASSWORD"}


def settings(**env: str) -> Settings:
    return Settings.from_env({"REDIS_OUTPUT_KEY": "out", **env})


@pytest.mark.parametrize(
    ("listed", "addresses"),
    [
        ("10.0.0.1:26379", (("10.0.0.1", 26379),)),
        ("s1, s2:26380 ,s3.example.", (("s1", 26379), ("s2", 26380), ("s3.example.", 26379))),
        ("[::1]:26381,[fe80::1]", (("::1", 26381), ("fe80::1", 26379))),
        ("sentinel-0.sentinel.redis.svc:1", (("sentinel-0.sentinel.redis.svc", 1),)),
    ],
)
def test_sentinels_are_read_with_their_ports(
    listed: str, addresses: tuple[tuple[str, int], ...]
) -> None:
    config = settings(REDIS_SENTINELS=listed, REDIS_SENTINEL_MASTER="mymaster").redis
    assert config.sentinels == Sentinels(addresses, "mymaster")
    assert config.url is None


@pytest.mark.parametrize(
    "listed",
    [
        "s1:0",
        "s1:65536",
        "s1:port",
        "s1:",
        "s1,,s2",
        "s1,",
        "bad_host!:26379",
        "999.1.1.1:26379",
        "::1:26379",  # IPv6 without brackets
        "[::1",
        "[::1]26379",
        "[10.0.0.1]:26379",
        "redis://s1:26379",
    ],
)
def test_bad_sentinel_list_names_the_variable_and_the_form(listed: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings(REDIS_SENTINELS=listed, REDIS_SENTINEL_MASTER="mymaster")
    assert str(caught.value) == (
        f"invalid setting REDIS_SENTINELS={listed!r}: expected a comma-separated list of "
        "host[:port] (port 1 to 65535, default 26379; an IPv6 address in brackets, [::1]:26379)"
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"REDIS_SENTINELS": "s1"},
            "invalid setting REDIS_SENTINEL_MASTER=(not set): expected the name of the master the "
            "sentinels monitor, without spaces (required with REDIS_SENTINELS)",
        ),
        (
            {"REDIS_SENTINELS": "s1", "REDIS_SENTINEL_MASTER": "my master"},
            "invalid setting REDIS_SENTINEL_MASTER='my master': expected the name of the master "
            "the sentinels monitor, without spaces (required with REDIS_SENTINELS)",
        ),
        (
            {"REDIS_SENTINEL_MASTER": "mymaster"},
            "invalid setting REDIS_SENTINELS=(not set): expected a comma-separated list of "
            "host[:port] (port 1 to 65535, default 26379; an IPv6 address in brackets, "
            "[::1]:26379), since REDIS_SENTINEL_MASTER is set",
        ),
        (
            {"REDIS_SENTINEL_PASSWORD": PASSWORD},
            "invalid setting REDIS_SENTINEL_PASSWORD='***': expected unset unless "
            "REDIS_SENTINELS is set",
        ),
        (
            {
                "REDIS_SENTINELS": "s1",
                "REDIS_SENTINEL_MASTER": "mymaster",
                "REDIS_URL": f"redis://:{PASSWORD}@redis:6379/0",
            },
            "invalid setting REDIS_URL='redis://:***@redis:6379/0': expected unset when "
            "REDIS_SENTINELS is set: the sentinels say where the master is",
        ),
    ],
)
def test_incomplete_or_mixed_sentinel_settings_are_refused(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        settings(**env)
    assert str(caught.value) == message
    assert PASSWORD not in str(caught.value)


def test_host_and_port_are_overridden_like_by_redis_url() -> None:
    config = settings(
        REDIS_SENTINELS="s1", REDIS_SENTINEL_MASTER="mymaster", REDIS_HOST="redis", REDIS_PORT="7"
    ).redis
    assert config.location == ("REDIS_SENTINELS", "s1:26379")


def test_repr_hides_the_sentinel_password() -> None:
    config = settings(
        REDIS_SENTINELS="s1",
        REDIS_SENTINEL_MASTER="mymaster",
        REDIS_SENTINEL_PASSWORD=PASSWORD,
    ).redis
    assert config.sentinels is not None
    assert config.sentinels.password == PASSWORD
    assert PASSWORD not in repr(config)


def test_both_apps_read_the_variables_and_apply_the_same_rules() -> None:
    assert NEW <= ENV_VARS
    assert NEW <= DASHBOARD_VARS
    env = {"REDIS_OUTPUT_KEY": "out", "REDIS_SENTINELS": "s1,[::1]:26380"}
    with pytest.raises(Invalid) as caught:
        DashboardSettings.from_env(env)
    assert caught.value.name == "REDIS_SENTINEL_MASTER"
    dashboard = DashboardSettings.from_env({**env, "REDIS_SENTINEL_MASTER": "mymaster"})
    assert (
        dashboard.redis.sentinels
        == settings(**env, REDIS_SENTINEL_MASTER="mymaster").redis.sentinels
    )
    with pytest.raises(Invalid) as caught:
        DashboardSettings.from_env({**env, "REDIS_SENTINELS": "s1:0"})
    assert caught.value.name == "REDIS_SENTINELS"


@pytest.mark.parametrize(
    ("env", "shown"),
    [
        (
            {"REDIS_SENTINELS": "s1:99999", "REDIS_SENTINEL_MASTER": "m"},
            "REDIS_SENTINELS='s1:99999'",
        ),
        ({"REDIS_SENTINEL_PASSWORD": PASSWORD}, "REDIS_SENTINEL_PASSWORD='***'"),
    ],
)
def test_run_bad_sentinel_setting_exits_2_with_one_line(env: dict[str, str], shown: str) -> None:
    done = subprocess.run(
        [RUNTIME],
        env={"REDIS_OUTPUT_KEY": "out", **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"serverless-runtime: invalid setting {shown}: expected ")
    assert PASSWORD not in done.stderr + done.stdout


class _CountingListener:
    """A TCP port that accepts and at once closes connections, counting them: a broken sentinel."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()


def test_a_broken_sentinel_is_asked_once_per_connection_in_both_apps() -> None:
    # redis-py retries a sentinel three times with backoff by default, which held the runtime's
    # start and its first "Redis unreachable" for seconds; the loop's own backoff is the retry.
    broken = _CountingListener()
    env = {
        "REDIS_SENTINELS": f"127.0.0.1:{broken.port}",
        "REDIS_SENTINEL_MASTER": "mymaster",
        "REDIS_OUTPUT_KEY": "out",
    }
    runtime = connect(Settings.from_env(env).redis)
    with pytest.raises(redis.ConnectionError):
        runtime.ping()
    assert broken.accepted == 1
    dashboard = dashboard_connect(DashboardSettings.from_env(env))
    with pytest.raises(redis.ConnectionError):
        dashboard.ping()
    # The dashboard: its one quick retry of a dropped connection, for the sentinel and the command.
    assert broken.accepted - 1 <= 4
    broken.sock.close()
