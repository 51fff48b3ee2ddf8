"""Resource monitor: network egress share, memory cache share and 60 s CPU moving averages.

``handler(input, context)`` reads one snapshot of the metrics collector and returns:

- ``percent-network-egress``: bytes_sent / (bytes_sent + bytes_recv) * 100 for ``eth0``; when the
  input has no ``net_io_counters_eth0-*`` key, the counters of every interface except ``lo`` are
  summed (an interface counts only when both its byte counters are numbers);
- ``percent-memory-caching``: (cached + buffers) / total * 100;
- ``avg-util-cpu{N}-60sec``: the mean of CPU N's samples whose input timestamps lie in the window
  ``(t - 60 s, t]``, t being the newest input timestamp seen;
- ``timestamp``: the input's ``timestamp`` string, unchanged.

Rules, so that nothing in the input can make the function raise:

- A number is a JSON number: ``int`` or ``float``, finite, not ``bool``. Strings (even numeric
  ones), NaN, infinities and ``None`` are skipped, and every output key that needs them is
  omitted. A CPU utilisation is a percentage, so a ``cpu_percent-N`` outside 0..100 is skipped
  too (which also keeps the rounding of the running sums far below 1e-9). Byte counters and
  memory sizes cannot be negative: a negative one is skipped like a non-number.
- A zero denominator gives 0.0; a ratio that overflows a float is omitted.
- ``avg-util-cpu{N}-60sec`` is reported only while the current input carries a valid
  ``cpu_percent-N``; a CPU that disappears stops being reported at once, and is dropped from the
  state (at the next compaction, see below) once its samples have left the window.
- Timestamps are ``str(datetime.now())`` strings (``2026-11-27 23:22:01.123456``, with or without
  the fraction, or with ``T``); one with a UTC offset is converted to UTC. A missing or unparsable
  timestamp cannot be placed in time, so the window is left untouched and no CPU average is
  reported for that input (egress and caching still are).
- A snapshot with the same timestamp as the newest one seen is not counted again: the averages
  are those of the window as it is. A timestamp that goes backwards starts a fresh window.

The window lives in ``context.env["cpu-window"]`` as plain JSON data, so a runtime can persist it
with ``json.dumps``: one column per CPU (its input and output key names), one row of values per
accepted snapshot with its timestamp in integer microseconds (``null`` where the CPU had no valid
value; rows written before a CPU appeared are shorter), the index of the oldest row still in the
window, and per CPU a running sum plus the number of live rows without a value for it. A call
moves the index past the rows that left the window and appends one row, updating all sums with
one C-level ``map``, so its cost does not grow with the window. Once the dead rows outnumber the
live ones they are cut off, CPUs without live samples are dropped, and the sums are recomputed
with ``math.fsum`` so that rounding cannot accumulate over long runs.

Only the standard library is used, so the file runs unchanged under the course's runtime too.
"""

from __future__ import annotations

import math
import operator
from datetime import datetime, timedelta, timezone
from itertools import compress, repeat
from typing import Any

WINDOW_MICROSECONDS = 60_000_000
STATE_KEY = "cpu-window"
STATE_VERSION = 1

_CPU_PREFIX = "cpu_percent-"
_NET_PREFIX = "net_io_counters_"
_EPOCH = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)
_ONLY_FLOATS = {float}


def handler(input: Any, context: Any) -> dict[str, Any]:
    """Compute the resource-monitor output for one metrics snapshot."""
    if not isinstance(input, dict):
        return {}
    env = getattr(context, "env", None)
    if not isinstance(env, dict):
        # The course runtime always provides env; a bare context object gets one here.
        env = {}
        context.env = env

    output: dict[str, Any] = {}
    egress = _network_egress(input)
    if egress is not None:
        output["percent-network-egress"] = egress
    caching = _memory_caching(input)
    if caching is not None:
        output["percent-memory-caching"] = caching
    raw_timestamp = input.get("timestamp")
    at = _parse_timestamp(raw_timestamp)
    if at is not None:
        _cpu_averages(input, at, env, output)
    if isinstance(raw_timestamp, str):
        output["timestamp"] = raw_timestamp
    return output


def _number(value: object) -> float | None:
    """The value as a float when it is a finite JSON number, else None."""
    if type(value) is float:
        return value if math.isfinite(value) else None
    if type(value) is int:  # not bool: type() is exact
        try:
            return float(value)
        except OverflowError:  # JSON integers have no size limit
            return None
    return None


def _size(value: object) -> float | None:
    """A byte count or memory size: a finite number that is not negative, else None."""
    number = _number(value)
    return number if number is not None and number >= 0 else None


def _ratio(part: float, whole: float) -> float | None:
    """part / whole in percent; 0.0 for a zero whole, None when it overflows."""
    if whole == 0:
        return 0.0
    result = part / whole * 100.0
    return result if math.isfinite(result) else None


