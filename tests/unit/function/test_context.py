"""The context a handler gets: the course runtime's attributes, and `env` kept between calls."""

from __future__ import annotations

from serverless_runtime.function.context import Context


def make(env: dict[str, object] | None = None) -> Context:
    return Context("redis", 6379, "metrics", "out", "2024-01-01 00:00:00", env)


def test_context_has_the_course_attributes_before_the_first_call() -> None:
    context = make()
    assert (context.host, context.port) == ("redis", 6379)
    assert (context.input_key, context.output_key) == ("metrics", "out")
    assert context.function_getmtime == "2024-01-01 00:00:00"
    assert context.last_execution is None
    assert context.env == {}
    assert context.replaying is False


def test_context_env_is_the_state_it_was_given_not_a_copy() -> None:
    state: dict[str, object] = {"count": 1}
    context = make(state)
    context.env["count"] = 2
    assert state == {"count": 2}


def test_contexts_do_not_share_a_default_env() -> None:
    first, second = make(), make()
    first.env["seen"] = True
    assert second.env == {}


def test_context_repr_shows_keys_but_not_the_state() -> None:
    shown = repr(make({"secret-ish": "value"}))
    assert "input_key='metrics'" in shown and "output_key='out'" in shown
    assert "value" not in shown
