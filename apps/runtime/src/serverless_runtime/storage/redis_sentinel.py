"""Redis Sentinel settings: where the sentinels are and which master they watch.

Standard library only: the dashboard reads the same variables with the same rules, and its image
holds this package without its dependencies. Each app builds its redis-py client from `Sentinels`.
REDIS_CLUSTER_NODES lists its nodes as REDIS_SENTINELS does (`parse_address`, `listed`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from serverless_runtime.storage import redis_url

SENTINELS = "REDIS_SENTINELS"
MASTER = "REDIS_SENTINEL_MASTER"
PASSWORD = "REDIS_SENTINEL_PASSWORD"  # noqa: S105 - the variable's name, not a password
VARIABLES = frozenset({SENTINELS, MASTER, PASSWORD})
DEFAULT_PORT = 26379  # Sentinel's own port

EXPECTED_SENTINELS = (
    f"a comma-separated list of host[:port] (port 1 to 65535, default {DEFAULT_PORT}; "
    "an IPv6 address in brackets, [::1]:26379)"
)
EXPECTED_MASTER = (
    f"the name of the master the sentinels monitor, without spaces (required with {SENTINELS})"
)
_HIDDEN = "***"

_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_MASTER_NAME = re.compile(r"\S+")


class Invalid(ValueError):
    """A Sentinel variable (or one that may not be set with them) holds an unusable value."""

    def __init__(self, name: str, value: str | None, expected: str) -> None:
        super().__init__(f"{name}={value!r}: expected {expected}")
        self.name = name
        self.value = value  # as it may be shown: never a password
        self.expected = expected


@dataclass(frozen=True, slots=True)
class Sentinels:
    """The sentinels to ask and the name of the master they watch."""

    addresses: tuple[tuple[str, int], ...]
    master: str
    # Kept out of repr(): a repr can end up in a log.
    password: str | None = field(default=None, repr=False)

    def listed(self) -> str:
        """The sentinels as REDIS_SENTINELS lists them, each with its port."""
        return listed(self.addresses)

    def describe(self) -> str:
        """For messages: the master's name and the sentinels, without the password."""
        return f"master {self.master} via sentinels {self.listed()}"


def from_env(environ: Mapping[str, str]) -> Sentinels | None:
    """The Sentinel settings, None when REDIS_SENTINELS is unset; Invalid names a bad variable."""
    sentinels = environ.get(SENTINELS, "").strip()
    master = environ.get(MASTER, "").strip()
    password = environ.get(PASSWORD) or None
    if not sentinels:
        if master:
            raise Invalid(SENTINELS, None, f"{EXPECTED_SENTINELS}, since {MASTER} is set")
        if password is not None:
            raise Invalid(PASSWORD, _HIDDEN, f"unset unless {SENTINELS} is set")
        return None
    addresses = parse_addresses(sentinels)
    url = environ.get("REDIS_URL", "").strip()
    if url:
        # Shown without its password: this line goes to the pod's log.
        expected = f"unset when {SENTINELS} is set: the sentinels say where the master is"
        raise Invalid("REDIS_URL", redis_url.redact(url), expected)
    if not _MASTER_NAME.fullmatch(master):
        raise Invalid(MASTER, environ.get(MASTER), EXPECTED_MASTER)
    return Sentinels(addresses, master, password)


def parse_addresses(text: str) -> tuple[tuple[str, int], ...]:
    """`host[:port],…` as (host, port) pairs; Invalid on an empty item, a bad host or port."""
    addresses = []
    for item in text.split(","):
        try:
            addresses.append(parse_address(item.strip(), DEFAULT_PORT))
        except ValueError:
            raise Invalid(SENTINELS, text, EXPECTED_SENTINELS) from None
    return tuple(addresses)


def parse_address(item: str, default_port: int) -> tuple[str, int]:
    """One `host[:port]` item (an IPv6 address in brackets); ValueError says what is wrong."""
    if not item:
        raise ValueError("empty")
    if "://" in item:
        raise ValueError(f"{item.partition('://')[0]}:// is a URL scheme; list host:port only")
    if item.startswith("["):  # [IPv6]:port
        host, bracket, rest = item[1:].partition("]")
        if not bracket:
            raise ValueError(f"{item!r} has no closing ]")
        if ":" not in host or not is_host(host):  # (of the IP addresses, only IPv6 has colons)
            raise ValueError(f"{host!r} in brackets is not an IPv6 address")
        if rest and not rest.startswith(":"):
            raise ValueError(f"{item!r} has {rest!r} after the ]")
        port_text = rest[1:] if rest else None
    elif item.count(":") > 1:
        raise ValueError(f"{item!r}: an IPv6 address goes in brackets, [{item}]:{default_port}")
    else:
        host, colon, after = item.partition(":")
        if not is_host(host):
            raise ValueError(f"{host!r} is not a host name or IP address")
        port_text = after if colon else None
    if port_text is None:
        return host, default_port
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"port {port_text!r} is not a number from 1 to 65535")
    return host, int(port_text)


def is_host(text: str) -> bool:
    """An IP address literal, or a host name (RFC 1123) whose last label is not all digits."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        # All-digit last label: a malformed IPv4 address such as 999.1.1.1 (RFC 3696 section 2).
        labels = text.removesuffix(".").split(".")
        return (
            0 < len(text) <= 253
            and all(_HOST_LABEL.fullmatch(label) for label in labels)
            and not labels[-1].isdigit()
        )
    return True


def listed(addresses: tuple[tuple[str, int], ...]) -> str:
    """The addresses as REDIS_SENTINELS and REDIS_CLUSTER_NODES list them (holds no password)."""
    return ",".join(
        f"[{host}]:{port}" if ":" in host else f"{host}:{port}" for host, port in addresses
    )
