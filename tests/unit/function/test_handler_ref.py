"""FUNCTION_HANDLER as the runtime shows it back: one canonical form that parses to itself.

Parsing each form and refusing what cannot be imported: tests/unit/test_config.py."""

from __future__ import annotations

import pytest
from serverless_runtime.function.handler_ref import HandlerRef


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("shop.main:handle", "shop.main:handle"),
        ("shop.main", "shop.main:handler"),
        (":handle", ":handle"),
        (" pkg:run ", "pkg:run"),
    ],
)
def test_handler_ref_is_shown_in_one_form_that_parses_back(raw: str, shown: str) -> None:
    ref = HandlerRef.parse(raw)
    assert str(ref) == shown
    assert HandlerRef.parse(shown) == ref


def test_handler_ref_default_is_the_handler_of_the_function_file() -> None:
    assert HandlerRef() == HandlerRef.parse(":handler")
    assert str(HandlerRef()) == ":handler"
