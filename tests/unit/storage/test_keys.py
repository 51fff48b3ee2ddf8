"""The key layout both apps share: every name derived from the output key, or set by a variable."""

from __future__ import annotations

from serverless_runtime.storage.keys import KeyLayout, lease_released_channel, lease_token_key


def test_keys_default_layout_is_named_after_the_output_key():
    keys = KeyLayout.from_env({"REDIS_OUTPUT_KEY": " out "})
    assert keys == KeyLayout.for_output("out")
    assert (keys.input, keys.state, keys.history, keys.error, keys.lease) == (
        "metrics",
        "out:state",
        "out:history",
        "out:error",
        "out:lease",
    )
    assert (keys.input_digest, keys.dead, keys.poison) == (
        "out:input-digest",
        "out:dead",
        "out:poison",
    )
    assert lease_token_key("out:lease") == "out:lease:token"
    assert lease_released_channel("out:lease") == "out:lease:released"


def test_keys_variables_rename_or_disable_a_key():
    keys = KeyLayout.from_env(
        {
            "REDIS_OUTPUT_KEY": "out",
            "REDIS_INPUT_KEY": "in",
            "STATE_KEY": "s",
            "HISTORY_KEY": "",
            "ERROR_KEY": " e ",
            "LEASE_KEY": "",
        }
    )
    assert (keys.input, keys.state, keys.history, keys.error, keys.lease) == (
        "in",
        "s",
        None,
        "e",
        None,
    )


def test_keys_state_is_one_per_consumer_in_stream_mode():
    keys = KeyLayout.for_output("out")
    assert keys.state_for(None) == "out:state"
    assert keys.state_for("pod-1") == "out:state:pod-1"
    assert KeyLayout("out", state=None).state_for("pod-1") is None
