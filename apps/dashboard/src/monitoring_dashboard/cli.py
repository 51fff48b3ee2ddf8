"""`monitoring-dashboard`: serve the dashboard with gunicorn (one worker, a few threads)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]

from monitoring_dashboard.settings import Invalid, Settings

# All interfaces: in the pod, the Service reaches the container on its port.
DEFAULT_BIND = "0.0.0.0:8050"
THREADS = 4


class DashboardServer(BaseApplication):  # type: ignore[misc]
    """gunicorn serving create_app(); the app is built in the worker, after the fork."""

    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.settings = settings
        self.options = options
        super().__init__(prog="monitoring-dashboard")

    def load_config(self) -> None:
        """Apply our options; gunicorn's command line and config files are not consulted."""
        for key, value in self.options.items():
            # Skip settings an older gunicorn does not have (e.g. the control socket).
            if key in self.cfg.settings:
                self.cfg.set(key, value)

    def load(self) -> Any:
        # Imported here so `--help` and settings errors stay fast.
        from monitoring_dashboard.wsgi import server_for

        return server_for(self.settings)


# Client, request, status, size and the server time in ms (what a refresh costs the server).
ACCESS_LOG_FORMAT = '%(h)s "%(r)s" %(s)s %(B)s %(M)sms'


def gunicorn_options(
    bind: str, threads: int, log_level: str, access_log: bool = False
) -> dict[str, Any]:
    """gunicorn settings for a small, read-only container."""
    options: dict[str, Any] = {
        "bind": [bind],
        "workers": 1,
        "worker_class": "gthread",
        "threads": threads,
        "timeout": 30,
        "graceful_timeout": 10,
        "loglevel": log_level,
        # Off by default: every open page refreshes every few seconds.
        "accesslog": "-" if access_log else None,
        "access_log_format": ACCESS_LOG_FORMAT,
        "errorlog": "-",
        "proc_name": "monitoring-dashboard",
        # The control socket would be written under $HOME, which a read-only pod does not have.
        "control_socket_disable": True,
    }
    # The worker heartbeat file wants a writable tmpfs; /tmp may be read-only in a pod.
    shm = "/dev/shm"  # noqa: S108 - a per-pod tmpfs, only for gunicorn's heartbeat file
    if os.path.isdir(shm) and os.access(shm, os.W_OK):  # noqa: PTH112
        options["worker_tmp_dir"] = shm
    return options


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="monitoring-dashboard",
        description="Serve the live resource-monitor dashboard. Settings come from the "
        "environment: REDIS_URL or REDIS_HOST/REDIS_PORT (+REDIS_PASSWORD), "
        "REDIS_OUTPUT_KEY (required), REFRESH_SECONDS, HISTORY_MINUTES.",
    )
    parser.add_argument(
        "--bind", default=DEFAULT_BIND, type=_bind, help="HOST:PORT (default %(default)s)"
    )
    parser.add_argument(
        "--threads", type=int, default=THREADS, choices=range(1, 65), metavar="N", help="threads"
    )
    parser.add_argument(
        "--access-log",
        action="store_true",
        help="log every request with its server time in ms (to stdout)",
    )
    parser.add_argument(
        "--log-level",
        default=os.environ.get("LOG_LEVEL", "info").lower(),
        choices=["debug", "info", "warning", "error", "critical"],
    )
    return parser.parse_args(argv)


def _bind(raw: str) -> str:
    """gunicorn's HOST:PORT, checked here: a port past 65535 is a traceback in gunicorn."""
    if raw.startswith(("unix:", "fd://")) or raw.endswith("]") or ":" not in raw:
        return raw
    port = raw.rpartition(":")[2]
    if not (port.isascii() and port.isdigit() and int(port) <= 65535):
        expected = "expected HOST:PORT with a port from 0 to 65535"
        raise argparse.ArgumentTypeError(f"{expected}, not {raw}")
    return raw


def main(argv: Sequence[str] | None = None) -> int:
    """Validate the settings, then run gunicorn until SIGTERM or SIGINT."""
    args = parse_args(argv)
    try:
        settings = Settings.from_env(os.environ)
    except Invalid as exc:
        sys.stderr.write(f"monitoring-dashboard: {exc}\n")
        return 2
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    options = gunicorn_options(args.bind, args.threads, args.log_level, args.access_log)
    DashboardServer(settings, options).run()
    return 0
