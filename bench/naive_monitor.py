"""The baseline the resource-monitor is measured against: the tests' reference, as a handler.

`tests/function/reference.py` keeps the window's samples in a list and filters and averages the
whole list again on every call, so a call costs O(window length x CPUs). It validates its input as
the function does, so the two are compared doing the same work.
"""

from __future__ import annotations

from typing import Any

from tests.function.reference import Reference


def handler(input: Any, context: Any) -> dict[str, Any]:
    """The reference's output for the next input; its sample list lives in `context.env`."""
    reference: Reference = context.env.setdefault("reference", Reference())
    return reference.output(input)
