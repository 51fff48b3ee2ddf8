"""REDIS_CLUSTER_NODES and slot-sharing key names: the settings side of a Redis Cluster.

Standard library only: the dashboard reads the same variables, and its image holds this package
without its dependencies (storage/cluster.py builds the client from these values).
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping

from serverless_runtime.storage.redis_sentinel import Invalid, listed, parse_address

__all__ = ["Invalid", "from_env", "hash_tag", "listed", "parse_nodes", "slot", "tagged", "tls"]

NODES = "REDIS_CLUSTER_NODES"
DEFAULT_PORT = 6379
EXPECTED = (
    "a comma-separated list of host:port of cluster nodes (port 1 to 65535; "
    "an IPv6 address in brackets, [::1]:6379)"
)
# Settings the cluster's nodes say themselves, so they may not be set beside REDIS_CLUSTER_NODES.
EXCLUSIVE = ("REDIS_URL", "REDIS_SENTINELS", "REDIS_HOST", "REDIS_PORT")
TLS = "REDIS_TLS"
VARIABLES = frozenset({NODES, TLS})
EXPECTED_TLS = (
    f"true or false (TLS to every node; only with {NODES}: the other forms say rediss://)"
)

# -- settings ----------------------------------------------------------------------------------


def from_env(environ: Mapping[str, str]) -> tuple[tuple[str, int], ...] | None:
    """The startup nodes, None when REDIS_CLUSTER_NODES is unset or blank; Invalid names a bad
    variable (a malformed list, or REDIS_URL / REDIS_SENTINELS set beside it)."""
    text = environ.get(NODES, "").strip()
    if not text:
        return None
    nodes = parse_nodes(text)
    for other in EXCLUSIVE:
        if environ.get(other, "").strip():
            # The value is not shown: a URL may hold a password.
            raise Invalid(
                other, "***", f"unset when {NODES} is set: the cluster says where keys are"
            )
    return nodes


def tls(environ: Mapping[str, str]) -> bool:
    """REDIS_TLS: whether to reach the cluster's nodes over TLS (false when unset or blank)."""
    raw = environ.get(TLS, "")
    value = raw.strip().lower()
    if not value:
        return False
    if value not in ("true", "false") or not environ.get(NODES, "").strip():
        raise Invalid(TLS, raw, EXPECTED_TLS)
    return value == "true"


def parse_nodes(text: str) -> tuple[tuple[str, int], ...]:
    """`host:port[,host:port…]` as (host, port) pairs, each listed once.

    Invalid says which item is wrong and why, in one line.
    """
    if not text.strip():
        raise Invalid(NODES, text, f"{EXPECTED} (the list is empty)")
    nodes: list[tuple[str, int]] = []
    for number, item in enumerate(text.split(","), start=1):
        try:
            node = parse_address(item.strip(), DEFAULT_PORT)
        except ValueError as exc:
            raise Invalid(NODES, text, f"{EXPECTED} (item {number}: {exc})") from None
        if node not in nodes:
            nodes.append(node)
    return tuple(nodes)


# -- key names ---------------------------------------------------------------------------------


def hash_tag(key: str) -> str | None:
    """The part of `key` Redis hashes when it is not the whole key: the text between the first
    `{` and the first `}` after it, if not empty (as Redis reads the key's bytes)."""
    start = key.find("{")
    if start < 0:
        return None
    end = key.find("}", start + 1)
    if end <= start + 1:
        return None
    return key[start + 1 : end]


def tagged(output_key: str, suffix: str) -> str:
    """A key in the same hash slot as `output_key`, named after it: `{<output_key>}:<suffix>`.

    An output key with a hash tag of its own (`{t}rest`) gets `{t}<output_key>:<suffix>`, so
    that the first tag stays its tag and no two output keys share a derived name. An output key
    whose whole name is hashed but holds a `}` (`a}b`, `x{}y`) has no such name: ValueError.
    """
    tag = hash_tag(output_key)
    if tag is not None:
        return f"{{{tag}}}{output_key}:{suffix}"
    if "}" in output_key:
        raise ValueError(
            f"output key {output_key!r} holds '}}' outside a hash tag: no other key name can "
            "share its hash slot (rename it, or give it a tag such as '{name}')"
        )
    return f"{{{output_key}}}:{suffix}"


def slot(key: str | bytes) -> int:
    """The hash slot of `key` (0 to 16383), as the cluster computes it: CRC16 (XMODEM) of the
    hash tag if the key has one, else of the whole key."""
    data = key.encode() if isinstance(key, str) else key
    start = data.find(b"{")
    if start >= 0:
        end = data.find(b"}", start + 1)
        if end > start + 1:
            data = data[start + 1 : end]
    return binascii.crc_hqx(data, 0) % 16384
