"""The Redis key layout of one function: every key name the runtime writes and the dashboard reads.

Standard library only: the dashboard image installs this package without its dependencies just
to import this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_INPUT_KEY = "metrics"
# Keys named after the output key unless their variable says otherwise (empty: disabled).
DERIVED = {
    "STATE_KEY": "state",
    "HISTORY_KEY": "history",
    "ERROR_KEY": "error",
    "LEASE_KEY": "lease",
}


def derived(output_key: str, suffix: str) -> str:
    """A key named after the output key: `<out>:<suffix>`."""
    return f"{output_key}:{suffix}"


def journal_key(state_key: str) -> str:
    """The inputs committed after the snapshot at `state_key`."""
    return f"{state_key}:journal"


def seq_key(state_key: str) -> str:
    """The sequence number of the last commit of the state at `state_key`."""
    return f"{state_key}:seq"


def lease_token_key(lease_key: str) -> str:
    """The counter that hands out fencing tokens for the lease at `lease_key`."""
    return f"{lease_key}:token"


def lease_released_channel(lease_key: str) -> str:
    """The pub/sub channel a leader announces the release of the lease at `lease_key` on."""
    return f"{lease_key}:released"


@dataclass(frozen=True, slots=True)
class KeyLayout:
    """Where one function's input, output and bookkeeping live; None for a disabled key."""

    output: str
    input: str = DEFAULT_INPUT_KEY
    state: str | None = None
    history: str | None = None
    error: str | None = None
    lease: str | None = None

    @classmethod
    def for_output(cls, output: str, input_key: str = DEFAULT_INPUT_KEY) -> KeyLayout:
        """The default layout: every key named after the output key."""
        return cls(output, input_key, *(derived(output, suffix) for suffix in DERIVED.values()))

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> KeyLayout:
        """The layout REDIS_OUTPUT_KEY, REDIS_INPUT_KEY and the *_KEY variables describe.

        An unset *_KEY is named after the output key; one set empty is disabled. Raises
        ValueError when REDIS_OUTPUT_KEY is missing (each app reports that in its own words).
        """
        output = (environ.get("REDIS_OUTPUT_KEY") or "").strip()
        if not output:
            raise ValueError("REDIS_OUTPUT_KEY is not set")
        named: list[str | None] = []
        for variable, suffix in DERIVED.items():
            raw = environ.get(variable)
            named.append(derived(output, suffix) if raw is None else raw.strip() or None)
        input_key = (environ.get("REDIS_INPUT_KEY") or "").strip() or DEFAULT_INPUT_KEY
        return cls(output, input_key, *named)

    @property
    def input_digest(self) -> str:
        """The digest of the last processed input."""
        return derived(self.output, "input-digest")

    @property
    def dead(self) -> str:
        """The dead-letter stream of stream entries that kept failing."""
        return derived(self.output, "dead")

    @property
    def poison(self) -> str:
        """The hash of inputs and function versions that hung."""
        return derived(self.output, "poison")

    @property
    def in_flight(self) -> str:
        """The hash naming the input a call is running on (key mode), with its death count."""
        return derived(self.output, "in-flight")

    def state_for(self, consumer: str | None) -> str | None:
        """The state snapshot key; in stream mode (`consumer` given) one per consumer."""
        if self.state is None or consumer is None:
            return self.state
        return f"{self.state}:{consumer}"

    @property
    def lease_token(self) -> str | None:
        """The fencing-token counter of the lease."""
        return None if self.lease is None else lease_token_key(self.lease)

    @property
    def lease_released(self) -> str | None:
        """The channel the lease's release is announced on."""
        return None if self.lease is None else lease_released_channel(self.lease)