def _network_egress(data: dict[str, Any]) -> float | None:
    """Egress share of eth0's bytes, or of all interfaces but lo when eth0 is absent."""
    sent_key = _NET_PREFIX + "eth0-bytes_sent"
    recv_key = _NET_PREFIX + "eth0-bytes_recv"
    if sent_key in data or recv_key in data or _has_prefix(data, _NET_PREFIX + "eth0-"):
        sent = _size(data.get(sent_key))
        recv = _size(data.get(recv_key))
        if sent is None or recv is None:
            return None
        return _ratio(sent, sent + recv)

    interfaces = set()
    for key in data:
        if isinstance(key, str) and key.startswith(_NET_PREFIX):
            # Interface names may contain "-" (br-1a2b3c), so split at the last one.
            name = key[len(_NET_PREFIX) :].rpartition("-")[0]
            if name and name != "lo":
                interfaces.add(name)
    total_sent = total_recv = 0.0
    counted = False
    for name in interfaces:
        sent = _size(data.get(f"{_NET_PREFIX}{name}-bytes_sent"))
        recv = _size(data.get(f"{_NET_PREFIX}{name}-bytes_recv"))
        if sent is not None and recv is not None:
            total_sent += sent
            total_recv += recv
            counted = True
    return _ratio(total_sent, total_sent + total_recv) if counted else None


def _has_prefix(data: dict[str, Any], prefix: str) -> bool:
    return any(isinstance(key, str) and key.startswith(prefix) for key in data)


def _memory_caching(data: dict[str, Any]) -> float | None:
    """Share of memory used by the page cache and buffers."""
    cached = _size(data.get("virtual_memory-cached"))
    buffers = _size(data.get("virtual_memory-buffers"))
    total = _size(data.get("virtual_memory-total"))
    if cached is None or buffers is None or total is None:
        return None
    return _ratio(cached + buffers, total)


def _parse_timestamp(value: object) -> int | None:
    """Microseconds since 1970-01-01 on the timestamp's own clock, or None."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(timezone.utc).replace(tzinfo=None)  # noqa: UP017 - 3.11+ only
    # Integer microseconds keep the window's bounds exact (a float would round).
    return (parsed - _EPOCH) // _MICROSECOND


def _cpu_value(value: object) -> float | None:
    """A CPU utilisation sample: a number in 0..100, else None."""
    number = _number(value)
    return number if number is not None and 0.0 <= number <= 100.0 else None


def _cpu_keys(data: dict[str, Any]) -> list[str]:
    """The input's cpu_percent-* keys, in input order."""
    try:
        # Runs in C: this scan over every input key is most of a call's cost otherwise.
        return list(compress(data, map(str.startswith, data, repeat(_CPU_PREFIX))))
    except TypeError:  # a key that is not a string
        return [key for key in data if isinstance(key, str) and key.startswith(_CPU_PREFIX)]


def _clean_row(row: list[Any]) -> tuple[list[float | None], bool]:
    """Valid CPU samples with None in place of the others, and whether all were valid."""
    if set(map(type, row)) == _ONLY_FLOATS:
        total = sum(row)  # NaN or an infinity anywhere makes the sum non-finite
        if math.isfinite(total) and min(row) >= 0.0 and max(row) <= 100.0:
            return row, True
    cleaned = [_cpu_value(value) for value in row]
    return cleaned, None not in cleaned


def _fresh_state() -> dict[str, Any]:
    return {
        "version": STATE_VERSION,
        "columns": [],  # input keys, one per CPU
        "names": [],  # output keys, same order
        "times": [],  # one per accepted snapshot, microseconds
        "rows": [],  # values per snapshot, one per column known at the time
        "head": 0,  # first row still in the window
        "sums": [],  # per column: sum of its values in the live rows
        "absent": [],  # per column: live rows without a value for it
    }


def _load_state(env: dict[str, Any]) -> dict[str, Any]:
    """The window state from env, or a fresh one when it is missing or malformed."""
    state = env.get(STATE_KEY)
    if isinstance(state, dict) and _well_formed(state):
        return state
    state = _fresh_state()
    env[STATE_KEY] = state
    return state


def _well_formed(state: dict[str, Any]) -> bool:
    """Whether a stored state has this version's shape (cheap checks, no per-value scan)."""
    try:
        return bool(
            state["version"] == STATE_VERSION
            and len(state["columns"]) == len(state["names"])
            and len(state["columns"]) == len(state["sums"]) == len(state["absent"])
            and len(state["times"]) == len(state["rows"])
            and 0 <= state["head"] <= len(state["times"])
        )
    except (TypeError, KeyError):
        return False


