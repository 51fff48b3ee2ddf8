"""`pytest.raises` for a function that fails to load with one kind of fault."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from serverless_runtime.failures import FailureKind
from serverless_runtime.function.loader import FunctionLoadError


@contextmanager
def load_fails(
    kind: FailureKind, match: str | None = None
) -> Iterator[pytest.ExceptionInfo[FunctionLoadError]]:
    """The block raises FunctionLoadError of `kind`, its message matching `match`."""
    with pytest.raises(FunctionLoadError, match=match) as caught:
        yield caught
    assert caught.value.kind is kind, f"{caught.value.kind} raised, {kind} expected"
