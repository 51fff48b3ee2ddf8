"""REDIS_URL as redis-py reads it: checked before connecting, and shown without its password.

Standard library only: the dashboard checks its REDIS_URL with the same rules.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

# Redis allows as many databases as its `databases` setting (16 by default), which a client cannot
# know; a number past this is taken for a typo.
MAX_DB = 65_535
EXPECTED = (
    "redis://[user:password@]host[:port][/db], rediss://… or unix://path[?db=N], "
    f"with a port from 1 to 65535 and a db from 0 to {MAX_DB}"
)

_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)
_DB_NUMBER = re.compile(r"[0-9]{1,5}")


def check(url: str) -> None:
    """Raise ValueError unless redis-py would connect where the URL says (no silent db 0)."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError(url)
    if parts.scheme == "unix":
        if not parts.path:
            raise ValueError(url)
    else:
        if not (parts.hostname or parts.path):
            raise ValueError(url)
        if parts.port == 0:  # .port itself raises ValueError past 65535 or on a non-number
            raise ValueError(url)
        # redis-py reads the path as the db and falls back to db 0 on anything not a number.
        db = parts.path.removeprefix("/")
        if db:
            _check_db(db)
    # ?db=N overrides the path in redis-py, for unix:// sockets too.
    for value in parse_qs(parts.query).get("db", [])[:1]:
        _check_db(value)


def _check_db(text: str) -> None:
    if not _DB_NUMBER.fullmatch(text) or int(text) > MAX_DB:
        raise ValueError(text)


def redact(url: str) -> str:
    """The URL with its password (and any `password=` query value) replaced by ***."""
    # Works on malformed URLs too, and hides everything up to the last "@": an unescaped "@" or
    # "/" in a password must not make part of it show.
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        userinfo, _, location = rest.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        # A lone userinfo is a user name by the URL rules, but may well be a password.
        rest = f"{user}:***@{location}" if colon else f"***@{location}"
    return scheme + sep + _QUERY_PASSWORD.sub(r"\1***", rest)
