"""Free ports for a local stack: its DEV_* port settings."""

from __future__ import annotations

import socket

from tests.support.valkey import free_port


def stack_ports(runtimes: int) -> dict[str, str]:
    """DEV_REDIS_PORT, DEV_DASHBOARD_PORT and a first DEV_RUNTIME_HTTP_PORT followed by as many
    free ports as there are RUNTIMES (one each)."""
    while True:
        http = free_port()
        taken = False
        for port in range(http + 1, http + runtimes):
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    taken = True
        if not taken:
            return {
                "DEV_REDIS_PORT": str(free_port()),
                "DEV_DASHBOARD_PORT": str(free_port()),
                "DEV_RUNTIME_HTTP_PORT": str(http),
            }
