"""A user's exception as text: its type and message, even when its own __str__ raises."""

from __future__ import annotations

from serverless_runtime.function.exception_text import describe


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


class Exiting(Exception):
    def __str__(self) -> str:
        raise SystemExit(1)


def test_describe_names_the_type_and_the_message() -> None:
    assert describe(ValueError("bad input")) == "ValueError: bad input"
    assert describe(KeyError("cpu")) == "KeyError: 'cpu'"


def test_describe_of_an_exception_without_message_keeps_the_type() -> None:
    assert describe(ZeroDivisionError()) == "ZeroDivisionError: "


def test_describe_survives_a_str_that_raises() -> None:
    assert describe(Unprintable()) == "Unprintable: <str() raised RuntimeError>"
    assert describe(Exiting()) == "Exiting: <str() raised SystemExit>"
