"""The Redis key layout of one function: every key name the runtime writes and the dashboard reads.

Standard library only: the dashboard image installs this package without its dependencies just
to import this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from serverless_runtime.storage.redis_cluster import tagged

DEFAULT_INPUT_KEY = "metrics"
# The registry hash the dashboard lists functions from (FUNCTIONS_KEY).
DEFAULT_FUNCTIONS_KEY = "serverless:functions"
# Keys named after the output key unless their variable says otherwise (empty: disabled).
DERIVED = {
    "STATE_KEY": "state",
    "HISTORY_KEY": "history",
    "ERROR_KEY": "error",
    "LEASE_KEY": "lease",
}


def derived(output_key: str, suffix: str, cluster: bool = False) -> str:
    """A key named after the output key: `<out>:<suffix>`; in a Redis Cluster `{<out>}:<suffix>`,
    in the output key's hash slot (see redis_cluster.tagged)."""
    return tagged(output_key, suffix) if cluster else f"{output_key}:{suffix}"


def journal_key(state_key: str) -> str:
    """The inputs committed after the snapshot at `state_key`."""
    return f"{state_key}:journal"


def seq_key(state_key: str) -> str:
    """The sequence number of the last commit of the state at `state_key`."""
    return f"{state_key}:seq"


def epoch_key(state_key: str) -> str:
    """The identity of the history of commits at `state_key`, made with its first commit."""
    return f"{state_key}:epoch"


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
    cluster: bool = False  # derived names share the output key's hash slot

    @classmethod
    def for_output(
        cls, output: str, input_key: str = DEFAULT_INPUT_KEY, cluster: bool = False
    ) -> KeyLayout:
        """The default layout: every key named after the output key."""
        state, history, error, lease = (derived(output, s, cluster) for s in DERIVED.values())
        return cls(output, input_key, state, history, error, lease, cluster)

    @classmethod
    def from_env(cls, environ: Mapping[str, str], cluster: bool = False) -> KeyLayout:
        """The layout REDIS_OUTPUT_KEY, REDIS_INPUT_KEY and the *_KEY variables describe. An unset
        *_KEY is named after the output key; one set empty is disabled. Raises ValueError when
        REDIS_OUTPUT_KEY is missing (each app reports that in its own words)."""
        output = (environ.get("REDIS_OUTPUT_KEY") or "").strip()
        if not output:
            raise ValueError("REDIS_OUTPUT_KEY is not set")
        named: list[str | None] = []
        for variable, suffix in DERIVED.items():
            raw = environ.get(variable)
            named.append(derived(output, suffix, cluster) if raw is None else raw.strip() or None)
        input_key = (environ.get("REDIS_INPUT_KEY") or "").strip() or DEFAULT_INPUT_KEY
        state, history, error, lease = named
        return cls(output, input_key, state, history, error, lease, cluster)

    @property
    def input_digest(self) -> str:
        """The digest of the last processed input."""
        return derived(self.output, "input-digest", self.cluster)

    @property
    def dead(self) -> str:
        """The dead-letter stream of stream entries that kept failing."""
        return derived(self.output, "dead", self.cluster)

    @property
    def poison(self) -> str:
        """The hash of inputs and function versions that hung."""
        return derived(self.output, "poison", self.cluster)

    @property
    def in_flight(self) -> str:
        """The hash naming the input a call is running on (key mode), with its death count."""
        return derived(self.output, "in-flight", self.cluster)

    def state_for(self, consumer: str | None) -> str | None:
        """The state snapshot key; in stream mode (`consumer` given) one per consumer."""
        if self.state is None or consumer is None:
            return self.state
        return f"{self.state}:{consumer}"

    def clash(
        self, consumer: str | None = None, shared: tuple[tuple[str, str | None], ...] = ()
    ) -> tuple[str, str, str] | None:
        """Two uses of one key: (the variable to change, its value, what else uses it), or None.
        `consumer` names the stream consumer whose state keys are used in stream mode; `shared` are
        (variable, key) pairs of keys other functions write too (the registry)."""
        state = self.state_for(consumer)
        named = [
            ("REDIS_INPUT_KEY", self.input),
            ("REDIS_OUTPUT_KEY", self.output),
            ("STATE_KEY", state),
            ("HISTORY_KEY", self.history),
            ("ERROR_KEY", self.error),
            ("LEASE_KEY", self.lease),
            *shared,
        ]
        # Keys named after another, with the variable they are named after.
        implied = [
            ("REDIS_OUTPUT_KEY", self.input_digest, "the last input's digest"),
            ("REDIS_OUTPUT_KEY", self.dead, "the dead letters"),
            ("REDIS_OUTPUT_KEY", self.poison, "what hung the process"),
            ("REDIS_OUTPUT_KEY", self.in_flight, "the input in flight"),
        ]
        if state is not None:
            implied += [
                ("STATE_KEY", journal_key(state), "the journal"),
                ("STATE_KEY", seq_key(state), "the commit number"),
                ("STATE_KEY", epoch_key(state), "the history's epoch"),
            ]
        if self.lease is not None:
            implied.append(("LEASE_KEY", lease_token_key(self.lease), "the fencing counter"))
        seen: dict[str, str] = {}
        for variable, key in named:
            if key is None:
                continue
            if key in seen:
                if (seen[key], variable) == ("REDIS_INPUT_KEY", "REDIS_OUTPUT_KEY"):
                    why = "REDIS_OUTPUT_KEY names it too: each output would trigger the function"
                    return "REDIS_INPUT_KEY", key, why
                return variable, key, f"{seen[key]} names it too"
            seen[key] = variable
        for owner, key, what in implied:
            if key in seen:
                return seen[key], key, f"it holds {what}, named after {owner}"
        return None