def _cpu_averages(
    data: dict[str, Any], at: int, env: dict[str, Any], output: dict[str, Any]
) -> None:
    """Add this snapshot to the window; put the averages of the CPUs it carries in output."""
    state = _load_state(env)
    try:
        row, dense = _advance(state, data, at)
    except (TypeError, ValueError, IndexError, KeyError, AttributeError, OverflowError):
        # A state edited by hand or left by another version: start over rather than fail.
        state = _fresh_state()
        env[STATE_KEY] = state
        row, dense = _advance(state, data, at)

    names, sums, absent = state["names"], state["sums"], state["absent"]
    live = float(len(state["times"]) - state["head"])
    if dense:
        # zip without strict=: the course runtime may predate Python 3.10.
        output.update(zip(names, map(operator.truediv, sums, repeat(live))))  # noqa: B905
        return
    for index, value in enumerate(row):
        count = live - absent[index]
        if value is not None and count > 0:
            output[names[index]] = sums[index] / count


def _advance(
    state: dict[str, Any], data: dict[str, Any], at: int
) -> tuple[list[float | None], bool]:
    """Add the snapshot taken at `at`; return its valid value per column, and whether dense."""
    # Dense: every column has a value in this snapshot and in every live row, so every
    # average is its sum / the number of live rows.
    times: list[int] = state["times"]
    if times and at < times[-1]:
        state.update(_fresh_state())
        times = state["times"]
    repeated = bool(times) and at == times[-1]

    columns: list[str] = state["columns"]
    row, complete = _clean_row(list(map(data.get, columns)))
    if not repeated:
        keys = _cpu_keys(data)
        # More cpu_percent-* keys than known CPUs with a value here: some may be new.
        if len(keys) > len(columns) - (0 if complete else row.count(None)) and _add_columns(
            state, data, keys
        ):
            row, complete = _clean_row(list(map(data.get, columns)))
    absent: list[int] = state["absent"]
    # No absences: every live row has a value for every column (the usual, fast case).
    dense = not any(absent)
    if repeated:
        return row, complete and dense

    rows: list[list[float | None]] = state["rows"]
    sums: list[float] = state["sums"]
    width = len(columns)
    head = state["head"]
    cutoff = at - WINDOW_MICROSECONDS
    while head < len(times) and times[head] <= cutoff:
        old = rows[head]
        if dense or (len(old) == width and None not in old):
            sums[:] = map(operator.sub, sums, old)
        else:
            _subtract_sparse(sums, absent, old)
        head += 1
    times.append(at)
    rows.append(row)
    if complete:
        sums[:] = map(operator.add, sums, row)
    else:
        _add_sparse(sums, absent, row)

    if head > len(times) - head:
        _compact(state, head)
        compacted: list[list[float | None]] = state["rows"]
        # The same row, without the columns compaction dropped.
        return compacted[-1], complete and not any(state["absent"])
    state["head"] = head
    return row, complete and (dense or not any(absent))


def _add_columns(state: dict[str, Any], data: dict[str, Any], keys: list[str]) -> bool:
    """Give every new CPU with a valid sample a column of its own; tell whether any was new."""
    known = set(state["columns"])
    live = len(state["times"]) - state["head"]
    added = False
    for key in keys:
        cpu = key[len(_CPU_PREFIX) :]
        if key in known or not (cpu.isdigit() and cpu.isascii()):
            continue
        if _cpu_value(data[key]) is not None:
            state["columns"].append(key)
            state["names"].append(f"avg-util-cpu{cpu}-60sec")
            state["sums"].append(0.0)
            state["absent"].append(live)  # the live rows predate this CPU
            added = True
    return added


def _add_sparse(sums: list[float], absent: list[int], row: list[float | None]) -> None:
    for index, value in enumerate(row):
        if value is None:
            absent[index] += 1
        else:
            sums[index] += value


def _subtract_sparse(sums: list[float], absent: list[int], row: list[float | None]) -> None:
    for index, value in enumerate(row):
        if value is None:
            absent[index] -= 1
        else:
            sums[index] -= value
    # A row written before a CPU appeared counted as absent for it.
    for index in range(len(row), len(absent)):
        absent[index] -= 1


def _compact(state: dict[str, Any], head: int) -> None:
    """Cut off the rows that left the window, drop empty CPUs, recompute the sums exactly."""
    width = len(state["columns"])
    rows = [
        row if len(row) == width else row + [None] * (width - len(row))
        for row in state["rows"][head:]
    ]
    live = len(rows)
    absent: list[int] = state["absent"]  # already counts the live rows only
    cells = list(zip(*rows))  # noqa: B905 - one tuple per column; rows are padded
    if max(absent, default=0) >= live:
        keep = [index for index, count in enumerate(absent) if count < live]
        cells = [cells[index] for index in keep]
        absent = [absent[index] for index in keep]
        rows = [list(row) for row in zip(*cells)] if cells else [[] for _ in rows]  # noqa: B905
        state["columns"] = [state["columns"][index] for index in keep]
        state["names"] = [state["names"][index] for index in keep]
    state["rows"] = rows
    state["times"] = state["times"][head:]
    state["sums"] = [
        math.fsum(column) if count == 0 else math.fsum(v for v in column if v is not None)
        for column, count in zip(cells, absent)  # noqa: B905
    ]
    state["absent"] = absent
    state["head"] = 0
